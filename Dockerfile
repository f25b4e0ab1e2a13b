# The exchange's image: the API, the Celery worker and Celery beat all run from it.
FROM python:3.11-slim-bookworm AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

RUN pip install --no-cache-dir uv==0.13.8 \
    && useradd --create-home --uid 10001 exchange

WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY market ./market
COPY listings ./listings
COPY settlement ./settlement
COPY ledger ./ledger
COPY contracts ./contracts
RUN uv sync --frozen --no-dev

USER exchange
EXPOSE 8000
CMD ["market", "serve"]

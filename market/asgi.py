"""The ASGI entry point for production: `uvicorn --factory market.asgi:app_from_environment`.

Each server worker process builds its app from the environment; DATABASE_URL is required here,
since the embedded database belongs to `market run`.
"""

from litestar import Litestar

from market.app import create_app
from market.settings import Settings


def app_from_environment() -> Litestar:
    settings = Settings.from_env()
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL must be set to serve with several workers")
    return create_app(settings)

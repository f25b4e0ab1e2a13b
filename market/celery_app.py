"""The Celery app built from the environment, for Celery's own command line
(`celery --app market.celery_app inspect ping`, as the compose health checks do)."""

from market.settings import Settings
from market.tasks import create_celery

app = create_celery(Settings.from_env())

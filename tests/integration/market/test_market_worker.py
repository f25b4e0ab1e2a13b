"""A real Celery worker (`market worker`) on this machine's Redis runs the exchange's jobs."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from market.accounts.model import Role
from market.accounts.tables import ApiToken
from market.settings import Settings
from market.tasks import create_celery
from tests.factories import make_account

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis; CI must run these tests, so there an unreachable Redis is a failure."""
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        message = f"Redis at {url} is not reachable ({error})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"market-test-{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def worker(db: str, redis_url: str, key_prefix: str) -> Iterator[Settings]:
    environment = os.environ | {"DATABASE_URL": db, "REDIS_URL": redis_url,
                                "MARKET_TASK_KEY_PREFIX": key_prefix, "MARKET_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "market.cli", "worker"], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield Settings.from_env(environment)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.redis
async def test_a_real_worker_runs_a_job_against_the_database(worker: Settings) -> None:
    stale = await make_account(Role.BUYER)
    fresh = await make_account(Role.BUYER)
    await ApiToken.raw(
        "UPDATE api_tokens SET created_at = now() - interval '60 days', "
        "expires_at = now() - interval '40 days' WHERE id = {}", stale.token_id).run()

    result = create_celery(worker).send_task("accounts.purge_expired_tokens")
    purged = result.get(timeout=120)

    assert purged == 1
    remaining = {row["id"] for row in await ApiToken.select(ApiToken.id).run()}
    assert remaining == {fresh.token_id}


def test_without_a_broker_the_worker_command_refuses_clearly() -> None:
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"REDIS_URL", "CELERY_BROKER_URL"}}
    completed = subprocess.run([sys.executable, "-m", "market.cli", "worker"], env=environment,
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 2
    assert "REDIS_URL" in completed.stderr

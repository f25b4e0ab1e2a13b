"""Accounts: organisations of each kind, their users, and hashed API tokens."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-21T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "accounts"

SQL = """
CREATE TABLE organisations (
    id uuid PRIMARY KEY,
    name varchar(200) NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    kind varchar(32) NOT NULL CHECK (
        kind IN ('authorizing_body', 'exchange', 'operator', 'enterprise', 'peer_exchange')),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id uuid PRIMARY KEY,
    organisation_id uuid NOT NULL REFERENCES organisations (id),
    email varchar(254) NOT NULL UNIQUE CHECK (email = lower(email) AND email LIKE '%_@_%'),
    display_name varchar(200) NOT NULL,
    role varchar(16) NOT NULL CHECK (role IN ('regulator', 'staff', 'operator', 'buyer', 'peer')),
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_organisation_id ON users (organisation_id);

CREATE TABLE api_tokens (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id),
    token_hash char(64) NOT NULL UNIQUE,
    display_prefix varchar(16) NOT NULL,
    label varchar(100) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    last_used_at timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);
"""


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="market", description=DESCRIPTION)

    async def create_schema() -> None:
        # Piccolo wraps the migration in a transaction; run the script on its connection so that
        # the schema and the migration record commit together.
        transaction = engine_finder().current_transaction.get()  # type: ignore[union-attr]
        assert transaction is not None
        await transaction.connection.execute(SQL)

    manager.add_raw(create_schema)
    return manager

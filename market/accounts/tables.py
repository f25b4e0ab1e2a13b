"""Piccolo tables of organisations, users and API tokens (DDL in market/piccolo_migrations)."""

from piccolo.columns import UUID, Boolean, Timestamptz, Varchar
from piccolo.table import Table


class Organisation(Table, tablename="organisations"):
    id = UUID(primary_key=True)
    name = Varchar(length=200, unique=True)
    kind = Varchar(length=32)
    created_at = Timestamptz()


class User(Table, tablename="users"):
    id = UUID(primary_key=True)
    organisation_id = UUID()
    email = Varchar(length=254, unique=True)
    display_name = Varchar(length=200)
    role = Varchar(length=16)
    active = Boolean(default=True)
    created_at = Timestamptz()


class ApiToken(Table, tablename="api_tokens"):
    id = UUID(primary_key=True)
    user_id = UUID()
    token_hash = Varchar(length=64, unique=True)
    display_prefix = Varchar(length=16)
    label = Varchar(length=100)
    created_at = Timestamptz()
    expires_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)

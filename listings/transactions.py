"""The database transaction a listings use case runs in (joined if the caller already has one)."""

from __future__ import annotations

from piccolo.engine.postgres import PostgresTransaction

from listings.tables import AuthorizationRow


def transaction() -> PostgresTransaction:
    # Every listings table lives on the one engine Piccolo's configuration names.
    engine = AuthorizationRow._meta.db
    result: PostgresTransaction = engine.transaction()
    return result

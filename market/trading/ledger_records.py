"""The trading records as the ledger should have logged them, for reconciliation: orders with
their state changes, refunds, buyer clearances and operators' connected accounts.

Queries run on the reconciliation's snapshot transaction (``connection()`` joins it). Payloads
are rebuilt straight from the columns, as the use cases built them, so that a row edited after
it was logged shows as changed, a row no leaf records as not logged, and a leaf no row claims
(an order event deleted, say) as missing from the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any
from uuid import UUID

from ledger.entries import JSONValue
from ledger.reconcile import ExpectedRecord
from market.trading import clearances, orders, refunds
from market.trading.order_tables import connection

# Orders are read in keyset pages with their events, so a long history is never held at once.
ORDER_PAGE = 5_000


class OrderRecords:
    """One leaf per state change, named by its event row. Every leaf carries the order's terms
    (fixed when it was placed) and the change; the newest change must leave the order in the
    state its row shows now."""

    name = "orders"
    kinds = frozenset({orders.LEDGER_KIND})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        after: UUID | None = None
        while True:
            async with connection() as conn:
                rows = await conn.fetch(
                    "SELECT * FROM trading_orders WHERE $1::uuid IS NULL OR id > $1 "
                    "ORDER BY id LIMIT $2", after, ORDER_PAGE)
                if not rows:
                    return
                events = await conn.fetch(
                    "SELECT * FROM trading_order_events WHERE order_id = ANY($1::uuid[]) "
                    "ORDER BY order_id, id", [row["id"] for row in rows])
            history: dict[UUID, list[Any]] = {}
            for event in events:
                history.setdefault(event["order_id"], []).append(event)
            for row in rows:
                for expected in _order_records(row, history.get(row["id"], [])):
                    yield expected
            after = rows[-1]["id"]


def _order_records(row: Mapping[str, Any], events: list[Any]) -> list[ExpectedRecord]:
    subject = orders.order_reference(row["id"])
    if not events:
        # Without event rows the subject's newest leaf stands for the order; the change it
        # logged (from which state, with what detail) is not kept elsewhere, so not compared.
        return [ExpectedRecord(subject, orders.LEDGER_KIND,
                               _order_payload(row, to_state=row["state"]), exact=False)]
    expected = []
    for position, event in enumerate(events):
        newest = position == len(events) - 1
        payload = _order_payload(row, to_state=row["state"] if newest else event["to_state"])
        payload.update(from_state=event["from_state"], detail=event["detail"])
        expected.append(ExpectedRecord(subject, orders.LEDGER_KIND, payload,
                                       leaf_index=int(event["leaf_index"]),
                                       actor=event["actor"]))
    return expected


def _order_payload(row: Mapping[str, Any], *, to_state: str) -> dict[str, JSONValue]:
    """The payload of ``orders._record_change`` but for the change's own from-state and
    detail, which the event row keeps."""
    payload: dict[str, JSONValue] = {
        "order_id": str(row["id"]), "to_state": to_state,
        "buyer_org_id": str(row["buyer_org_id"]), "operator_org_id": str(row["operator_org_id"]),
        "product_id": str(row["product_id"]), "purpose": row["purpose"], "unit": row["unit"],
        "quantity": str(row["quantity"]), "currency": row["currency"].strip(),
        "gross_minor": str(row["gross_minor"]), "fee_minor": str(row["fee_minor"]),
        "operator_revenue_minor": str(row["operator_revenue_minor"]),
        "revenue_period": row["revenue_period"]}
    if row["registration_code"] is not None:
        payload["registration_code"] = row["registration_code"]
    if row["registered_at"] is not None:
        payload["registered_at"] = row["registered_at"]
    return payload


class RefundRecords:
    """Each refund of an order is one leaf, named by its row (refunds are append-only)."""

    name = "order_refunds"
    kinds = frozenset({refunds.LEDGER_KIND})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with connection() as conn:
            rows = await conn.fetch(
                # What was left of the order after each refund: its price less every refund
                # up to and including this one.
                "SELECT r.*, o.gross_minor - sum(r.amount_minor) OVER (PARTITION BY r.order_id "
                "ORDER BY r.sequence) AS remaining_minor FROM trading_order_refunds r "
                "JOIN trading_orders o ON o.id = r.order_id ORDER BY r.order_id, r.sequence")
        for row in rows:
            yield ExpectedRecord(
                f"order_refund:{row['order_id']}:{row['sequence']}", refunds.LEDGER_KIND,
                {"order_id": str(row["order_id"]), "sequence": row["sequence"],
                 "currency": row["currency"].strip(), "amount_minor": str(row["amount_minor"]),
                 "fee_minor": str(row["fee_minor"]),
                 "operator_revenue_minor": str(row["operator_revenue_minor"]),
                 "after_settlement": row["after_settlement"],
                 "journal_key": f"{orders.order_reference(row['order_id'])}:refund:"
                                f"{row['sequence']}",
                 "provider_refund_id": row["provider_refund_id"], "reason": row["reason"],
                 "remaining_minor": str(row["remaining_minor"])},
                leaf_index=int(row["leaf_index"]), actor=row["refunded_by"])


class ClearanceRecords:
    """A buyer clearance's grant leaf, and its revocation's leaf once revoked, each named by
    the row."""

    name = "buyer_clearances"
    kinds = frozenset({clearances.GRANTED_KIND, clearances.REVOKED_KIND})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with connection() as conn:
            rows = await conn.fetch("SELECT * FROM trading_buyer_clearances ORDER BY id")
        for row in rows:
            subject = f"buyer_clearance:{row['id']}"
            yield ExpectedRecord(
                subject, clearances.GRANTED_KIND,
                {"clearance_id": str(row["id"]), "buyer_org_id": str(row["buyer_org_id"]),
                 "grade": row["grade"], "valid_from": row["valid_from"].isoformat(),
                 "valid_to": row["valid_to"].isoformat(), "evidence": row["evidence"]},
                leaf_index=int(row["leaf_index"]), actor=row["granted_by"])
            if row["revocation_leaf_index"] is not None:
                yield ExpectedRecord(
                    subject, clearances.REVOKED_KIND,
                    {"clearance_id": str(row["id"]), "buyer_org_id": str(row["buyer_org_id"]),
                     "reason": row["revocation_reason"]},
                    leaf_index=int(row["revocation_leaf_index"]), actor=row["revoked_by"])


class ConnectedAccountRecords:
    """An operator's Stripe connected account: the row keeps the newest configuration only, so
    its earlier leaves are the row's history. The leaf also names the account it replaced,
    which the row no longer keeps, so that is not compared."""

    name = "connected_accounts"
    kinds = frozenset({orders.CONNECTED_ACCOUNT_KIND})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM trading_connected_accounts ORDER BY organisation_id")
        for row in rows:
            subject = f"operator:{row['organisation_id']}"
            payload: dict[str, JSONValue] = {
                "organisation_id": str(row["organisation_id"]), "provider": row["provider"],
                "account_id": row["account_id"]}
            # The newest leaf of the operator is the row as it stands; the leaf the row names
            # must be that one.
            yield ExpectedRecord(subject, orders.CONNECTED_ACCOUNT_KIND, payload, exact=False,
                                 actor=row["recorded_by"])
            yield ExpectedRecord(subject, orders.CONNECTED_ACCOUNT_KIND, payload,
                                 leaf_index=int(row["leaf_index"]), exact=False,
                                 actor=row["recorded_by"])

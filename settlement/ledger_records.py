"""The settlement records as the ledger should have logged them, for reconciliation: journal
transactions with their postings, fee-cap and revenue-ceiling approvals, bank payouts and
free-use eligibility.

The payloads are rebuilt straight from the columns, not through the domain model: a tampered
row (say, one posting's amount changed with the balance trigger switched off) may no longer
make a valid `JournalTransaction`, and reconciliation must still report it rather than fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ledger.entries import JSONValue
from ledger.reconcile import ExpectedRecord
from settlement import payouts
from settlement.caps_service import FEE_CAP_APPROVED, REVENUE_CEILING_APPROVED
from settlement.eligibility_store import ELIGIBILITY_GRANTED, ELIGIBILITY_REVOKED
from settlement.journal_store import LEDGER_KIND
from settlement.tables import transaction_connection

# Journal transactions are read in keyset pages, so a long journal is never held at once.
JOURNAL_PAGE = 5_000
# The ledger's `subject` column is varchar(200): the stores cut their subjects to fit.
MAX_SUBJECT = 200


class JournalRecords:
    """Each journal transaction is one leaf (journal entries are append-only: a correction is
    a reversing transaction with its own leaf)."""

    name = "journal"
    kinds = frozenset({LEDGER_KIND})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        after = 0
        while True:
            async with transaction_connection() as connection:
                rows = await connection.fetch(
                    "SELECT t.id, t.idempotency_key, t.kind, t.reference, t.fingerprint, "
                    "original.idempotency_key AS reverses FROM journal_transactions t "
                    "LEFT JOIN journal_transactions original ON original.id = t.reverses_id "
                    "WHERE t.id > $1 ORDER BY t.id LIMIT $2",
                    after,
                    JOURNAL_PAGE,
                )
                if not rows:
                    return
                postings = await _postings(connection, [row["id"] for row in rows])
            for row in rows:
                # The payload of `journal_store.ledger_payload`, rebuilt from the stored rows.
                yield ExpectedRecord(
                    f"journal:{row['idempotency_key']}"[:MAX_SUBJECT],
                    LEDGER_KIND,
                    {
                        "idempotency_key": row["idempotency_key"],
                        "kind": row["kind"],
                        "reference": row["reference"],
                        "reverses": row["reverses"],
                        "fingerprint": row["fingerprint"],
                        "postings": postings.get(row["id"], []),
                    },
                )
            after = int(rows[-1]["id"])


async def _postings(connection: Any, transaction_ids: list[int]) -> dict[int, list[JSONValue]]:
    rows = await connection.fetch(
        "SELECT transaction_id, account, direction, currency, amount_minor FROM journal_postings "
        "WHERE transaction_id = ANY($1::bigint[]) ORDER BY id",
        transaction_ids,
    )
    grouped: dict[int, list[JSONValue]] = {}
    for row in rows:
        grouped.setdefault(row["transaction_id"], []).append(
            {
                "account": row["account"],
                "direction": row["direction"],
                "currency": row["currency"].strip(),
                "amount_minor": str(row["amount_minor"]),
            }
        )
    return grouped


class FeeCapRecords:
    """Fee-cap versions: one subject per (product, purpose, unit), one leaf per version, found
    by the version's id in the payload."""

    name = "fee_caps"
    kinds = frozenset({FEE_CAP_APPROVED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with transaction_connection() as connection:
            rows = await connection.fetch(
                "SELECT f.*, EXISTS (SELECT 1 FROM fee_caps later WHERE later.id > f.id "
                "AND later.product_id = f.product_id AND later.purpose = f.purpose "
                "AND later.unit = f.unit AND later.effective_from = f.effective_to + 1) "
                "AS superseded FROM fee_caps f ORDER BY f.id"
            )
        for row in rows:
            payload: dict[str, JSONValue] = {
                "fee_cap_id": str(row["id"]),
                "product_id": row["product_id"],
                "purpose": row["purpose"],
                "unit": row["unit"],
                "cap_minor": str(row["cap_minor"]),
                "currency": row["currency"].strip(),
                "effective_from": row["effective_from"].isoformat(),
                "approval_reference": row["approval_reference"],
            }
            if not row["superseded"]:
                # A later version that starts the day after this one ends closed it then; the
                # leaf says the end it was approved with (open), so only an unclosed end compares.
                end = row["effective_to"]
                payload["effective_to"] = None if end is None else end.isoformat()
            yield ExpectedRecord(
                f"fee_cap:{row['product_id']}:{row['purpose']}:{row['unit']}"[:MAX_SUBJECT],
                FEE_CAP_APPROVED,
                payload,
                match_field="fee_cap_id",
                # `supersedes` on the leaf names the versions closed; which those were is not
                # recoverable from the rows alone, so it is not compared.
                exact=False,
                actor=row["approved_by"],
            )


class RevenueCeilingRecords:
    """Revenue-ceiling versions: immutable rows, one leaf each."""

    name = "revenue_ceilings"
    kinds = frozenset({REVENUE_CEILING_APPROVED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with transaction_connection() as connection:
            rows = await connection.fetch("SELECT * FROM revenue_ceilings ORDER BY id")
        for row in rows:
            yield ExpectedRecord(
                f"revenue_ceiling:{row['operator_id']}:{row['period']}"[:MAX_SUBJECT],
                REVENUE_CEILING_APPROVED,
                {
                    "revenue_ceiling_id": str(row["id"]),
                    "operator_id": row["operator_id"],
                    "period": row["period"],
                    "version": row["version"],
                    "currency": row["currency"].strip(),
                    "operating_cost_minor": str(row["operating_cost_minor"]),
                    "permitted_profit_minor": str(row["permitted_profit_minor"]),
                    "tax_minor": str(row["tax_minor"]),
                    "approved_minor": str(row["approved_minor"]),
                    "approval_reference": row["approval_reference"],
                },
                match_field="revenue_ceiling_id",
                actor=row["approved_by"],
            )


class PayoutRecords:
    """Bank payouts: the instruction's leaf, and the sending's once the bank sent it. The row
    keeps no leaf index; both leaves share the payout's subject, and only the instruction's
    names the operator, so the instruction is found by that field and the sending is the
    subject's newest leaf."""

    name = "payouts"
    kinds = frozenset({payouts.INSTRUCTED_KIND, payouts.SENT_KIND})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with transaction_connection() as connection:
            rows = await connection.fetch("SELECT * FROM operator_payouts ORDER BY id")
        for row in rows:
            subject = f"payout:{row['reference']}"
            yield ExpectedRecord(
                subject, payouts.INSTRUCTED_KIND,
                {"payout_id": str(row["id"]), "reference": row["reference"],
                 "operator_org_id": row["operator_org_id"], "currency": row["currency"].strip(),
                 "amount_minor": str(row["amount_minor"]), "period": row["period"]},
                match_field="operator_org_id", actor=row["instructed_by"])
            if row["sent_on"] is not None:
                yield ExpectedRecord(
                    subject, payouts.SENT_KIND,
                    {"payout_id": str(row["id"]), "reference": row["reference"],
                     "bank_transaction_ref": row["bank_transaction_ref"],
                     "sent_on": row["sent_on"].isoformat()},
                    actor=row["sent_by"])


class EligibilityRecords:
    """Free-use eligibility: the grant's leaf, and the revocation's once revoked. As with
    payouts the row keeps no leaf index: the grant is found by the buyer it names (the
    revocation names none), the revocation is the subject's newest leaf."""

    name = "eligibilities"
    kinds = frozenset({ELIGIBILITY_GRANTED, ELIGIBILITY_REVOKED})

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        async with transaction_connection() as connection:
            rows = await connection.fetch("SELECT * FROM free_use_eligibilities ORDER BY id")
        for row in rows:
            subject = f"eligibility:{row['id']}"
            yield ExpectedRecord(
                subject, ELIGIBILITY_GRANTED,
                {"eligibility_id": str(row["id"]), "buyer_org_id": row["buyer_org_id"],
                 "purposes": sorted(row["purposes"]),
                 "valid_from": row["valid_from"].isoformat(),
                 "valid_to": row["valid_to"].isoformat(), "evidence": row["evidence"]},
                match_field="buyer_org_id", actor=row["granted_by"])
            if row["revoked_at"] is not None:
                yield ExpectedRecord(
                    subject, ELIGIBILITY_REVOKED,
                    {"eligibility_id": str(row["id"]), "reason": row["revocation_reason"]},
                    actor=row["revoked_by"])

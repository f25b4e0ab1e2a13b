"""The listings records as the ledger should have logged them, for reconciliation.

Each source reads the rows in the reconciliation's snapshot (Piccolo runs these queries on the
caller's transaction) and says, for every leaf the database names through an event row's
`leaf_index`, what that leaf must record. The newest leaf of a record must also agree with the
row as it stands now, so a row edited after it was logged shows as changed; a row no leaf
records shows as not logged; a leaf no row claims shows as missing from the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Mapping
from datetime import date
from typing import Any
from uuid import UUID

from ledger.canonical import canonical_json
from ledger.entries import JSONValue
from ledger.reconcile import ExpectedRecord
from listings.authorization import AuthorizationState
from listings.registration import RegistrationData
from listings.tables import AuthorizationRow

Row = dict[str, Any]

AUTHORIZATION_GRANTED = "authorization.granted"
# A state change is logged as `authorization.<state it moved to>` (reinstatement: `.active`).
AUTHORIZATION_KINDS = frozenset(
    {AUTHORIZATION_GRANTED, *(f"authorization.{state.value}" for state in AuthorizationState)}
)
REGISTRATION_STEPS = (
    "applied",
    "accepted",
    "review_started",
    "rejected",
    "notice_opened",
    "objection_filed",
    "objection_upheld",
    "objection_dismissed",
    "code_assigned",
)
REGISTRATION_KINDS = frozenset(f"registration.{step}" for step in REGISTRATION_STEPS)


def registration_data_digest(data: RegistrationData) -> str:
    """SHA-256 of the RFC 8785 form of a registration's data, logged with the application.

    The digest, not the text, goes on the log: it keeps the leaf small and free of whatever a
    description says, while any later edit of the stored data (the holder, the title …) no
    longer matches it.
    """
    return _digest(
        subject_kind=data.subject_kind.value,
        holder=data.holder,
        title=data.title,
        description=data.description,
        data_source=data.data_source,
        domain=data.domain.value,
        update_cycle=data.update_cycle.value,
        permitted_purposes=sorted(purpose.value for purpose in data.permitted_purposes),
        security_measures=data.security_measures,
        grade=data.grade.value,
    )


def _row_data_digest(row: Mapping[str, Any], **overrides: str) -> str:
    # Straight from the columns, not through `RegistrationData`: a tampered row may no longer
    # satisfy the model's invariants, and reconciliation must still report it.
    fields: dict[str, Any] = {
        "subject_kind": row["subject_kind"],
        "holder": row["holder"],
        "title": row["title"],
        "description": row["description"],
        "data_source": row["data_source"],
        "domain": row["domain"],
        "update_cycle": row["update_cycle"],
        "permitted_purposes": sorted(row["permitted_purposes"]),
        "security_measures": row["security_measures"],
        "grade": row["grade"],
    }
    fields.update(overrides)
    return _digest(**fields)


def _digest(**fields: Any) -> str:
    return hashlib.sha256(bytes(canonical_json(fields))).hexdigest()


async def _rows(sql: str, *args: object) -> list[Row]:
    result = await AuthorizationRow.raw(sql, *args).run()
    return [dict(row) for row in result]


async def _events_by(table: str, key: str) -> dict[UUID, list[Row]]:
    grouped: dict[UUID, list[Row]] = {}
    for row in await _rows(f"SELECT * FROM {table} ORDER BY {key}, leaf_index"):  # noqa: S608 -- constant names
        grouped.setdefault(row[key], []).append(row)
    return grouped


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


# --- authorizations ------------------------------------------------------------------------


class AuthorizationRecords:
    """Authorizations: the grant leaf holds the terms; each state change its own leaf."""

    name = "authorizations"
    kinds = AUTHORIZATION_KINDS

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        events = await _events_by("listings_authorization_events", "authorization_id")
        for row in await _rows("SELECT * FROM listings_authorizations ORDER BY id"):
            subject = f"authorization:{row['id']}"
            history = events.get(row["id"], [])
            if not history:
                # Without an event row the newest leaf of the subject stands for the record.
                yield ExpectedRecord(subject, self._newest_kind(row, grant=True),
                                     _grant_payload(row))
                continue
            for position, event in enumerate(history):
                newest = position == len(history) - 1
                if event["action"] == "grant":
                    kind = self._newest_kind(row, grant=True) if newest else AUTHORIZATION_GRANTED
                    yield ExpectedRecord(subject, kind, _grant_payload(row),
                                         leaf_index=int(event["leaf_index"]),
                                         actor=event["actor"])
                    continue
                # The newest change must leave the row as it is now; older ones as they were.
                to_state = row["state"] if newest else event["to_state"]
                reason = row["state_reason"] if newest else event["reason"]
                yield ExpectedRecord(
                    subject,
                    f"authorization.{to_state}",
                    {
                        "authorization_id": str(row["id"]),
                        "action": event["action"],
                        "from_state": event["from_state"],
                        "to_state": to_state,
                        "reason": reason,
                    },
                    leaf_index=int(event["leaf_index"]),
                    # The leaf also lists the products delisted or relisted; the database keeps
                    # only their current state, so those lists are not compared.
                    exact=False,
                    actor=event["actor"],
                )

    @staticmethod
    def _newest_kind(row: Mapping[str, Any], *, grant: bool) -> str:
        # A grant leaf as the newest leaf says the authorization is as granted: in force, no
        # reason given. A row in any other state should have a state-change leaf after it.
        if grant and row["state"] == AuthorizationState.ACTIVE.value and not row["state_reason"]:
            return AUTHORIZATION_GRANTED
        return f"authorization.{row['state']}"


def _grant_payload(row: Mapping[str, Any]) -> dict[str, JSONValue]:
    return {
        "authorization_id": str(row["id"]),
        "operator_id": str(row["operator_id"]),
        "scope_kind": row["scope_kind"],
        "domains": sorted(row["domains"]),
        "scenarios": sorted(row["scenarios"]),
        "resource_codes": sorted(row["resource_codes"]),
        "term_start": row["term_start"].isoformat(),
        "term_end": row["term_end"].isoformat(),
    }


# --- registrations -------------------------------------------------------------------------


class RegistrationRecords:
    """Registrations: every workflow step is a leaf, the application carries the data's digest
    and the code assignment the code."""

    name = "registrations"
    kinds = REGISTRATION_KINDS

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        events = await _events_by("listings_registration_events", "registration_id")
        registry_states = {
            row["code"]: row["state"]
            for row in await _rows("SELECT code, state FROM listings_registry")
        }
        for row in await _rows("SELECT * FROM listings_registrations ORDER BY id"):
            subject = f"registration:{row['id']}"
            history = events.get(row["id"], [])
            if not history:
                yield ExpectedRecord(subject, "registration.applied",
                                     _step_payload(row, "applied", row["state"], ""))
                continue
            for position, event in enumerate(history):
                state = event["state"]
                if position == len(history) - 1:
                    state = _state_after_newest_step(row, state, registry_states)
                yield ExpectedRecord(
                    subject,
                    f"registration.{event['step']}",
                    _step_payload(row, event["step"], state, event["detail"]),
                    leaf_index=int(event["leaf_index"]),
                    actor=event["actor"],
                )


def _state_after_newest_step(
    row: Mapping[str, Any], logged_state: str, registry_states: Mapping[str, str]
) -> str:
    """The state the row must be in after its newest step: what that step logged, except that
    a registered code cancelled later (by another registration, whose own leaves record the
    cancellation) leaves this registration cancelled without a leaf of its own."""
    code_cancelled = (
        row["kind"] != "cancellation" and registry_states.get(row["code"]) == "cancelled"
    )
    if logged_state == "registered" and code_cancelled:
        if row["state"] == "cancelled":
            return logged_state
        # Still shown as registered under a cancelled code: not what the log allows.
        return f"{row['state']} under a cancelled code"
    return str(row["state"])


def _step_payload(
    row: Mapping[str, Any], step: str, state: str, detail: str
) -> dict[str, JSONValue]:
    """The payload `registrations_service._record_step` logs for `step`, rebuilt from the row."""
    payload: dict[str, JSONValue] = {
        "registration_id": str(row["id"]),
        "kind": row["kind"],
        "subject_kind": row["subject_kind"],
        "state": state,
    }
    if row["target_code"] is not None:
        payload["target_code"] = row["target_code"]
    if step == "applied":
        payload["applicant_id"] = str(row["applicant_id"])
        if row["product_id"] is not None:
            payload["product_id"] = str(row["product_id"])
        payload["data_sha256"] = _row_data_digest(row)
    elif step == "rejected":
        payload["reasons"] = list(row["rejection_reasons"])
    elif step == "notice_opened":
        payload["notice_starts_on"] = _iso(row["notice_starts_on"])
        payload["notice_days"] = row["notice_days"]
    elif step.startswith("objection_"):
        payload["objection_number"] = _objection_number(detail)
    elif step == "code_assigned":
        payload["code"] = row["code"]
        payload["registered_on"] = _iso(row["registered_on"])
    return payload


def _objection_number(detail: str) -> JSONValue:
    # The event's detail reads "#<number>" or "#<number>: <resolution>".
    number = detail.removeprefix("#").split(":", 1)[0]
    return int(number) if number.isdigit() else detail


# --- registry ------------------------------------------------------------------------------


class RegistryRecords:
    """The public registry of codes: each entry must agree with the leaves of the
    registrations behind it. It owns no leaves (those belong to `RegistrationRecords`)."""

    name = "registry"
    kinds: frozenset[str] = frozenset()

    async def expected_records(self) -> AsyncIterator[ExpectedRecord]:
        applied = {
            row["registration_id"]: int(row["leaf_index"])
            for row in await _rows(
                "SELECT registration_id, leaf_index FROM listings_registration_events "
                "WHERE step = 'applied'"
            )
        }
        registrations = {
            row["id"]: row for row in await _rows("SELECT * FROM listings_registrations")
        }
        for entry in await _rows("SELECT * FROM listings_registry ORDER BY code"):
            code = entry["code"]
            first = entry["first_registration_id"]
            current = entry["current_registration_id"]
            # The code was assigned to the first registration, by the holder's application.
            yield ExpectedRecord(
                f"registration:{first}",
                "registration.code_assigned",
                {"code": code, "kind": "first", "subject_kind": entry["subject_kind"]},
                match_field="code",
                exact=False,
            )
            if first in applied:
                yield ExpectedRecord(
                    f"registration:{first}",
                    "registration.applied",
                    {"applicant_id": str(entry["holder_org_id"])},
                    leaf_index=applied[first],
                    exact=False,
                )
            if current != first:
                yield ExpectedRecord(
                    f"registration:{current}",
                    "registration.code_assigned",
                    {"code": code, "target_code": code},
                    match_field="code",
                    exact=False,
                )
            row = registrations.get(current)
            if row is not None and current in applied:
                # The entry shows the domain and grade of the registration in force: with them,
                # that registration's data must still hash to what its application logged.
                yield ExpectedRecord(
                    f"registration:{current}",
                    "registration.applied",
                    {
                        "data_sha256": _row_data_digest(
                            row, domain=entry["domain"], grade=entry["grade"]
                        )
                    },
                    leaf_index=applied[current],
                    exact=False,
                )

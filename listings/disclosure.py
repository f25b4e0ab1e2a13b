"""Information disclosure (信息披露, MISSION §9): what the public may read about authorized
operation, each operator's products and services, and registration results; as rows for JSON
and as CSV.

CSV cells are guarded against formula injection (OWASP "CSV Injection"): a cell that begins
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'`` so that a
spreadsheet shows it as text instead of evaluating it. Operators write product titles and
reasons themselves, so this matters.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from listings import repository
from listings.context import OperatorDirectory
from listings.domains import SubjectKind
from listings.product import ProductState
from listings.registration import RegistrationState

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

Row = dict[str, str]

AUTHORIZATION_COLUMNS = (
    "authorization_id",
    "operator_id",
    "operator_name",
    "scope_kind",
    "scope_label",
    "domains",
    "scenarios",
    "resource_codes",
    "term_start",
    "term_end",
    "state",
    "state_label",
    "state_reason",
    "granted_at",
)

PRODUCT_COLUMNS = (
    "operator_id",
    "operator_name",
    "product_id",
    "registration_code",
    "title",
    "domain",
    "domain_label",
    "delivery_form",
    "grade",
    "state",
    "state_label",
    "delisting_reason",
)

SERVICE_COLUMNS = (
    "operator_id",
    "operator_name",
    "code",
    "title",
    "domain",
    "domain_label",
    "update_cycle",
    "assigned_on",
)

REGISTRATION_COLUMNS = (
    "registration_id",
    "kind",
    "kind_label",
    "subject_kind",
    "code",
    "target_code",
    "holder",
    "title",
    "domain",
    "grade",
    "state",
    "state_label",
    "applied_on",
    "registered_on",
    "rejection_reasons",
)

_RESULT_STATES = (
    RegistrationState.REGISTERED,
    RegistrationState.REJECTED,
    RegistrationState.STOPPED,
    RegistrationState.CANCELLED,
)


def csv_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_TRIGGERS) else value


def to_csv(columns: Sequence[str], rows: Sequence[Row]) -> str:
    """RFC 4180 CSV with a header row and guarded cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column, "")) for column in columns])
    return buffer.getvalue()


async def authorizations(directory: OperatorDirectory) -> list[Row]:
    records = await repository.list_authorizations()
    names = await directory.names({record.operator_id for record in records})
    rows = []
    for record in records:
        authorization = record.authorization
        rows.append(
            {
                "authorization_id": str(record.id),
                "operator_id": str(record.operator_id),
                "operator_name": names.get(record.operator_id, ""),
                "scope_kind": authorization.scope.kind.value,
                "scope_label": authorization.scope.kind.label,
                "domains": ";".join(sorted(domain.label for domain in authorization.scope.domains)),
                "scenarios": ";".join(sorted(authorization.scope.scenarios)),
                "resource_codes": ";".join(
                    sorted(str(code) for code in authorization.resource_codes)
                ),
                "term_start": authorization.term.start.isoformat(),
                "term_end": authorization.term.end.isoformat(),
                "state": authorization.state.value,
                "state_label": authorization.state.label,
                "state_reason": authorization.state_reason,
                "granted_at": record.granted_at.isoformat(),
            }
        )
    return rows


async def products() -> list[Row]:
    """Each operator's product list: listed and delisted products (drafts are not public)."""
    records = await repository.list_products(states=[ProductState.LISTED, ProductState.DELISTED])
    return [
        {
            "operator_id": str(record.operator_id),
            "operator_name": record.operator_name,
            "product_id": str(record.id),
            "registration_code": ""
            if record.registration_code is None
            else str(record.registration_code),
            "title": record.product.title,
            "domain": record.product.domain.value,
            "domain_label": record.product.domain.label,
            "delivery_form": record.product.delivery_form.value,
            "grade": record.product.grade.value,
            "state": record.product.state.value,
            "state_label": record.product.state.label,
            "delisting_reason": record.product.delisting_reason,
        }
        for record in records
    ]


async def services(directory: OperatorDirectory) -> list[Row]:
    """Each operator's service capability list: its registered data services."""
    entries = [
        entry
        for entry in await repository.list_registry(kind=SubjectKind.SERVICE)
        if entry.registered
    ]
    names = await directory.names({entry.holder_org_id for entry in entries})
    rows = []
    for entry in entries:
        current = await repository.get_registration(entry.current_registration_id)
        if current is None:
            continue
        data = current.registration.data
        rows.append(
            {
                "operator_id": str(entry.holder_org_id),
                "operator_name": names.get(entry.holder_org_id, ""),
                "code": str(entry.code),
                "title": data.title,
                "domain": data.domain.value,
                "domain_label": data.domain.label,
                "update_cycle": data.update_cycle.value,
                "assigned_on": entry.assigned_on.isoformat(),
            }
        )
    return rows


@dataclass(frozen=True)
class OperatorDisclosure:
    operator_id: str
    operator_name: str
    products: list[Row] = field(default_factory=list)
    services: list[Row] = field(default_factory=list)


async def operators(directory: OperatorDirectory) -> list[OperatorDisclosure]:
    """Products and services grouped by operator, in operator-name order."""
    grouped: dict[str, OperatorDisclosure] = {}
    for row in await products():
        grouped.setdefault(
            row["operator_id"], OperatorDisclosure(row["operator_id"], row["operator_name"])
        ).products.append(row)
    for row in await services(directory):
        grouped.setdefault(
            row["operator_id"], OperatorDisclosure(row["operator_id"], row["operator_name"])
        ).services.append(row)
    return sorted(grouped.values(), key=lambda item: (item.operator_name, item.operator_id))


async def registration_results() -> list[Row]:
    """Registrations that reached a result: registered, rejected, stopped or cancelled."""
    records = await repository.list_registrations(states=list(_RESULT_STATES))
    rows = []
    for record in records:
        registration = record.registration
        rows.append(
            {
                "registration_id": str(record.id),
                "kind": registration.kind.value,
                "kind_label": registration.kind.label,
                "subject_kind": registration.data.subject_kind.value,
                "code": "" if registration.code is None else str(registration.code),
                "target_code": ""
                if registration.target_code is None
                else str(registration.target_code),
                "holder": registration.data.holder,
                "title": registration.data.title,
                "domain": registration.data.domain.value,
                "grade": registration.data.grade.value,
                "state": registration.state.value,
                "state_label": registration.state.label,
                "applied_on": registration.applied_on.isoformat(),
                "registered_on": ""
                if registration.registered_on is None
                else registration.registered_on.isoformat(),
                "rejection_reasons": ";".join(registration.rejection_reasons),
            }
        )
    return rows

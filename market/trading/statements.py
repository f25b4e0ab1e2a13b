"""Per-operator period statements: what an operator earned and gave back in a year or a month.

Figures come from the journal, never from the order rows' own price columns, so a statement
always agrees with the books: revenue is recognised when an order settles (the buyer's
acceptance posts ``order_settled``), and a refund of a settled order (``settled_refund``) takes
its shares back in the period the refund is posted. An order paid and refunded before it settled
never reached the operator, so it is not on the statement; nor are placed or paid but unaccepted
orders. A reversal counts as the negative of the transaction it reverses.

An operator with a Stripe connected account is paid by Stripe itself: a destination charge
transfers its share when the buyer pays, and the settlement applies that transfer to its payable
(``settlement.journal``, destination charges). Its net is therefore shown as ``transferred``
(paid by Stripe transfer, less the transfers a refund after settlement reversed) and its
``payable`` (still owed by the exchange) is zero; an operator paid by bank transfer has nothing
transferred and its payable is its net after refunds.

Bank payouts to the operator instructed in the period are listed beside the orders
(``payouts``): what the exchange paid out of the operator's payable, by reference.

The orders table is read only to tie each ``order:<id>`` journal reference to its operator and
product (an order whose fee takes the whole price posts nothing to the operator's account, so
the account alone would miss it).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from market.accounts.model import Principal, Role
from market.errors import InvalidInputError, NotFoundError
from market.trading.order_tables import connection
from settlement.caps import RevenuePeriod
from settlement.errors import SettlementError
from settlement.journal import Account, AccountKind, Direction, TransactionKind
from settlement.payouts import Payout, payouts_of


def parse_period(label: str) -> RevenuePeriod:
    try:
        return RevenuePeriod(label)
    except SettlementError as error:
        raise InvalidInputError(error.message, field="period") from error


def period_window(period: RevenuePeriod, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The period as a half-open UTC interval: midnight to midnight in the exchange's zone."""
    start = datetime.combine(period.first_day, time.min, tzinfo=zone)
    end = datetime.combine(period.last_day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class JournalMovement:
    """One posting of a transaction about one of the operator's orders, as the store reads it.

    ``effective_kind`` is the kind of the transaction (of the original, for a reversal), and
    ``sign`` is -1 for a reversal, so a reversed settlement cancels its settlement."""

    order_id: uuid.UUID
    product_id: uuid.UUID
    order_state: str
    transaction_key: str
    effective_kind: TransactionKind
    sign: int
    posted_at: datetime
    account_kind: AccountKind
    direction: Direction
    currency: str
    amount_minor: int


@dataclass(slots=True)
class StatementLine:
    order_id: uuid.UUID
    product_id: uuid.UUID
    order_state: str
    currency: str
    gross_minor: int = 0
    fee_minor: int = 0
    net_minor: int = 0
    refunded_gross_minor: int = 0
    refunded_fee_minor: int = 0
    refunded_net_minor: int = 0
    transferred_minor: int = 0
    first_posted_at: datetime | None = None

    @property
    def net_after_refunds_minor(self) -> int:
        return self.net_minor - self.refunded_net_minor

    @property
    def payable_minor(self) -> int:
        return self.net_after_refunds_minor - self.transferred_minor


@dataclass(frozen=True, slots=True)
class StatementTotals:
    currency: str
    gross_minor: int
    fee_minor: int
    net_minor: int
    refunded_gross_minor: int
    refunded_fee_minor: int
    refunded_net_minor: int
    transferred_minor: int
    order_count: int

    @property
    def net_after_refunds_minor(self) -> int:
        return self.net_minor - self.refunded_net_minor

    @property
    def payable_minor(self) -> int:
        return self.net_after_refunds_minor - self.transferred_minor


@dataclass(frozen=True, slots=True)
class Statement:
    operator_id: uuid.UUID
    period: str
    zone: str
    period_start: datetime
    period_end: datetime
    totals: tuple[StatementTotals, ...]
    lines: tuple[StatementLine, ...] = field(default=())
    payouts: tuple[Payout, ...] = field(default=())


# The statement figure each (transaction kind, account kind, original side) adds to, with the
# sign it adds with. Anything else (the transfer's own debit of the payable at settlement, a
# transfer reversed before settlement) is not on the statement.
_FIGURES: dict[tuple[TransactionKind, AccountKind, Direction], tuple[str, int]] = {
    (TransactionKind.ORDER_SETTLED, AccountKind.BUYER, Direction.DEBIT): ("gross_minor", 1),
    (TransactionKind.ORDER_SETTLED, AccountKind.EXCHANGE_FEES, Direction.CREDIT):
        ("fee_minor", 1),
    (TransactionKind.ORDER_SETTLED, AccountKind.OPERATOR_PAYABLE, Direction.CREDIT):
        ("net_minor", 1),
    (TransactionKind.ORDER_SETTLED, AccountKind.CONNECT_TRANSFERRED, Direction.CREDIT):
        ("transferred_minor", 1),
    (TransactionKind.SETTLED_REFUND, AccountKind.CLEARING, Direction.CREDIT):
        ("refunded_gross_minor", 1),
    (TransactionKind.SETTLED_REFUND, AccountKind.EXCHANGE_REFUNDS, Direction.DEBIT):
        ("refunded_fee_minor", 1),
    (TransactionKind.SETTLED_REFUND, AccountKind.OPERATOR_PAYABLE, Direction.DEBIT):
        ("refunded_net_minor", 1),
    (TransactionKind.CONNECT_TRANSFER_REVERSAL, AccountKind.OPERATOR_PAYABLE, Direction.CREDIT):
        ("transferred_minor", -1),
}


def build_statement(operator_id: uuid.UUID, period: RevenuePeriod, zone: ZoneInfo,
                    movements: list[JournalMovement]) -> Statement:
    """Pure: the statement from the period's journal movements of the operator's orders."""
    lines: dict[tuple[uuid.UUID, str], StatementLine] = {}
    for move in movements:
        # A reversal swaps the sides of its original: read the original's side, and its sign
        # takes the figure back.
        side = move.direction if move.sign > 0 else move.direction.opposite
        figure = _FIGURES.get((move.effective_kind, move.account_kind, side))
        if figure is None:
            continue
        line = lines.get((move.order_id, move.currency))
        if line is None:
            line = lines[(move.order_id, move.currency)] = StatementLine(
                move.order_id, move.product_id, move.order_state, move.currency)
        if line.first_posted_at is None or move.posted_at < line.first_posted_at:
            line.first_posted_at = move.posted_at
        name, sign = figure
        setattr(line, name, getattr(line, name) + sign * move.sign * move.amount_minor)
    ordered = sorted(lines.values(), key=lambda line: (
        line.first_posted_at or datetime.min.replace(tzinfo=UTC), str(line.order_id)))
    by_currency: defaultdict[str, list[StatementLine]] = defaultdict(list)
    for line in ordered:
        by_currency[line.currency].append(line)
    totals = tuple(
        StatementTotals(
            currency=currency,
            gross_minor=sum(line.gross_minor for line in group),
            fee_minor=sum(line.fee_minor for line in group),
            net_minor=sum(line.net_minor for line in group),
            refunded_gross_minor=sum(line.refunded_gross_minor for line in group),
            refunded_fee_minor=sum(line.refunded_fee_minor for line in group),
            refunded_net_minor=sum(line.refunded_net_minor for line in group),
            transferred_minor=sum(line.transferred_minor for line in group),
            order_count=len({line.order_id for line in group}))
        for currency, group in sorted(by_currency.items()))
    start, end = period_window(period, zone)
    return Statement(operator_id=operator_id, period=period.label, zone=zone.key,
                     period_start=start, period_end=end, totals=totals, lines=tuple(ordered))


_MOVEMENTS = """
SELECT o.id AS order_id, o.product_id, o.state AS order_state,
       t.idempotency_key, t.kind, t.posted_at, original.kind AS original_kind,
       p.account, p.direction, p.currency, p.amount_minor
  FROM journal_transactions t
  JOIN trading_orders o ON t.reference = 'order:' || o.id::text
  JOIN journal_postings p ON p.transaction_id = t.id
  LEFT JOIN journal_transactions original ON original.id = t.reverses_id
 WHERE o.operator_org_id = $1 AND t.posted_at >= $2 AND t.posted_at < $3
   AND COALESCE(original.kind, t.kind) IN ('order_settled', 'settled_refund',
                                           'connect_transfer_reversal')
 ORDER BY t.id, p.id
"""


def _movement(row: Any) -> JournalMovement:
    reversal = row["original_kind"] is not None
    return JournalMovement(
        order_id=row["order_id"], product_id=row["product_id"], order_state=row["order_state"],
        transaction_key=row["idempotency_key"],
        effective_kind=TransactionKind(row["original_kind"] if reversal else row["kind"]),
        sign=-1 if reversal else 1, posted_at=row["posted_at"],
        account_kind=Account.parse(row["account"]).kind, direction=Direction(row["direction"]),
        currency=row["currency"].strip(), amount_minor=int(row["amount_minor"]))


async def _is_operator(operator_id: uuid.UUID) -> bool:
    async with connection() as conn:
        kind = await conn.fetchval("SELECT kind FROM organisations WHERE id = $1", operator_id)
    return bool(kind == "operator")


async def statement_for(principal: Principal, operator_id: uuid.UUID, period_label: str, *,
                        zone: ZoneInfo) -> Statement:
    """The operator's statement for the period, to the operator itself, staff or the
    regulator; another organisation is told the operator does not exist (tenant isolation)."""
    if principal.role not in (Role.STAFF, Role.REGULATOR) and (
            principal.role is not Role.OPERATOR or principal.organisation_id != operator_id):
        raise NotFoundError("no such operator", field="operator_id")
    period = parse_period(period_label)
    if not await _is_operator(operator_id):
        raise NotFoundError("no such operator", field="operator_id")
    start, end = period_window(period, zone)
    async with connection() as conn:
        rows = await conn.fetch(_MOVEMENTS, operator_id, start, end)
    statement = build_statement(operator_id, period, zone, [_movement(row) for row in rows])
    return replace(statement, payouts=tuple(
        await payouts_of(str(operator_id), since=start, until=end)))


CSV_COLUMNS = ("period", "operator_id", "order_id", "product_id", "order_state", "currency",
               "gross_minor", "fee_minor", "net_minor", "refunded_gross_minor",
               "refunded_fee_minor", "refunded_net_minor", "net_after_refunds_minor",
               "transferred_minor", "payable_minor")
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str | int:
    # OWASP CSV injection: a text cell a spreadsheet would read as a formula is quoted with a
    # leading apostrophe. Integers are written as numbers (a negative figure stays a number).
    if isinstance(value, int):
        return value
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_LEADS) else text


def to_csv(statement: Statement) -> str:
    """One row per order and currency, then a ``TOTAL`` row per currency (UTF-8, CRLF)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        writer.writerow([_cell(value) for value in (
            statement.period, str(statement.operator_id), str(line.order_id),
            str(line.product_id), line.order_state, line.currency, line.gross_minor,
            line.fee_minor, line.net_minor, line.refunded_gross_minor, line.refunded_fee_minor,
            line.refunded_net_minor, line.net_after_refunds_minor, line.transferred_minor,
            line.payable_minor)])
    for totals in statement.totals:
        writer.writerow([_cell(value) for value in (
            statement.period, str(statement.operator_id), "TOTAL", "", "", totals.currency,
            totals.gross_minor, totals.fee_minor, totals.net_minor,
            totals.refunded_gross_minor, totals.refunded_fee_minor, totals.refunded_net_minor,
            totals.net_after_refunds_minor, totals.transferred_minor, totals.payable_minor)])
    return buffer.getvalue()

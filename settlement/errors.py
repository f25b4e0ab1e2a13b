"""Errors raised by the settlement domain model.

Each error names the offending input ``field`` (so the HTTP layer can build an RFC 9457 problem
detail that points at it) and carries a stable ``code`` (so the problem ``type`` does not change
when a message is reworded). Every one of them is a client or state error, never a 500.
"""

from __future__ import annotations

from typing import ClassVar


class SettlementError(Exception):
    """Base of every settlement rule violation."""

    code: ClassVar[str] = "settlement_error"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidMoneyError(SettlementError):
    """An amount or currency that is not valid money: a float, a bad code, a negative price."""

    code = "invalid_money"


class AmountOutOfRangeError(InvalidMoneyError):
    """An amount outside PostgreSQL's signed 64-bit ``bigint``, where amounts are stored."""

    code = "amount_out_of_range"


class CurrencyMismatchError(SettlementError):
    """Two amounts in different currencies were combined or compared."""

    code = "currency_mismatch"


class InvalidQuantityError(SettlementError):
    """An order quantity that is not a positive integer."""

    code = "invalid_quantity"


class InvalidPolicyError(SettlementError):
    """A fee cap, revenue ceiling, period, eligibility or fee policy that is malformed."""

    code = "invalid_policy"


class CapVersionOverlapError(SettlementError):
    """Two versions of the same fee cap would be in force on the same day."""

    code = "cap_version_overlap"


class OverCapError(SettlementError):
    """A price above the upper-limit fee (上限收费标准) approved for it."""

    code = "over_cap"


class IneligibleForFreeUseError(SettlementError):
    """A claim to free use (有条件无偿) that no current eligibility grant supports.

    ``reason`` is one of ``purpose_is_paid``, ``not_eligible``, ``not_yet_valid``, ``expired``.
    """

    code = "ineligible_for_free_use"

    def __init__(self, message: str, *, field: str, reason: str) -> None:
        super().__init__(message, field=field)
        self.reason = reason


class InvalidTransactionError(SettlementError):
    """A journal transaction or account name that is structurally wrong."""

    code = "invalid_transaction"


class UnbalancedTransactionError(InvalidTransactionError):
    """A journal transaction whose debits and credits differ in some currency."""

    code = "unbalanced_transaction"


class IdempotencyConflictError(SettlementError):
    """An idempotency key reused for a different transaction (CONVENTIONS 8)."""

    code = "idempotency_conflict"


class ReversalError(SettlementError):
    """A reversal of a transaction that is unknown, already reversed, or itself a reversal."""

    code = "invalid_reversal"


class NoRevenueCeilingError(SettlementError):
    """Revenue reserved for an operator and period that has no approved maximum permitted
    revenue (最高准许收入): without an approved ceiling no paid revenue may be committed."""

    code = "no_revenue_ceiling"


class RevenueReleaseError(SettlementError):
    """A release of more revenue than the operator and period have committed."""

    code = "invalid_revenue_release"


class UnknownRecordError(SettlementError):
    """A settlement record (invoice, payment attempt, eligibility) that does not exist."""

    code = "not_found"


class PaymentStateError(SettlementError):
    """A payment operation that the payment's current state does not allow (e.g. refunding more
    than was received, or reusing an order's payment key for a different request)."""

    code = "invalid_payment_state"

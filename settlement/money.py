"""Money: an integer count of minor units (fen for CNY) with an ISO 4217 currency code.

Amounts are Python ints bounded to PostgreSQL's ``bigint`` (signed 64-bit), where they are stored,
so an amount that the database would refuse is refused here first. Floats and Decimals are
refused outright: a fen is never a fraction (ARCHITECTURE "Fixed decisions").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from settlement.errors import AmountOutOfRangeError, CurrencyMismatchError, InvalidMoneyError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# ISO 4217 alphabetic codes are three uppercase Latin letters; membership of the code list is
# the payment provider's concern, the shape is ours.
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")

CNY = "CNY"
_FEN_PER_YUAN = 100


def _require_int(value: object, *, field: str) -> int:
    # bool is a subclass of int; True fen is a bug, not an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMoneyError(
            f"{field} must be an integer count of minor units, got {type(value).__name__}",
            field=field,
        )
    return value


def check_int64(value: int, *, field: str) -> int:
    """Return ``value`` if PostgreSQL's ``bigint`` can hold it, else raise AmountOutOfRangeError."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise AmountOutOfRangeError(
            f"{field} {value} is outside the signed 64-bit range [{INT64_MIN}, {INT64_MAX}]",
            field=field,
        )
    return value


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of one currency in minor units. Immutable; arithmetic returns new values."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        check_int64(_require_int(self.amount_minor, field="amount_minor"), field="amount_minor")
        if not isinstance(self.currency, str) or not _CURRENCY_CODE.fullmatch(self.currency):
            raise InvalidMoneyError(
                f"currency must be an ISO 4217 code of three uppercase letters, "
                f"got {self.currency!r}",
                field="currency",
            )

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @property
    def is_zero(self) -> bool:
        return self.amount_minor == 0

    @property
    def is_positive(self) -> bool:
        return self.amount_minor > 0

    @property
    def is_negative(self) -> bool:
        return self.amount_minor < 0

    def require_same_currency(self, other: Money, *, field: str = "currency") -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(
                f"cannot combine {self.currency} with {other.currency}", field=field
            )

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self.require_same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self.require_same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __mul__(self, quantity: int) -> Money:
        # Explicitly refused rather than NotImplemented so that 1.5 * price fails with a
        # domain error naming the rule instead of a generic TypeError.
        _require_int(quantity, field="quantity")
        return Money(self.amount_minor * quantity, self.currency)

    __rmul__ = __mul__

    # Ordering refuses mixed currencies, so the builtins min() and max() are safe on Money.
    def _ordered_amounts(self, other: Money) -> tuple[int, int]:
        self.require_same_currency(other)
        return self.amount_minor, other.amount_minor

    def __lt__(self, other: Money) -> bool:
        mine, theirs = self._ordered_amounts(other)
        return mine < theirs

    def __le__(self, other: Money) -> bool:
        mine, theirs = self._ordered_amounts(other)
        return mine <= theirs

    def __gt__(self, other: Money) -> bool:
        mine, theirs = self._ordered_amounts(other)
        return mine > theirs

    def __ge__(self, other: Money) -> bool:
        mine, theirs = self._ordered_amounts(other)
        return mine >= theirs


def format_cny(money: Money) -> str:
    """Render a CNY amount for people, for example

    ``Money(1234, "CNY")`` → ``"¥12.34"``, ``Money(-5, "CNY")`` → ``"-¥0.05"``.

    No thousands grouping, so the text round-trips through any decimal parser.
    """
    if money.currency != CNY:
        raise CurrencyMismatchError(
            f"format_cny formats CNY, got {money.currency}", field="currency"
        )
    sign = "-" if money.amount_minor < 0 else ""
    yuan, fen = divmod(abs(money.amount_minor), _FEN_PER_YUAN)
    return f"{sign}¥{yuan}.{fen:02d}"

"""Data products and the rules for listing them (目录、上架, MISSION §3, §4 and §6).

A product is built by an authorized operator from registered data resources (cited by unified
code) and is listed in the catalog with its metadata, quality indicators, permitted purposes and
one price per (purpose, charging unit). Its life::

    draft ──list──▶ listed ──delist (with a reason)──▶ delisted ──list (if still valid)──▶ listed

Rules enforced when a product is built (they cannot change later, so a ``Product`` value that
exists obeys them):

* Grades (分类分级): core data is never traded, so a core-graded product is refused outright.
  Important data is delivered only in forms that keep raw data in the domain (sandbox or API,
  原始数据不出域) and only to buyers cleared for it; see ``delivery_allowed`` and
  ``buyer_may_receive``.
* Prices (价格形成机制): public-governance and public-welfare use is conditionally free
  (有条件无偿), so those prices are 0; industry use is paid (有条件有偿), so its prices are > 0.
  Amounts are integer fen in CNY. Every price's purpose is permitted and every permitted purpose
  has a price, so a buyer with a permitted purpose always finds one.
* Title and description are the Chinese text published in the catalog: the title must contain
  Chinese characters.

Rules that depend on the moment are checked when listing: ``listing_blockers`` reports every
reason a product cannot be listed now (registration, authorization state, term and scope,
source resources' registration and grade).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from listings.authorization import Authorization, CoverageReason
from listings.codes import UnifiedCode, resource_code_set
from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    UpdateCycle,
    Vocabulary,
)
from listings.errors import (
    DomainRuleError,
    DomainValueError,
    InvalidTransitionError,
    require_member,
    require_text,
)
from listings.registration import RegistrationState

TITLE_MIN_LENGTH = 2
TITLE_MAX_LENGTH = 50
DESCRIPTION_MIN_LENGTH = 10
DESCRIPTION_MAX_LENGTH = 2000
MAX_SCENARIO_LENGTH = 100
MAX_REASON_LENGTH = 1000
CURRENCY = "CNY"

_HAN_CHARACTER = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_IMPORTANT_DATA_FORMS = frozenset({DeliveryForm.SANDBOX, DeliveryForm.API})


def delivery_allowed(grade: Grade, form: DeliveryForm) -> bool:
    """Whether data of ``grade`` may be delivered in ``form``: general data in any form,
    important data only via sandbox or API (raw data stays in the domain), core data never."""
    if grade is Grade.GENERAL:
        return True
    if grade is Grade.IMPORTANT:
        return form in _IMPORTANT_DATA_FORMS
    return False


def buyer_may_receive(grade: Grade, buyer_clearance: Grade) -> bool:
    """Whether a buyer cleared up to ``buyer_clearance`` may receive data of ``grade``.

    Every buyer holds at least ``general`` clearance; ``important`` data needs a buyer cleared
    for important data; core data goes to nobody, whatever the clearance.
    """
    if grade is Grade.CORE:
        return False
    return grade.rank <= buyer_clearance.rank


class ProductState(Vocabulary):
    DRAFT = "draft", "草稿"
    LISTED = "listed", "已上架"
    DELISTED = "delisted", "已下架"


@dataclass(frozen=True)
class QualityIndicators:
    """Quality scores (数据质量), each an integer from 0 to 100."""

    completeness: int
    accuracy: int
    timeliness: int
    usability: int
    machine_readability: int

    def __post_init__(self) -> None:
        for indicator in dataclasses.fields(self):
            value = getattr(self, indicator.name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise DomainValueError(
                    f"quality.{indicator.name}", f"must be an integer from 0 to 100, not {value!r}"
                )


@dataclass(frozen=True)
class Price:
    """One list price: ``price_minor`` fen per ``unit`` for use for ``purpose``."""

    purpose: Purpose
    unit: ChargingUnit
    price_minor: int
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        if not isinstance(self.purpose, Purpose):
            raise DomainValueError("purpose", f"{self.purpose!r} is not a purpose")
        if not isinstance(self.unit, ChargingUnit):
            raise DomainValueError("unit", f"{self.unit!r} is not a charging unit")
        if isinstance(self.price_minor, bool) or not isinstance(self.price_minor, int):
            raise DomainValueError("price_minor", "must be an integer number of fen")
        if self.price_minor < 0:
            raise DomainValueError("price_minor", f"must not be negative ({self.price_minor})")
        if self.currency != CURRENCY:
            raise DomainValueError("currency", f"must be {CURRENCY}, not {self.currency!r}")


@dataclass(frozen=True)
class Product:
    """A data product of an operator; ``scenario`` names its application scenario (应用场景),
    which a scenario-scoped authorization requires."""

    operator_id: str
    title: str
    description: str
    domain: DataDomain
    source_resource_codes: frozenset[UnifiedCode]
    delivery_form: DeliveryForm
    update_cycle: UpdateCycle
    grade: Grade
    quality: QualityIndicators
    permitted_purposes: frozenset[Purpose]
    prices: tuple[Price, ...]
    scenario: str | None = None
    state: ProductState = ProductState.DRAFT
    delisting_reason: str = ""
    # The peer exchange (its ledger origin) whose registration of this product was recognised
    # here (一地上架,全国互认): the operator's authorization and the sources were checked where it
    # was registered, and that exchange's log is watched for their end instead.
    recognised_from: str | None = None

    def __post_init__(self) -> None:
        self._set("operator_id", require_text("operator_id", self.operator_id, max_length=200))
        self._check_text()
        require_member("domain", self.domain, DataDomain)
        self._set(
            "source_resource_codes",
            resource_code_set("source_resource_codes", self.source_resource_codes),
        )
        require_member("delivery_form", self.delivery_form, DeliveryForm)
        require_member("update_cycle", self.update_cycle, UpdateCycle)
        self._check_grade()
        if not isinstance(self.quality, QualityIndicators):
            raise DomainValueError("quality", "expected QualityIndicators")
        purposes = frozenset(self.permitted_purposes)
        if not purposes:
            raise DomainValueError("permitted_purposes", "at least one purpose is required")
        for purpose in purposes:
            require_member("permitted_purposes", purpose, Purpose)
        self._set("permitted_purposes", purposes)
        self._set("prices", tuple(self.prices))
        self._check_prices()
        if self.scenario is not None:
            self._set(
                "scenario", require_text("scenario", self.scenario, max_length=MAX_SCENARIO_LENGTH)
            )
        if self.recognised_from is not None:
            self._set(
                "recognised_from",
                require_text("recognised_from", self.recognised_from, max_length=255),
            )
        require_member("state", self.state, ProductState)
        if (self.state is ProductState.DELISTED) != bool(self.delisting_reason):
            raise DomainValueError(
                "delisting_reason", "a reason is given exactly when the product is delisted"
            )

    def _set(self, attribute: str, value: object) -> None:
        # object.__setattr__ is the documented way to normalise a frozen dataclass's field.
        object.__setattr__(self, attribute, value)

    def _check_text(self) -> None:
        title = require_text(
            "title", self.title, min_length=TITLE_MIN_LENGTH, max_length=TITLE_MAX_LENGTH
        )
        if _HAN_CHARACTER.search(title) is None:
            raise DomainValueError("title", "the catalog title must be in Chinese")
        self._set("title", title)
        self._set(
            "description",
            require_text(
                "description",
                self.description,
                min_length=DESCRIPTION_MIN_LENGTH,
                max_length=DESCRIPTION_MAX_LENGTH,
                multiline=True,
            ),
        )

    def _check_grade(self) -> None:
        require_member("grade", self.grade, Grade)
        if self.grade is Grade.CORE:
            raise DomainRuleError("grade", "core data is never traded")
        if not delivery_allowed(self.grade, self.delivery_form):
            allowed = " or ".join(sorted(form.value for form in _IMPORTANT_DATA_FORMS))
            raise DomainRuleError(
                "delivery_form",
                f"{self.grade.value} data may only be delivered via {allowed}, "
                f"not {self.delivery_form.value}",
            )

    def _check_prices(self) -> None:
        seen: set[tuple[Purpose, ChargingUnit]] = set()
        for index, price in enumerate(self.prices):
            field = f"prices[{index}]"
            if not isinstance(price, Price):
                raise DomainValueError(field, "expected a Price")
            if price.purpose not in self.permitted_purposes:
                raise DomainRuleError(
                    f"{field}.purpose", f"{price.purpose.value} is not a permitted purpose"
                )
            if price.purpose.is_conditionally_free and price.price_minor != 0:
                raise DomainRuleError(
                    f"{field}.price_minor",
                    f"{price.purpose.value} use is conditionally free (有条件无偿): "
                    "the price must be 0",
                )
            if not price.purpose.is_conditionally_free and price.price_minor == 0:
                raise DomainRuleError(
                    f"{field}.price_minor",
                    f"{price.purpose.value} use is paid (有条件有偿): the price must be above 0",
                )
            if (price.purpose, price.unit) in seen:
                raise DomainRuleError(
                    f"{field}.unit",
                    f"a second price for {price.purpose.value} {price.unit.value}",
                )
            seen.add((price.purpose, price.unit))
        unpriced = self.permitted_purposes - {purpose for purpose, _unit in seen}
        if unpriced:
            names = ", ".join(sorted(purpose.value for purpose in unpriced))
            raise DomainRuleError("prices", f"permitted purposes without a price: {names}")

    def price_for(self, purpose: Purpose, unit: ChargingUnit) -> Price | None:
        for price in self.prices:
            if price.purpose is purpose and price.unit is unit:
                return price
        return None


class BlockerReason(Vocabulary):
    NOT_REGISTERED = "not_registered", "产品未完成登记"
    NO_AUTHORIZATION = "no_authorization", "无授权运营依据"
    OPERATOR_MISMATCH = "operator_mismatch", "授权不属于该运营机构"
    AUTHORIZATION_NOT_ACTIVE = "authorization_not_active", "授权非有效状态"
    AUTHORIZATION_OUT_OF_TERM = "authorization_out_of_term", "不在授权期限内"
    DOMAIN_OUTSIDE_SCOPE = "domain_outside_scope", "领域超出授权范围"
    SCENARIO_OUTSIDE_SCOPE = "scenario_outside_scope", "场景超出授权范围"
    RESOURCE_NOT_COVERED = "resource_not_covered", "数据资源未获授权"
    SOURCE_NOT_REGISTERED = "source_not_registered", "来源数据资源未登记"
    CORE_SOURCE = "core_source", "来源数据资源为核心数据"


_BLOCKER_FOR_GAP = {
    CoverageReason.NOT_ACTIVE: BlockerReason.AUTHORIZATION_NOT_ACTIVE,
    CoverageReason.OUT_OF_TERM: BlockerReason.AUTHORIZATION_OUT_OF_TERM,
    CoverageReason.DOMAIN_OUTSIDE_SCOPE: BlockerReason.DOMAIN_OUTSIDE_SCOPE,
    CoverageReason.SCENARIO_OUTSIDE_SCOPE: BlockerReason.SCENARIO_OUTSIDE_SCOPE,
    CoverageReason.RESOURCE_NOT_COVERED: BlockerReason.RESOURCE_NOT_COVERED,
}


@dataclass(frozen=True)
class Blocker:
    """One reason a product cannot be listed; ``field`` names what to fix."""

    reason: BlockerReason
    field: str
    message: str


def listing_blockers(
    product: Product,
    authorization: Authorization | None,
    registration_state: RegistrationState | None,
    on: date,
    *,
    source_grades: Mapping[UnifiedCode, Grade],
) -> list[Blocker]:
    """Every reason ``product`` cannot be listed on day ``on``; empty when it can.

    ``authorization`` is the operator's authorization the product is listed under (``None`` if
    it has none), ``registration_state`` the state of the product's own registration (``None`` if
    never applied for), and ``source_grades`` the registered grade of each source resource whose
    code is currently registered; a source missing from it is not registered (or was cancelled).
    A core-graded resource may be registered but never feeds a product (core data is never
    traded, MISSION §3).
    """
    blockers: list[Blocker] = []
    if registration_state is not RegistrationState.REGISTERED:
        state = "never applied for" if registration_state is None else registration_state.value
        blockers.append(
            Blocker(
                BlockerReason.NOT_REGISTERED,
                "registration",
                f"the product must be registered before listing; its registration is {state}",
            )
        )
    if product.recognised_from is not None:
        # Authorization and sources belong to the registering exchange, which checked them.
        return blockers
    if authorization is None:
        blockers.append(
            Blocker(
                BlockerReason.NO_AUTHORIZATION,
                "authorization",
                "the operator holds no authorization for this product",
            )
        )
    else:
        if authorization.operator_id != product.operator_id:
            blockers.append(
                Blocker(
                    BlockerReason.OPERATOR_MISMATCH,
                    "authorization",
                    f"the authorization belongs to {authorization.operator_id!r}, "
                    f"not {product.operator_id!r}",
                )
            )
        coverage = authorization.covers(
            product.domain, product.source_resource_codes, on, scenario=product.scenario
        )
        blockers.extend(
            Blocker(_BLOCKER_FOR_GAP[gap.reason], gap.field, gap.message) for gap in coverage.gaps
        )
    for code in sorted(product.source_resource_codes):
        grade = source_grades.get(code)
        if grade is None:
            blockers.append(
                Blocker(
                    BlockerReason.SOURCE_NOT_REGISTERED,
                    "source_resource_codes",
                    f"source resource {code} is not currently registered",
                )
            )
        elif grade is Grade.CORE:
            blockers.append(
                Blocker(
                    BlockerReason.CORE_SOURCE,
                    "source_resource_codes",
                    f"source resource {code} is graded core; core data is never traded",
                )
            )
    return blockers


class ListingBlockedError(DomainRuleError):
    """Listing was refused; ``blockers`` holds every reason, ``field`` names the first."""

    default_code = "listing_blocked"

    def __init__(self, blockers: Iterable[Blocker]) -> None:
        self.blockers = tuple(blockers)
        first = self.blockers[0]
        super().__init__(first.field, "; ".join(blocker.message for blocker in self.blockers))


def list_product(
    product: Product,
    authorization: Authorization | None,
    registration_state: RegistrationState | None,
    on: date,
    *,
    source_grades: Mapping[UnifiedCode, Grade],
) -> Product:
    """draft | delisted → listed (上架), if nothing blocks it (see ``listing_blockers``)."""
    if product.state is ProductState.LISTED:
        raise InvalidTransitionError("state", "the product is already listed")
    blockers = listing_blockers(
        product, authorization, registration_state, on, source_grades=source_grades
    )
    if blockers:
        raise ListingBlockedError(blockers)
    return dataclasses.replace(product, state=ProductState.LISTED, delisting_reason="")


def delist(product: Product, *, reason: str) -> Product:
    """listed → delisted (下架), with the reason that is published."""
    if product.state is not ProductState.LISTED:
        raise InvalidTransitionError(
            "state", f"cannot delist a product that is {product.state.value}"
        )
    checked_reason = require_text("reason", reason, max_length=MAX_REASON_LENGTH)
    return dataclasses.replace(
        product, state=ProductState.DELISTED, delisting_reason=checked_reason
    )

"""Use cases of an operator's data products: create a draft, list it (上架), delist it (下架).

An operator sees and changes only its own products; another operator's product answers as
unknown. A product must fit one of the operator's active authorizations from the start (its
domain, scenario and source resources), and can be listed only once its own registration has
a code and an active, in-term authorization covers it (``listings.product.listing_blockers``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

from listings import product as model
from listings import repository
from listings.authorization import Authorization, AuthorizationState
from listings.catalog import product_document
from listings.codes import UnifiedCode
from listings.context import Actor, OperatorDirectory
from listings.domains import Grade, SubjectKind
from listings.errors import DomainRuleError, DomainValueError, NotFoundError, require_text
from listings.product import Blocker, Product, ProductState
from listings.registration import RegistrationState
from listings.repository import AuthorizationRecord, ProductRecord
from listings.transactions import transaction


def _now() -> datetime:
    return datetime.now(UTC)


async def _source_grades(codes: Sequence[UnifiedCode]) -> dict[UnifiedCode, Grade]:
    entries = await repository.registry_entries(codes)
    return {code: entry.grade for code, entry in entries.items() if entry.registered}


def _check_sources(product: Product, source_grades: dict[UnifiedCode, Grade]) -> None:
    for code in sorted(product.source_resource_codes):
        grade = source_grades.get(code)
        if grade is None:
            raise DomainRuleError(
                "source_resource_codes", f"{code} is not a registered data resource code"
            )
        if grade is Grade.CORE:
            raise DomainRuleError(
                "source_resource_codes", f"{code} is graded core; core data is never traded"
            )


def _best_authorization(
    product: Product, records: Sequence[AuthorizationRecord], on: date
) -> tuple[AuthorizationRecord | None, list[Blocker]]:
    """The authorization that covers ``product`` on ``on``, or the one that comes closest
    (fewest gaps) with its gaps; ``(None, [])`` when the operator holds none."""
    best: tuple[AuthorizationRecord | None, list[Blocker]] = (None, [])
    for record in records:
        coverage = record.authorization.covers(
            product.domain, product.source_resource_codes, on, scenario=product.scenario
        )
        gaps = [
            Blocker(model.BlockerReason.NO_AUTHORIZATION, gap.field, gap.message)
            for gap in coverage.gaps
        ]
        if best[0] is None or len(gaps) < len(best[1]):
            best = (record, gaps)
        if not gaps:
            break
    return best


def _catalog_document(product: Product, operator_name: str) -> str:
    return product_document(
        title=product.title,
        description=product.description,
        domain=product.domain,
        operator_name=operator_name,
        scenario=product.scenario,
    )


async def create(
    actor: Actor, product: Product, *, today: date, directory: OperatorDirectory
) -> ProductRecord:
    """A draft product of the calling operator; it must fit one of its active authorizations."""
    if product.operator_id != str(actor.organisation_id):
        raise DomainValueError("operator_id", "an operator creates only its own products")
    if product.state is not ProductState.DRAFT:
        raise DomainValueError("state", "a new product starts as a draft")
    operator_name = await directory.operator_name(actor.organisation_id)
    if operator_name is None:
        raise DomainValueError("operator_id", "the caller is not an operator organisation")
    async with transaction():
        _check_sources(product, await _source_grades(sorted(product.source_resource_codes)))
        authorizations = [
            record
            for record in await repository.list_authorizations(actor.organisation_id)
            if record.authorization.state is AuthorizationState.ACTIVE
        ]
        record, gaps = _best_authorization(product, authorizations, today)
        if record is None:
            raise DomainRuleError(
                "source_resource_codes", "the operator holds no active authorization"
            )
        if gaps:
            raise DomainRuleError(gaps[0].field, "; ".join(gap.message for gap in gaps))
        product_id = uuid4()
        document = _catalog_document(product, operator_name)
        await repository.insert_product(product_id, operator_name, product, document, _now())
        stored = await repository.get_product(product_id)
    if stored is None:
        raise RuntimeError("the product vanished")
    return stored


async def get(actor: Actor, product_id: UUID) -> ProductRecord:
    """The operator's own product (staff and the regulator may see any)."""
    record = await repository.get_product(product_id)
    if record is None or (actor.role == "operator" and record.operator_id != actor.organisation_id):
        raise NotFoundError("product_id", "no such product")
    return record


async def list_for(actor: Actor) -> list[ProductRecord]:
    if actor.role == "operator":
        return await repository.list_products(operator_id=actor.organisation_id)
    return await repository.list_products()


async def _own_locked(actor: Actor, product_id: UUID) -> ProductRecord:
    record = await repository.get_product(product_id, lock=True)
    if record is None or record.operator_id != actor.organisation_id:
        raise NotFoundError("product_id", "no such product")
    return record


def _registration_state(
    code: UnifiedCode | None, registered: bool | None
) -> RegistrationState | None:
    if code is None or registered is None:
        return None
    return RegistrationState.REGISTERED if registered else RegistrationState.CANCELLED


async def list_product(actor: Actor, product_id: UUID, *, today: date) -> ProductRecord:
    """Put the operator's product on the catalog (上架), under the authorization covering it."""
    async with transaction():
        record = await _own_locked(actor, product_id)
        product = record.product
        code = record.registration_code
        own_entry = None if code is None else await repository.get_registry_entry(code)
        registration_state = _registration_state(
            code, None if own_entry is None else own_entry.registered
        )
        source_grades = await _source_grades(sorted(product.source_resource_codes))
        authorizations = await repository.list_authorizations(actor.organisation_id)
        chosen, _gaps = _best_authorization(product, authorizations, today)
        authorization: Authorization | None = None if chosen is None else chosen.authorization
        # Raises ListingBlockedError naming every reason the product cannot be listed now.
        model.list_product(
            product, authorization, registration_state, today, source_grades=source_grades
        )
        if chosen is None:
            raise RuntimeError("listing_blockers let through a product without authorization")
        await repository.mark_listed(product_id, chosen.id, _now())
        stored = await repository.get_product(product_id)
    if stored is None:
        raise RuntimeError("the product vanished")
    return stored


async def delist(actor: Actor, product_id: UUID, *, reason: str) -> ProductRecord:
    """Take the operator's product off the catalog (下架), with the reason shown."""
    async with transaction():
        record = await _own_locked(actor, product_id)
        delisted = model.delist(record.product, reason=reason)
        await repository.mark_delisted([product_id], delisted.delisting_reason, "operator", _now())
        stored = await repository.get_product(product_id)
    if stored is None:
        raise RuntimeError("the product vanished")
    return stored


async def list_recognised(
    actor: Actor, product: Product, code: UnifiedCode, *, today: date, directory: OperatorDirectory
) -> ProductRecord:
    """List a product registered at a peer exchange under its code there (一地上架,全国互认).

    The caller has verified the code against the peer's log and anchor and that the caller's
    organisation holds the registration; here it becomes a listed product of this catalog,
    with no local authorization (the registering exchange's is watched instead).
    """
    if product.recognised_from is None:
        raise DomainValueError("recognised_from", "a recognised product names its exchange")
    if product.operator_id != str(actor.organisation_id):
        raise DomainValueError("operator_id", "an operator lists only its own products")
    if code.kind not in (SubjectKind.PRODUCT, SubjectKind.SERVICE):
        raise DomainRuleError("code", f"{code} is a {code.kind.value} code; only products and "
                                      "services are listed")
    operator_name = await directory.operator_name(actor.organisation_id)
    if operator_name is None:
        raise DomainValueError("operator_id", "the caller is not an operator organisation")
    # Raises ListingBlockedError if the product could not be listed; stored as a draft, then
    # marked listed in the same transaction like any other listing.
    model.list_product(product, None, RegistrationState.REGISTERED, today, source_grades={})
    async with transaction():
        if await repository.products_under_code(code):
            raise DomainRuleError("code", f"a product under {code} is already in this catalog")
        product_id = uuid4()
        document = _catalog_document(product, operator_name)
        now = _now()
        await repository.insert_product(product_id, operator_name, product, document, now)
        await repository.set_product_registration_code(product_id, code)
        await repository.mark_listed(product_id, None, now)
        stored = await repository.get_product(product_id)
    if stored is None:
        raise RuntimeError("the product vanished")
    return stored


async def delist_recognised(code: UnifiedCode, *, reason: str) -> list[UUID]:
    """Delist what this catalog lists under a peer's code, when that exchange cancelled the
    registration or the operator's authorization there ended; returns the products delisted."""
    checked_reason = require_text("reason", reason, max_length=model.MAX_REASON_LENGTH)
    async with transaction():
        # A peer's code is no local product's own code nor a resource one draws on, so what
        # is listed under it here is exactly what was recognised.
        product_ids = await repository.products_to_delist_for_code(code)
        if product_ids:
            await repository.mark_delisted(product_ids, checked_reason, "registry", _now())
    return product_ids

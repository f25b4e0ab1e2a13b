"""The matchers of this process, kept in step with the database, and the refresh of stored
matches that tells buyers and operators about new matches.

Each process (web server, Celery worker) holds one ``MatchingService``: a ``ProductMatcher`` over
the listed products and a ``DemandMatcher`` over the open demands, built at start and then
brought up to date by ``sync``, which reads only the rows changed since the last read. Changes
are found by their ``updated_at``; as a transaction's timestamp is taken before it commits, a
row can become visible with a timestamp older than one already read, so every read reaches
``OVERLAP`` further back, and a row is applied only if its version is newer than the one held
(so re-reading it is harmless, and two concurrent syncs cannot put an older version back).

``refresh_stored_matches`` (the ``trading.refresh_matches`` job) does the same for the stored
matches, with its watermark in the database so that any process may run it: it recomputes the
top products of every open demand that a changed product or demand could affect, stores them,
and notifies the buyer and the operators of matches they were not told about before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from listings.domains import DataDomain, DeliveryForm
from market.trading import notifications, store
from market.trading.matching import DEFAULT_K, DemandMatcher, ListedProduct, Match, ProductMatcher
from market.trading.store import DemandRecord, DemandState, ProductChange
from market.trading.tables import DemandRow

# Longer than any transaction that writes a product or a demand is expected to stay open.
OVERLAP = timedelta(seconds=30)
STORED_MATCHES = DEFAULT_K


def _newer(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate > current else current


def _since(watermark: datetime | None) -> datetime | None:
    return None if watermark is None else watermark - OVERLAP


class MatchingService:
    """This process's matchers; ``sync`` before reading them."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        # Each side's terms are weighed by how rare they are on that side (matching.rarity).
        self.products = ProductMatcher()
        self.demands = DemandMatcher(products=self.products)
        self.products.demands = self.demands
        self._open: dict[str, DemandRecord] = {}
        self._by_operator: dict[str, set[str]] = defaultdict(set)
        self._product_versions: dict[str, datetime] = {}
        self._demand_versions: dict[str, datetime] = {}
        self._products_seen: datetime | None = None
        self._demands_seen: datetime | None = None

    def today(self) -> date:
        return datetime.now(self.zone).date()

    async def sync(self) -> None:
        """Apply every product and demand change committed since the last sync."""
        today = self.today()
        for change in await store.products_changed_since(_since(self._products_seen), today):
            self.apply_product(change)
        for record in await store.demands_changed_since(_since(self._demands_seen)):
            self.apply_demand(record)

    def apply_product(self, change: ProductChange) -> None:
        product_id = change.product.product_id
        known = self._product_versions.get(product_id)
        self._products_seen = _newer(self._products_seen, change.version)
        if known is not None and change.version <= known:
            return
        self._product_versions[product_id] = change.version
        if change.listed:
            self.products.upsert(change.product)
            self._by_operator[change.product.operator_id].add(product_id)
        else:
            self.products.remove(product_id)
            self._by_operator[change.product.operator_id].discard(product_id)

    def apply_demand(self, record: DemandRecord) -> None:
        demand_id = record.demand.demand_id
        known = self._demand_versions.get(demand_id)
        self._demands_seen = _newer(self._demands_seen, record.updated_at)
        if known is not None and record.updated_at <= known:
            return
        self._demand_versions[demand_id] = record.updated_at
        # Operators look for open demands only; a matched or closed one leaves the index.
        if record.state is DemandState.OPEN:
            self.demands.upsert(record.demand)
            self._open[demand_id] = record
        else:
            self.demands.remove(demand_id)
            self._open.pop(demand_id, None)

    def open_demands(self) -> list[DemandRecord]:
        return list(self._open.values())

    def open_demand(self, demand_id: str) -> DemandRecord | None:
        return self._open.get(demand_id)

    def operator_products(self, operator_id: UUID) -> list[ListedProduct]:
        owned = self._by_operator[str(operator_id)]
        found = (self.products.get(product_id) for product_id in owned)
        return sorted((p for p in found if p is not None), key=lambda p: p.product_id)

    def top_products(self, record: DemandRecord, k: int = DEFAULT_K) -> list[Match]:
        return self.products.top_products(record.demand, k)


_current: MatchingService | None = None


def install(service: MatchingService) -> None:
    """Make ``service`` this process's matching service (the app does so at start)."""
    global _current  # noqa: PLW0603 -- one matching service per process, by design
    _current = service


def current(zone: ZoneInfo | None = None) -> MatchingService:
    """This process's matching service; a process without one (a Celery worker) makes its own,
    which its first ``sync`` fills from the database."""
    global _current  # noqa: PLW0603 -- one matching service per process, by design
    if _current is None:
        _current = MatchingService(zone or ZoneInfo("Asia/Shanghai"))
    return _current


async def build(zone: ZoneInfo) -> MatchingService:
    """A service filled from the database and installed as this process's."""
    service = MatchingService(zone)
    await service.sync()
    install(service)
    return service


# --- stored matches --------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshReport:
    skipped: bool
    demands_recomputed: int
    new_matches: int


def _shelves(record: DemandRecord) -> set[tuple[DataDomain, DeliveryForm]]:
    demand = record.demand
    return {(domain, form) for domain in demand.domains for form in demand.delivery_forms}


def _match_payload(match: Match) -> dict[str, object]:
    return {
        "product_id": match.product_id,
        "score": round(match.score, 4),
        "matched_terms": list(match.matched_terms),
        "area_fit": match.area_fit.value,
        "unit": match.price.unit.value,
        "price_minor": match.price.price_minor,
    }


async def refresh_stored_matches(service: MatchingService) -> RefreshReport:
    """Recompute and store the matches of the open demands affected by changes since the last
    refresh, and notify both sides of new matches. Idempotent: a match is announced only when
    it was not among the stored ones, so re-reading a change does not notify twice."""
    await service.sync()
    now = datetime.now(UTC)
    today = service.today()
    async with DemandRow._meta.db.transaction():
        if not await store.try_refresh_lock():
            return RefreshReport(skipped=True, demands_recomputed=0, new_matches=0)
        products_seen, demands_seen = await store.refresh_watermarks()
        product_changes = await store.products_changed_since(_since(products_seen), today)
        demand_changes = await store.demands_changed_since(_since(demands_seen))
        changed_shelves = {
            (change.product.domain, change.product.delivery_form) for change in product_changes
        }
        affected: dict[UUID, DemandRecord] = {
            record.id: record
            for record in service.open_demands()
            if changed_shelves & _shelves(record)
        }
        for record in demand_changes:
            affected[record.id] = record
        stored = await store.stored_matches(list(affected))
        new_matches = 0
        for demand_id, record in sorted(affected.items()):
            if record.state is not DemandState.OPEN or record.demand.deadline < today:
                if stored.get(demand_id):
                    await store.replace_matches(demand_id, [], now)
                continue
            new_matches += await _store_and_announce(
                service, record, {m.product_id for m in stored.get(demand_id, [])}, now
            )
        versions = [change.version for change in product_changes]
        updates = [record.updated_at for record in demand_changes]
        await store.save_refresh_watermarks(
            max([*versions, *([products_seen] if products_seen else [])], default=now),
            max([*updates, *([demands_seen] if demands_seen else [])], default=now),
        )
    return RefreshReport(skipped=False, demands_recomputed=len(affected), new_matches=new_matches)


async def _store_and_announce(
    service: MatchingService, record: DemandRecord, told: set[UUID], now: datetime
) -> int:
    matches = service.top_products(record, STORED_MATCHES)
    with_operators = []
    for match in matches:
        product = service.products.get(match.product_id)
        if product is not None:
            with_operators.append((match, product.operator_id))
    await store.replace_matches(record.id, with_operators, now)
    fresh = [(m, operator) for m, operator in with_operators if UUID(m.product_id) not in told]
    if not fresh:
        return 0
    subject = f"demand:{record.id}"
    await notifications.notify(
        record.buyer_org_id,
        "demand.new_matches",
        subject,
        {
            "demand_id": str(record.id),
            "title": record.demand.title,
            "matches": [_match_payload(m) for m, _operator in fresh],
        },
        now=now,
    )
    by_operator: dict[str, list[Match]] = defaultdict(list)
    for match, operator in fresh:
        by_operator[operator].append(match)
    for operator, operator_matches in sorted(by_operator.items()):
        await notifications.notify(
            UUID(operator),
            "demand.matches_your_products",
            subject,
            {
                "demand_id": str(record.id),
                "title": record.demand.title,
                "product_ids": [m.product_id for m in operator_matches],
            },
            now=now,
        )
    return len(fresh)

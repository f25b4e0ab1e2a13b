"""Catalog search latency over N listed products, and registrations per second.

Run as ``.venv/bin/python bench/catalog_search.py [--products 100000] [--registrations 200]
[--reuse DIR]``. It starts an embedded PostgreSQL cluster (a fresh one in a temporary directory,
or with ``--reuse DIR`` one kept in DIR across runs), migrates it, bulk-loads N listed products
(search documents built by the same ``listings.catalog.product_document`` the service uses;
skipped when a reused cluster already holds exactly N), then times ``listings.catalog.search``
— the use case behind ``GET /catalog``, facets included — for a two-term Chinese query with one
filter (and a few other shapes), and prints p50/p95. Finally it runs full registration
workflows (apply → accept → review → notice → code, five transactions each with its ledger
leaf) and prints workflows and steps per second. Target: p95 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg

from listings import catalog, registrations_service, repository
from listings.authorization import Authorization, Scope, Term
from listings.catalog import CatalogQuery, product_document
from listings.codes import UnifiedCode
from listings.context import Actor
from listings.domains import (
    ChargingUnit,
    DataDomain,
    DeliveryForm,
    Grade,
    Purpose,
    ScopeKind,
    SubjectKind,
    UpdateCycle,
)
from listings.product import Price, Product, ProductState, QualityIndicators
from listings.registration import RegistrationData, RegistrationKind

REGIONS = ("全省", "全市", "城区", "县域", "重点区域", "沿海地区", "城乡", "园区")
TOPICS = {
    DataDomain.METEOROLOGY: ("台风预警", "降水实况", "气温预报", "雷电监测", "大风预警",
                             "干旱监测", "光伏辐射", "道路结冰预警"),
    DataDomain.TRANSPORT: ("公交到站", "道路拥堵", "停车泊位", "货车通行", "地铁客流",
                           "出租车运行", "高速车流", "港口吞吐"),
    DataDomain.HEALTH: ("门诊量统计", "床位使用", "慢病管理", "疫苗接种", "医疗资源",
                        "药品流通", "急救响应", "健康体检"),
    DataDomain.FINANCE: ("企业信用", "经营异常", "融资需求", "纳税信用", "动产抵押",
                         "股权出质", "供应链金融", "普惠金融"),
    DataDomain.SPATIAL_GEOGRAPHY: ("行政区划", "地理编码", "遥感影像", "地形地貌",
                                   "兴趣点分布", "建成区范围", "土地利用", "地名地址"),
    DataDomain.CULTURE_TOURISM: ("景区客流", "旅游消费", "文旅场馆", "乡村旅游", "酒店入住",
                                 "游客满意度", "非遗资源", "演出票务"),
}
GENERIC_TOPICS = ("运行监测", "统计分析", "资源目录", "服务能力", "指数", "预警信息", "台账",
                  "空间分布")
SUFFIXES = ("数据", "数据集", "指数", "接口服务", "分析报告", "统计数据")
USES = ("支撑企业经营决策", "服务城市精细化治理", "助力风险防控", "用于产业研究与规划",
        "面向保险精算与定价", "辅助物流与出行规划")


def make_product(rng: random.Random, operator_id: UUID, source: UnifiedCode) -> Product:
    domain = rng.choice(list(DataDomain))
    topic = rng.choice(TOPICS.get(domain, GENERIC_TOPICS))
    region = rng.choice(REGIONS)
    title = f"{region}{topic}{rng.choice(SUFFIXES)}"
    description = (f"{region}{domain.label}领域{topic}相关的公共数据产品,经质量控制与脱敏处理,"
                   f"按日更新,{rng.choice(USES)}。")
    form = rng.choice(list(DeliveryForm))
    unit = rng.choice(list(ChargingUnit))
    return Product(
        operator_id=str(operator_id), title=title, description=description, domain=domain,
        source_resource_codes=frozenset({source}), delivery_form=form,
        update_cycle=rng.choice(list(UpdateCycle)), grade=Grade.GENERAL,
        quality=QualityIndicators(*(rng.randint(60, 100) for _ in range(5))),
        permitted_purposes=frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
        prices=(Price(Purpose.INDUSTRY, unit, rng.randint(1, 5_000_000)),
                Price(Purpose.PUBLIC_WELFARE, unit, 0)),
        state=ProductState.LISTED)


async def load_products(url: str, count: int, operators: int) -> None:
    rng = random.Random(20251122)
    now = datetime.now(UTC)
    source = UnifiedCode("BENCH", SubjectKind.RESOURCE, 2025, 1)
    operator_ids = [uuid4() for _ in range(operators)]
    authorization_of = {}
    for operator_id in operator_ids:
        authorization_id = uuid4()
        authorization_of[operator_id] = authorization_id
        await repository.insert_authorization(authorization_id, uuid4(), Authorization(
            operator_id=str(operator_id), scope=Scope(kind=ScopeKind.WHOLE),
            resource_codes=frozenset({source}),
            term=Term(start=date(2025, 1, 1), end=date(2030, 12, 31)),
            conditions="基准测试授权"), now)
    columns = [*repository.INSERT_PRODUCT_COLUMNS, "authorization_id", "registration_code",
               "listed_at"]
    placeholders = ", ".join(
        f"${index}::jsonb" if column == "prices" else
        f"${index}::tsvector" if column == "search_vector" else f"${index}"
        for index, column in enumerate(columns, start=1))
    sql = (f"INSERT INTO listings_products ({', '.join(columns)}) "  # noqa: S608 -- constants
           f"VALUES ({placeholders})")
    connection = await asyncpg.connect(url)
    started = time.perf_counter()
    try:
        batch = []
        for serial in range(1, count + 1):
            operator_id = rng.choice(operator_ids)
            product = make_product(rng, operator_id, source)
            name = f"基准运营机构{operator_ids.index(operator_id):02d}"
            document = product_document(title=product.title, description=product.description,
                                        domain=product.domain, operator_name=name,
                                        scenario=None)
            code = UnifiedCode("BENCH", SubjectKind.PRODUCT, 2025, serial)
            values = repository.product_row_values(uuid4(), name, product, document, now)
            batch.append((*values, authorization_of[operator_id], str(code), now))
            if len(batch) == 2000:
                await connection.executemany(sql, batch)
                batch.clear()
        if batch:
            await connection.executemany(sql, batch)
        await connection.execute("ANALYZE listings_products")
    finally:
        await connection.close()
    print(f"loaded {count:,} listed products in {time.perf_counter() - started:.1f} s")


async def time_search(query: CatalogQuery, rounds: int) -> tuple[float, float, int]:
    for _ in range(10):
        await catalog.search(query)
    timings = []
    found = 0
    for _ in range(rounds):
        started = time.perf_counter()
        page = await catalog.search(query)
        timings.append((time.perf_counter() - started) * 1000)
        found = page.total
    quantiles = statistics.quantiles(timings, n=100)
    return quantiles[49], quantiles[94], found


async def registrations_per_second(count: int) -> None:
    operator, staff = Actor(uuid4(), "operator"), Actor(uuid4(), "staff")
    filed_on = date(2025, 3, 1)
    data = RegistrationData(
        subject_kind=SubjectKind.RESOURCE, holder="基准数据持有单位", title="基准数据资源",
        description="基准测试用公共数据资源。", data_source="基准测试", domain=DataDomain.TRANSPORT,
        update_cycle=UpdateCycle.DAILY, permitted_purposes=frozenset({Purpose.INDUSTRY}),
        security_measures="脱敏", grade=Grade.GENERAL)
    started = time.perf_counter()
    for _ in range(count):
        record = await registrations_service.apply(
            operator, kind=RegistrationKind.FIRST, data=data, target_code=None, statement="",
            product_id=None, today=filed_on)
        await registrations_service.accept(staff, record.id)
        await registrations_service.start_review(staff, record.id)
        await registrations_service.open_notice(staff, record.id, today=filed_on,
                                                notice_period_days=7)
        await registrations_service.assign_code(staff, record.id,
                                                today=filed_on + timedelta(days=7),
                                                issuer="BENCH")
    elapsed = time.perf_counter() - started
    print(f"registrations: {count} workflows in {elapsed:.2f} s = {count / elapsed:.1f} "
          f"workflows/s ({5 * count / elapsed:.0f} steps/s, each step one transaction with "
          "its ledger leaf)")


async def listed_products(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(
            "SELECT count(*) FROM listings_products WHERE state = 'listed'"))
    finally:
        await connection.close()


async def run(url: str, products: int, registrations: int, rounds: int) -> None:
    from market.database import current_engine, migrate, open_pool  # noqa: PLC0415

    await migrate()
    await open_pool(current_engine(), max_size=4)
    present = await listed_products(url)
    if present == products:
        print(f"reusing {present:,} listed products")
    elif present == 0:
        await load_products(url, products, operators=40)
    else:
        raise SystemExit(f"the reused cluster holds {present:,} listed products, not {products:,}:"
                         " give another --reuse directory")
    cases = {
        "two terms + domain filter (气象 预警, domain=meteorology)": CatalogQuery(
            text="气象 预警", domain=DataDomain.METEOROLOGY),
        "two terms + domain filter (公交 到站, domain=transport)": CatalogQuery(
            text="公交 到站", domain=DataDomain.TRANSPORT),
        "two terms + price filter (企业 信用, price 1–100000 fen)": CatalogQuery(
            text="企业 信用", price_min_minor=1, price_max_minor=100_000),
        "one term, no filter (气象)": CatalogQuery(text="气象"),
    }
    for name, query in cases.items():
        p50, p95, found = await time_search(query, rounds)
        print(f"catalog search, {name}: {found:,} matches, p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    if registrations:
        await registrations_per_second(registrations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument(
        "--reuse", type=Path, metavar="DIR",
        help="keep the cluster in DIR and reuse its products on the next run (loading 100,000 "
             "takes minutes); registrations timed there accumulate, which the search ignores")
    arguments = parser.parse_args()

    from market.database import export_for_piccolo, start_embedded_server  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        if arguments.reuse is None:
            directory = Path(stack.enter_context(
                tempfile.TemporaryDirectory(prefix="catalog-bench-")))
        else:
            directory = arguments.reuse
        server = start_embedded_server(directory / "postgres")
        try:
            url = str(server.get_uri())
            export_for_piccolo(url)
            asyncio.run(run(url, arguments.products, arguments.registrations, arguments.rounds))
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()

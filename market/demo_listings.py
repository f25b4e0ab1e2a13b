"""Demo supply side: registered public data resources, the regulator's authorizations of the
demo operators, and registered, listed data products across six domains, all in Chinese.

Seeded through the real use cases (so every step is on the ledger) inside the demo seed's one
transaction. The registrations are filed a notice period ago, so their notices are over today
and the codes can be assigned as they would be in real life.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from uuid import UUID

from listings import authorizations_service, products_service, registrations_service
from listings.authorization import Scope, Term
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
from listings.product import Price, Product, QualityIndicators
from listings.registration import RegistrationData, RegistrationKind
from market.operator_directory import AccountsOperatorDirectory

D = DataDomain
F = DeliveryForm


@dataclass(frozen=True)
class DemoResource:
    domain: DataDomain
    holder: str
    title: str
    description: str


@dataclass(frozen=True)
class DemoProduct:
    domain: DataDomain
    title: str
    description: str
    form: DeliveryForm
    unit: ChargingUnit
    price_minor: int
    grade: Grade = Grade.GENERAL
    cycle: UpdateCycle = UpdateCycle.DAILY


@dataclass(frozen=True)
class DemoOperator:
    organisation: str
    domains: tuple[DataDomain, ...]
    resources: tuple[DemoResource, ...]
    products: tuple[DemoProduct, ...]


PER_CALL, PER_PERIOD, PER_PRODUCT, PER_VOLUME = (
    ChargingUnit.PER_CALL,
    ChargingUnit.PER_PERIOD,
    ChargingUnit.PER_PRODUCT,
    ChargingUnit.PER_VOLUME,
)

DEMO_OPERATORS = (
    DemoOperator(
        "省气象数据运营有限公司",
        (D.METEOROLOGY, D.SPATIAL_GEOGRAPHY),
        (
            DemoResource(D.METEOROLOGY, "省气象局", "全省地面自动气象站观测数据",
                         "全省2300余个地面自动气象站逐分钟气温、降水、风向风速、湿度观测。"),
            DemoResource(D.SPATIAL_GEOGRAPHY, "省自然资源厅", "全省基础地理信息数据",
                         "1:10000基础地理信息要素,含道路、水系、居民地和行政区划。"),
        ),
        (
            DemoProduct(D.METEOROLOGY, "逐小时精细化气象实况数据",
                        "融合地面站与雷达观测的1公里格点逐小时气温、降水、风速实况,适用于物流调度与能源负荷预测。",
                        F.API, PER_CALL, 50),
            DemoProduct(D.METEOROLOGY, "农业气象灾害风险预警产品",
                        "面向农业保险的干旱、霜冻、暴雨洪涝灾害风险等级预警,按县级行政区逐日发布。",
                        F.REPORT, PER_PERIOD, 1_200_000),
            DemoProduct(D.METEOROLOGY, "台风路径与风雨影响预报数据",
                        "台风实时路径、未来72小时风雨影响范围预报,支撑港口航运和应急管理。",
                        F.API, PER_CALL, 200, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.METEOROLOGY, "光伏发电气象因子数据集",
                        "逐小时总辐射、云量、气温等光伏发电相关气象因子,经质量控制的历史与预报数据。",
                        F.FILE, PER_VOLUME, 80_000),
            DemoProduct(D.METEOROLOGY, "城市内涝气象风险指数",
                        "结合短时强降水预报与城市排水能力的内涝风险指数,每10分钟更新。",
                        F.API, PER_CALL, 120, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.METEOROLOGY, "历史气候统计分析报告",
                        "全省近三十年气温、降水、极端天气事件统计分析,供城市规划与保险精算参考。",
                        F.REPORT, PER_PRODUCT, 500_000, cycle=UpdateCycle.YEARLY),
            DemoProduct(D.SPATIAL_GEOGRAPHY, "高精度行政区划边界数据",
                        "省、市、县、乡四级行政区划边界矢量数据,按季度更新,支持空间分析。",
                        F.FILE, PER_PRODUCT, 300_000, cycle=UpdateCycle.QUARTERLY),
            DemoProduct(D.SPATIAL_GEOGRAPHY, "地理编码与逆地理编码服务",
                        "标准地址与经纬度相互转换接口服务,覆盖全省城乡标准地址库。",
                        F.API, PER_CALL, 5),
            DemoProduct(D.SPATIAL_GEOGRAPHY, "城市建成区空间分布数据",
                        "基于遥感影像解译的城市建成区范围与扩展变化数据,按年度更新。",
                        F.TABLE, PER_PRODUCT, 450_000, cycle=UpdateCycle.YEARLY),
            DemoProduct(D.SPATIAL_GEOGRAPHY, "重点区域地形地貌数据沙箱",
                        "重点区域数字高程模型与地貌分类数据,仅在数据沙箱内建模分析,结果脱敏导出。",
                        F.SANDBOX, PER_PERIOD, 2_000_000, grade=Grade.IMPORTANT,
                        cycle=UpdateCycle.YEARLY),
            DemoProduct(D.SPATIAL_GEOGRAPHY, "兴趣点空间分布统计数据",
                        "按网格统计的商业、教育、医疗等兴趣点数量分布,适用于商业选址分析。",
                        F.TABLE, PER_PERIOD, 600_000, cycle=UpdateCycle.MONTHLY),
        ),
    ),
    DemoOperator(
        "城市交通数据科技有限公司",
        (D.TRANSPORT, D.CULTURE_TOURISM),
        (
            DemoResource(D.TRANSPORT, "市交通运输局", "城市公共交通运行数据",
                         "公交车辆GPS定位、刷卡客流与线路站点数据。"),
            DemoResource(D.CULTURE_TOURISM, "省文化和旅游厅", "全省A级景区运行数据",
                         "A级景区实时客流、门票预约与游客满意度数据。"),
        ),
        (
            DemoProduct(D.TRANSPORT, "公交实时到站预测接口",
                        "基于车辆定位的公交实时位置与到站时间预测,覆盖全市1200余条线路。",
                        F.API, PER_CALL, 2, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.TRANSPORT, "城市道路拥堵指数数据",
                        "主要道路逐5分钟拥堵指数与平均车速,支撑出行服务与物流路径规划。",
                        F.API, PER_CALL, 30, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.TRANSPORT, "公交客流时空分布统计",
                        "按线路、站点、时段统计的公交客流量,经聚合脱敏,按月更新。",
                        F.TABLE, PER_PERIOD, 800_000, cycle=UpdateCycle.MONTHLY),
            DemoProduct(D.TRANSPORT, "物流货车通行时空特征报告",
                        "城市货车通行时段、热点区域与限行影响分析报告,供物流企业优化配送。",
                        F.REPORT, PER_PRODUCT, 350_000, cycle=UpdateCycle.QUARTERLY),
            DemoProduct(D.TRANSPORT, "停车场泊位实时状态数据",
                        "全市公共停车场剩余泊位实时数据,每分钟更新,适用于导航和停车服务。",
                        F.API, PER_CALL, 3, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.TRANSPORT, "网约车出行需求热力数据沙箱",
                        "出行起讫点需求热力数据,仅在数据沙箱内分析,结果经审核后导出。",
                        F.SANDBOX, PER_PERIOD, 1_500_000, grade=Grade.IMPORTANT),
            DemoProduct(D.CULTURE_TOURISM, "景区实时客流监测数据",
                        "全省A级景区实时在园人数与承载率,支撑文旅企业运营调度与游客出行参考。",
                        F.API, PER_CALL, 20, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.CULTURE_TOURISM, "节假日旅游消费分析报告",
                        "节假日期间游客来源地、停留时长与消费结构分析报告。",
                        F.REPORT, PER_PRODUCT, 280_000, cycle=UpdateCycle.QUARTERLY),
            DemoProduct(D.CULTURE_TOURISM, "文旅场馆预约与客流统计",
                        "博物馆、图书馆、剧院等场馆预约量与入馆客流按日统计数据。",
                        F.TABLE, PER_PERIOD, 400_000),
            DemoProduct(D.CULTURE_TOURISM, "乡村旅游目的地画像数据",
                        "乡村旅游目的地资源、客流与口碑综合画像,按月更新,助力乡村振兴。",
                        F.FILE, PER_PRODUCT, 200_000, cycle=UpdateCycle.MONTHLY),
            DemoProduct(D.CULTURE_TOURISM, "游客满意度指数数据",
                        "基于评价与投诉数据计算的景区游客满意度指数,按月发布。",
                        F.TABLE, PER_PERIOD, 150_000, cycle=UpdateCycle.MONTHLY),
        ),
    ),
    DemoOperator(
        "省大数据运营集团有限公司",
        (D.HEALTH, D.FINANCE),
        (
            DemoResource(D.HEALTH, "省卫生健康委员会", "全省医疗机构诊疗服务数据",
                         "二级以上医疗机构门急诊量、住院量与床位使用统计数据。"),
            DemoResource(D.FINANCE, "省市场监督管理局", "企业登记与经营异常名录数据",
                         "市场主体登记注册、变更、经营异常与严重违法失信名单数据。"),
        ),
        (
            DemoProduct(D.HEALTH, "医疗机构服务能力统计数据",
                        "各级医疗机构床位、科室、门急诊服务能力统计,按季度更新。",
                        F.TABLE, PER_PERIOD, 500_000, cycle=UpdateCycle.QUARTERLY),
            DemoProduct(D.HEALTH, "区域门急诊就诊量趋势报告",
                        "按区域和科室统计的门急诊就诊量趋势分析,服务医药企业与健康管理机构。",
                        F.REPORT, PER_PRODUCT, 300_000, cycle=UpdateCycle.MONTHLY),
            DemoProduct(D.HEALTH, "商业健康保险核保风险评分",
                        "在隐私计算环境中基于诊疗统计生成的核保风险评分,原始数据不出域。",
                        F.SANDBOX, PER_CALL, 800, grade=Grade.IMPORTANT),
            DemoProduct(D.HEALTH, "慢性病流行特征统计数据",
                        "高血压、糖尿病等慢性病患病率与年龄结构统计,经聚合脱敏。",
                        F.TABLE, PER_PRODUCT, 420_000, cycle=UpdateCycle.YEARLY),
            DemoProduct(D.HEALTH, "医疗资源可及性指数接口",
                        "按街道计算的医疗资源可及性指数接口,供城市规划与健康服务选址。",
                        F.API, PER_CALL, 40),
            DemoProduct(D.FINANCE, "企业经营异常核验接口",
                        "按统一社会信用代码核验企业是否列入经营异常名录,辅助信贷风控。",
                        F.API, PER_CALL, 10, cycle=UpdateCycle.REALTIME),
            DemoProduct(D.FINANCE, "小微企业信用画像数据沙箱",
                        "融合登记、纳税、社保等公共数据的小微企业信用画像,仅在沙箱中建模使用。",
                        F.SANDBOX, PER_PERIOD, 3_000_000, grade=Grade.IMPORTANT),
            DemoProduct(D.FINANCE, "企业登记变更动态数据",
                        "企业名称、法定代表人、注册资本等登记事项变更的每日增量数据。",
                        F.FILE, PER_VOLUME, 60_000),
            DemoProduct(D.FINANCE, "区域产业金融风险监测报告",
                        "按行业与区域分析企业注销、异常与新设趋势的金融风险监测报告。",
                        F.REPORT, PER_PRODUCT, 380_000, cycle=UpdateCycle.MONTHLY),
            DemoProduct(D.FINANCE, "供应链企业关联关系核验",
                        "基于登记信息的企业股权与任职关联关系核验接口,服务供应链金融。",
                        F.API, PER_CALL, 25),
        ),
    ),
)

QUALITY = QualityIndicators(
    completeness=95, accuracy=93, timeliness=90, usability=88, machine_readability=96
)
NOTICE_DAYS = 7


async def _register(
    operator: Actor, staff: Actor, data: RegistrationData, *, product_id: UUID | None,
    filed_on: date, today: date, issuer: str,
) -> UnifiedCode:
    record = await registrations_service.apply(
        operator, kind=RegistrationKind.FIRST, data=data, target_code=None, statement="",
        product_id=product_id, today=filed_on)
    await registrations_service.accept(staff, record.id)
    await registrations_service.start_review(staff, record.id)
    await registrations_service.open_notice(staff, record.id, today=filed_on,
                                            notice_period_days=NOTICE_DAYS)
    registered = await registrations_service.assign_code(staff, record.id, today=today,
                                                         issuer=issuer)
    if registered.registration.code is None:
        raise RuntimeError("a registered demo registration has no code")
    return registered.registration.code


def _registration_data(kind: SubjectKind, holder: str, title: str, description: str, *,
                       domain: DataDomain, grade: Grade, cycle: UpdateCycle) -> RegistrationData:
    return RegistrationData(
        subject_kind=kind, holder=holder, title=title, description=description,
        data_source=f"{holder}依法归集的公共数据", domain=domain, update_cycle=cycle,
        permitted_purposes=frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
        security_measures="分类分级保护、数据脱敏、访问审计、数字水印", grade=grade)


async def seed_listings(*, regulator_id: UUID, staff_id: UUID, operator_ids: dict[str, UUID],
                        today: date, issuer: str) -> int:
    """Seed the demo supply side; returns how many products were listed."""
    directory = AccountsOperatorDirectory()
    regulator, staff = Actor(regulator_id, "regulator"), Actor(staff_id, "staff")
    filed_on = today - timedelta(days=NOTICE_DAYS)
    listed = 0
    for demo in DEMO_OPERATORS:
        operator_id = operator_ids[demo.organisation]
        operator = Actor(operator_id, "operator")
        resource_codes = [
            await _register(
                operator, staff,
                _registration_data(SubjectKind.RESOURCE, resource.holder, resource.title,
                                   resource.description, domain=resource.domain,
                                   grade=Grade.GENERAL, cycle=UpdateCycle.DAILY),
                product_id=None, filed_on=filed_on, today=today, issuer=issuer)
            for resource in demo.resources]
        code_of = dict(zip((r.domain for r in demo.resources), resource_codes, strict=True))
        await authorizations_service.grant(
            regulator, operator_id=operator_id,
            scope=Scope(kind=ScopeKind.DOMAIN, domains=frozenset(demo.domains)),
            resource_codes=resource_codes,
            term=Term(start=today, end=today + timedelta(days=3 * 365)),
            conditions="依授权协议运营:原始数据不出域,按目录定价,按季度报送运营情况。",
            today=today, directory=directory)
        for item in demo.products:
            product = await products_service.create(operator, Product(
                operator_id=str(operator_id), title=item.title, description=item.description,
                domain=item.domain, source_resource_codes=frozenset({code_of[item.domain]}),
                delivery_form=item.form, update_cycle=item.cycle, grade=item.grade,
                quality=QUALITY,
                permitted_purposes=frozenset({Purpose.INDUSTRY, Purpose.PUBLIC_WELFARE}),
                prices=(Price(Purpose.INDUSTRY, item.unit, item.price_minor),
                        Price(Purpose.PUBLIC_WELFARE, item.unit, 0))),
                today=today, directory=directory)
            await _register(
                operator, staff,
                _registration_data(SubjectKind.PRODUCT, demo.organisation, item.title,
                                   item.description, domain=item.domain, grade=item.grade,
                                   cycle=item.cycle),
                product_id=product.id, filed_on=filed_on, today=today, issuer=issuer)
            await products_service.list_product(operator, product.id, today=today)
            listed += 1
    return listed

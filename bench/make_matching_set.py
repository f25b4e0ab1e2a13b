"""Generate the labelled demand–product matching set in bench/data/matching/ from a seed.

Run as ``.venv/bin/python bench/make_matching_set.py`` (``--seed``, ``--products``,
``--demands``, ``--out``); the same arguments always write byte-identical files. The method is
described in bench/data/matching/README.md: products and demands are drawn from per-domain topic
catalogues, the two sides in different words, and relevance is graded from the generative
structure (topic, topic group, region, update cycle, hard constraints), never from the text.

``generate_products`` is also used by bench/matching_latency.py to build large catalogs.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from listings.codes import UnifiedCode
from listings.domains import ChargingUnit, DataDomain, DeliveryForm, Grade, Purpose, SubjectKind
from listings.product import Price
from market.trading.matching import Demand, ListedProduct

DEFAULT_SEED = 20261122
DEFAULT_PRODUCTS = 2400
DEFAULT_DEMANDS = 240
OUTPUT = Path(__file__).resolve().parent / "data" / "matching"


@dataclass(frozen=True)
class Topic:
    """One subject of a domain. ``names`` and ``facets`` are how sellers describe it; ``asks``
    are how buyers ask for it (written separately, as paraphrases); ``uses`` are application
    scenarios (products advertise some, demands state one). Topics of one ``group`` are
    adjacent subtopics."""

    domain: str
    key: str
    group: str
    names: tuple[str, ...]
    facets: tuple[str, ...]
    asks: tuple[str, ...]
    uses: tuple[str, ...]

    @property
    def ident(self) -> str:
        return f"{self.domain}/{self.key}"


def _topics() -> list[Topic]:
    rows: list[tuple[str, str, str, str, str, str, str]] = [
        # domain, key, group, names | facets | asks | uses (each "、"-separated)
        ("meteorology", "precipitation", "forecast",
         "降水预报、逐小时降水预报、格点降水预报、短临降水预报",
         "未来72小时逐小时降水量、降水概率、累计雨量格点、强降水落区、雷达回波外推",
         "降雨预测、未来几天下雨情况、雨量预报、暴雨提前预判",
         "物流配送排班、户外施工安排、城市内涝防范、农产品采收计划"),
        ("meteorology", "severe_convection", "forecast",
         "强对流天气预警、雷电监测、雷暴大风预警",
         "闪电定位、雷电密度、冰雹与雷暴大风落区、预警信号发布记录",
         "打雷闪电的位置、冰雹大风等突发天气提醒、雷击风险、短时灾害性天气",
         "电网防雷、户外活动安全、通信基站防护"),
        ("meteorology", "typhoon", "disaster",
         "台风路径、热带气旋监测、台风实况与预报路径",
         "台风中心位置、最大风速与中心气压、七级风圈半径、预报路径概率圈、登陆点预估",
         "台风走向、台风动态跟踪、台风登陆时间和影响范围、热带风暴轨迹",
         "港口停航决策、渔船避风、海上风电运维、财产保险理赔预估"),
        ("meteorology", "station_observation", "observation",
         "地面气象观测、自动气象站观测、气象站逐时观测",
         "气温、相对湿度、风向风速、气压、能见度、逐时观测记录",
         "历史天气实况、各站点温度湿度记录、过去几年的气温风速",
         "空调负荷预测、零售销量与天气关联分析、建筑能耗研究"),
        ("meteorology", "climate", "observation",
         "气候资料、气候统计分析、历史气候数据",
         "近30年气候平均值、极端高温日数、年降水量变化趋势、气候异常指数",
         "长期气候变化趋势、多年平均气温降水、极端天气出现频率",
         "光伏电站选址、城市规划、保险精算"),
        ("meteorology", "agrometeorology", "service",
         "农业气象、农业气象服务、作物气象条件评估",
         "积温与日照时数、土壤墒情、霜冻低温风险、干旱指数、作物生育期气象适宜度",
         "农作物生长期的天气条件、种植气象风险、霜冻和干旱风险评估",
         "农业保险定价、种植计划安排、农资销售预测"),
        ("transport", "bus_ridership", "public_transit",
         "公交客流、公交刷卡客流、公交线路客流统计",
         "分线路分站点上下客人数、早晚高峰断面客流、刷卡与扫码乘车记录汇总、换乘客流OD",
         "坐公交的人流量、公交乘客出行规律、各公交站点乘车人数",
         "商铺选址、公交线网优化、广告投放评估"),
        ("transport", "metro_ridership", "public_transit",
         "地铁客流、轨道交通客流、地铁进出站客流",
         "分站点进出站量、分时段客流、换乘站客流、断面满载率",
         "地铁站人流情况、轨道交通乘客数量、各地铁站进出站人数",
         "站点商业开发、应急疏散预案、运力调度"),
        ("transport", "congestion", "road",
         "路况拥堵、道路交通运行指数、实时路况",
         "路段平均车速、拥堵指数、拥堵时长、交通事件与施工占道",
         "道路堵车情况、车辆通行速度、哪些路段经常拥堵",
         "物流路径规划、出行导航、城市交通治理评估"),
        ("transport", "parking", "road",
         "停车位、公共停车场泊位、路侧停车泊位",
         "停车场位置与收费标准、剩余泊位实时数量、泊位周转率、充电车位分布",
         "停车场空位、哪里能停车、车位使用情况",
         "停车导航应用、商圈配套评估、新能源充电布局"),
        ("transport", "freight", "logistics",
         "货运车辆轨迹、重型货车运行监测、道路货运",
         "营运货车GPS轨迹、货运车辆里程与停留点、货物运输OD流向、超限超载记录",
         "货车行驶路线、物流车辆的运行轨迹、运货卡车的流向",
         "物流园区规划、供应链金融风控、车险定价"),
        ("health", "medical_resources", "medical_service",
         "医疗机构资源、医院床位与科室、医疗卫生机构名录",
         "医院等级与科室设置、床位数、执业医师数量、医疗设备配置",
         "各地医院和病床数量、医生和科室分布、看病资源分布",
         "医疗器械市场分析、健康服务选址、商业健康险网络建设"),
        ("health", "insurance_settlement", "medical_service",
         "医保结算、医疗保障结算、医保基金支付",
         "门诊与住院结算金额、药品目录使用量、病种费用结构、异地就医结算",
         "医保报销费用情况、看病花费和报销比例、各病种治疗费用",
         "商业健康险产品设计、医药市场分析、医疗费用控制研究"),
        ("health", "drug_distribution", "medical_service",
         "药品流通、药品采购与配送、药品集中采购",
         "药品中标价格、配送企业与数量、医院采购量、短缺药品监测",
         "药的进货价格和用量、医院买药情况、药品供应链",
         "医药企业销售规划、药品价格监测、供应保障"),
        ("health", "infectious_disease", "public_health",
         "传染病监测、法定传染病报告、流感样病例监测",
         "病例数与发病率、流感样病例百分比、病原检测阳性率、聚集性疫情",
         "流感发病趋势、疫情发生情况统计、得病人数变化",
         "药品备货预测、疾控研究、学校健康管理"),
        ("health", "chronic_disease", "public_health",
         "慢性病管理、居民健康档案统计、慢病随访",
         "高血压糖尿病患病率、随访管理率、年龄段分布、健康体检指标",
         "慢性病人群分布、高血压糖尿病患者情况、老年人健康状况",
         "健康管理产品研发、养老服务规划、保险核保"),
        ("finance", "tax_credit", "enterprise",
         "企业纳税信用、纳税等级评价、企业涉税信息",
         "纳税信用等级、纳税金额区间、欠税记录、发票开具规模",
         "公司交税情况、企业税务表现、企业是否欠税",
         "小微企业信贷审批、供应商准入、贷后风险监测"),
        ("finance", "social_insurance_payment", "enterprise",
         "企业社保缴纳、参保缴费信息、企业用工参保",
         "参保人数、缴费基数与月份、断缴记录、缴费连续性",
         "公司员工交社保的情况、企业雇员人数和缴费记录、单位参保是否正常",
         "普惠金融授信、企业经营状况评估、反欺诈"),
        ("finance", "housing_fund", "individual",
         "住房公积金、公积金缴存、个人公积金缴存信息",
         "缴存基数、缴存比例、连续缴存月数、贷款使用情况",
         "个人公积金交了多少、职工收入水平侧面印证、公积金缴纳记录",
         "个人消费贷款审批、信用卡额度评估、住房金融产品"),
        ("finance", "real_estate_registration", "individual",
         "不动产登记、房产登记信息、不动产权属",
         "权属状态、抵押登记、查封信息、面积与用途",
         "房子有没有抵押查封、房产权属核实、房屋产权情况",
         "抵押贷款审核、资产核验、司法执行辅助"),
        ("finance", "utility_payment", "individual",
         "水电气缴费、公共事业缴费、水电燃气缴费记录",
         "月度用电量、缴费及时性、欠费记录、用水用气量",
         "家庭水电费交纳情况、用电用水有没有欠费、企业电费支出",
         "信用评分模型、小微企业经营活跃度判断、催收风险"),
        ("spatial_geography", "basemap", "mapping",
         "基础地理信息、电子地图底图、地形图",
         "1:2000地形要素、道路水系居民地图层、矢量与影像底图、坐标系转换",
         "地图底图、地形地貌图层、城市矢量地图",
         "导航应用开发、工程设计、规划辅助"),
        ("spatial_geography", "address_poi", "mapping",
         "标准地址、地名地址、兴趣点POI",
         "门楼牌地址、地址坐标匹配、POI类别与名称、楼栋与房屋编码",
         "门牌号和坐标对应、商户位置点、地址标准化",
         "外卖配送、快递分拣、网点选址"),
        ("spatial_geography", "city_3d", "mapping",
         "实景三维、三维城市模型、倾斜摄影模型",
         "建筑白模、倾斜摄影实景模型、城市信息模型CIM、地下管线三维",
         "城市立体模型、建筑三维、数字孪生城市底座",
         "数字孪生平台、智慧园区、游戏与文旅展示"),
        ("spatial_geography", "imagery", "remote_sensing",
         "遥感影像、卫星影像、航空摄影影像",
         "0.5米分辨率卫星影像、多光谱影像、年度正射影像、影像变化检测",
         "卫星拍的照片、高分辨率航拍图、地表覆盖的影像资料",
         "违建监测、农作物面积估算、生态保护监测"),
        ("spatial_geography", "land_use", "remote_sensing",
         "土地利用现状、国土调查、地类图斑",
         "地类分布、耕地与建设用地面积、图斑变化、第三次国土调查成果",
         "各类用地的面积、耕地分布情况、土地用途分类",
         "房地产投资分析、农业规划、生态评估"),
        ("culture_tourism", "scenic_visitors", "tourism",
         "景区客流、A级景区游客量、景区接待人次",
         "日接待游客人次、实时在园人数、游客来源地、节假日客流峰值",
         "旅游景点人多不多、游客数量变化、景点热度",
         "旅游线路设计、景区周边商业、文旅营销"),
        ("culture_tourism", "accommodation", "tourism",
         "住宿接待、酒店入住、旅游住宿业统计",
         "酒店入住率、平均房价、过夜游客数、民宿数量",
         "宾馆住宿情况、酒店开房率和价格、过夜旅客数量",
         "酒店投资决策、旅游市场分析、会展配套评估"),
        ("culture_tourism", "tourism_spending", "tourism",
         "旅游消费、游客消费、文旅消费",
         "游客人均消费、消费品类结构、刷卡消费金额、夜间消费",
         "游客花钱情况、旅游花费结构、假期消费水平",
         "商圈规划、消费券设计、文旅产业分析"),
        ("culture_tourism", "cultural_venues", "culture",
         "公共文化场馆、图书馆博物馆服务、文化馆站",
         "场馆名录与开放时间、借阅量、展览与活动场次、参观人次",
         "图书馆博物馆去的人数、文化活动举办情况、文化设施分布",
         "文化消费研究、研学产品设计、公共服务评估"),
        ("culture_tourism", "performances", "culture",
         "演出市场、营业性演出、演出票务",
         "演出场次、票房收入、观众人次、演出类型",
         "演唱会话剧的场次和票房、看演出的人数、演出行业景气",
         "演艺投资、场馆运营、文化产业研究"),
        ("agriculture", "crop_monitoring", "planting",
         "农情监测、农作物长势监测、作物种植面积",
         "作物种植面积、长势指数、估产、病虫害发生",
         "庄稼长得怎么样、农作物产量预估、种了多少水稻玉米",
         "农产品期货研究、农业保险、粮食收储"),
        ("agriculture", "soil", "planting",
         "耕地质量、土壤检测、测土配方",
         "土壤有机质、酸碱度、氮磷钾含量、耕地等级",
         "土地肥不肥、地里的养分情况、土壤成分化验结果",
         "化肥推荐、土地流转评估、高标准农田建设"),
        ("agriculture", "produce_prices", "market",
         "农产品价格、农产品批发市场价格、菜篮子价格",
         "批发均价、日度价格、交易量、产地价格",
         "蔬菜水果批发价、猪肉等食品价格走势、农贸市场行情",
         "生鲜电商采购、价格指数编制、餐饮成本控制"),
        ("agriculture", "livestock", "husbandry",
         "畜禽养殖、生猪存栏出栏、养殖场备案",
         "生猪存栏量、出栏量、能繁母猪、规模养殖场分布",
         "养猪数量变化、养殖户规模、猪的产能情况",
         "饲料销售、养殖贷款、猪周期研究"),
        ("agriculture", "machinery", "mechanisation",
         "农机作业、农机购置补贴、农业机械化",
         "农机保有量、作业面积、补贴机具目录、购机户数",
         "农业机器使用情况、拖拉机收割机数量、农机补贴发放",
         "农机企业市场研究、农机租赁、涉农金融产品"),
        ("education", "schools", "basic",
         "学校基本信息、中小学学校名录、学校办学条件",
         "学校位置与学段、在校生人数、师资数量、办学规模",
         "附近有哪些中小学、各学校学生多少、学区资源",
         "学区房分析、教培机构选址、教育规划"),
        ("education", "enrollment", "basic",
         "招生入学、学位供需、入学人数统计",
         "招生计划、学位缺口、新生人数、生源预测",
         "上学名额是否紧张、每年入学儿童数量、学位够不够",
         "学校建设规划、教育服务企业市场研究、托育机构布局"),
        ("education", "vocational_certificates", "vocational",
         "职业技能证书、职业资格、技能等级认定",
         "证书编号与等级、发证机构、认定工种、持证人数",
         "员工证书真假核验、技术工人资质、持证技工数量",
         "招聘背景核验、人力资源服务、培训市场分析"),
        ("education", "graduates", "vocational",
         "高校毕业生、毕业生就业去向、学历学位",
         "毕业人数、专业分布、就业去向、学历认证",
         "大学生毕业后去哪、应届生专业结构、学历真实性",
         "校园招聘、人才规划、背景调查"),
        ("energy", "power_consumption", "power",
         "用电量、电力消费、分行业用电",
         "分行业用电量、企业月度用电、峰谷用电曲线、负荷",
         "工厂耗电多少、电力使用情况、各行业电耗",
         "经济景气监测、企业经营评估、节能服务"),
        ("energy", "charging", "new_energy",
         "充电桩、新能源汽车充电设施、充电站运营",
         "充电桩位置、快慢充数量、实时占用状态、充电量",
         "电动车哪里充电、充电站使用率、新能源车补能网络",
         "充电运营选址、导航应用、车企服务"),
        ("energy", "photovoltaic", "new_energy",
         "分布式光伏、光伏发电、可再生能源发电",
         "装机容量、发电量、并网点、屋顶资源",
         "太阳能板发电情况、屋顶装太阳能潜力、绿电产量",
         "光伏投资测算、碳核算、绿色金融"),
        ("energy", "natural_gas", "fuel",
         "燃气供应、天然气用气、管道燃气",
         "用气量、管网分布、用户数、供气压力",
         "天然气用了多少、煤气管道覆盖、燃气用户情况",
         "燃气设备销售、安全监管、能源规划"),
        ("energy", "carbon", "fuel",
         "碳排放核算、能耗双控、重点用能单位能耗",
         "综合能耗、碳排放量、能效水平、用能单位名单",
         "企业二氧化碳排多少、能耗高的企业、碳足迹",
         "碳资产管理、绿色信贷、ESG评级"),
        ("environment", "air_quality", "air",
         "空气质量、环境空气质量监测、AQI",
         "PM2.5浓度、臭氧、AQI指数、国控站点小时数据",
         "雾霾严重程度、空气污染情况、PM2.5数值",
         "空气净化器销售、健康出行提醒、房产评价"),
        ("environment", "noise", "air",
         "声环境、噪声监测、环境噪声",
         "功能区噪声、昼夜等效声级、道路交通噪声、噪声投诉",
         "周边吵不吵、噪音大小、扰民声音",
         "房产评估、酒店选址、城市规划"),
        ("environment", "water_quality", "water",
         "水环境质量、地表水水质监测、水质自动监测",
         "断面水质类别、溶解氧、氨氮、总磷",
         "河里的水干不干净、河流污染程度、饮用水源水质",
         "水务企业运营、环保研究、水产养殖选址"),
        ("environment", "pollution_sources", "enforcement",
         "污染源监测、排污许可、重点排污单位",
         "排污许可证、排放浓度在线监测、超标记录、行政处罚",
         "工厂排污情况、企业环保违规、污染企业名单",
         "绿色信贷风控、供应链ESG审核、环保设备销售"),
        ("environment", "solid_waste", "enforcement",
         "固体废物、危险废物转移、固废处置",
         "危废产生量、转移联单、处置单位、利用处置能力",
         "危险垃圾处理情况、工业废料去向、危废处置能力",
         "环保企业市场、合规审计、园区管理"),
        ("market_regulation", "business_registration", "registration",
         "企业登记注册、市场主体登记、工商注册信息",
         "统一社会信用代码、注册资本、经营范围、成立日期与状态",
         "公司基本工商信息、企业注册资本和股东、新开公司名单",
         "客户尽调、招商引资、销售线索"),
        ("market_regulation", "penalties", "enforcement",
         "行政处罚、市场监管处罚、经营异常名录",
         "处罚决定书、违法类型、罚没金额、列入异常名录原因",
         "企业被罚记录、违规经营的公司、商家违法情况",
         "供应商风控、投资尽调、合规审查"),
        ("market_regulation", "consumer_complaints", "enforcement",
         "消费投诉、12315投诉举报、消费者投诉",
         "投诉数量、投诉类别、被投诉主体、处理结果",
         "顾客投诉多的商家、消费纠纷、用户维权情况",
         "品牌口碑监测、商户准入、消费研究"),
        ("market_regulation", "food_safety", "quality",
         "食品安全抽检、食品抽样检验、食品安全监督抽检",
         "抽检批次、不合格项目、生产企业、检验结论",
         "食品检测不合格的品牌、吃的东西安不安全、食品质量问题",
         "零售选品、餐饮供应链、消费者服务"),
        ("market_regulation", "product_quality", "quality",
         "产品质量监督、产品质量抽查、工业产品质量",
         "抽查产品类别、不合格率、生产许可证、召回信息",
         "产品质量合格率、家电召回、工业品质量问题",
         "电商平台治理、采购质量控制、产品责任保险"),
        ("employment", "job_postings", "labor_market",
         "招聘岗位、岗位需求、公共就业服务岗位",
         "岗位数量、薪资范围、行业与工种、学历要求",
         "企业招人信息、用工缺口、工资水平",
         "人力资源服务、职业培训规划、薪酬调研"),
        ("employment", "unemployment", "labor_market",
         "失业登记、就业失业统计、城镇登记失业",
         "登记失业人数、失业率、再就业人数、就业困难人员",
         "没工作的人有多少、就业形势、下岗再就业",
         "经济研究、培训机构招生、政策评估"),
        ("employment", "migrant_workers", "labor_market",
         "劳动力流动、农民工监测、外来务工人员",
         "外出务工人数、流入流出地、从业行业、月均收入",
         "打工人员流向、外地工人来源、进城务工规模",
         "消费市场研究、住房租赁、企业招工"),
        ("employment", "pension", "social_insurance",
         "养老保险、城乡居民养老保险、基本养老保险参保",
         "参保人数、领取待遇人数、缴费档次、基金收支",
         "退休金领取人数、老人养老金情况、养老保障覆盖",
         "养老产业、商业养老保险、人口老龄化研究"),
        ("employment", "work_injury", "social_insurance",
         "工伤保险、工伤认定、工伤事故",
         "工伤认定数量、行业工伤发生率、伤残等级、待遇支付",
         "上班受伤的统计、安全生产事故伤亡、职业伤害",
         "雇主责任险定价、安全生产管理、劳动保护研究"),
        ("water_conservancy", "hydrology", "water_regime",
         "水文监测、河道水位、水雨情",
         "河道水位、流量、雨量站、超警戒水位",
         "河水涨了多少、江河水位变化、洪水水情",
         "防汛、航运调度、沿江企业生产安排"),
        ("water_conservancy", "reservoir", "water_regime",
         "水库蓄水、水库运行、大中型水库水情",
         "库容、蓄水量、入库出库流量、汛限水位",
         "水库存水多少、水库放水情况、蓄水状况",
         "水电调度、灌溉计划、供水保障"),
        ("water_conservancy", "flood_risk", "water_regime",
         "洪水风险、山洪灾害、洪涝风险区划",
         "淹没范围、风险等级区划、山洪预警、历史洪涝",
         "哪些地方容易被淹、内涝风险地图、洪灾可能性",
         "保险巨灾模型、选址评估、应急预案"),
        ("water_conservancy", "water_use", "resources",
         "用水统计、取水许可、用水总量",
         "取水许可证、取水量、行业用水量、计划用水",
         "企业抽了多少水、工业用水量、用水大户",
         "节水服务、水务投资、合规监管"),
        ("water_conservancy", "irrigation", "resources",
         "灌区、农田灌溉、灌溉用水",
         "灌区面积、灌溉水量、渠系、节水灌溉",
         "农田浇水用水量、灌溉覆盖面积、农业用水效率",
         "节水设备销售、农业规划、水价改革研究"),
        ("commerce", "retail_sales", "consumption",
         "社会消费品零售、商品零售额、零售业销售",
         "零售额、品类结构、同比增速、限上企业",
         "商店卖了多少货、消费市场景气、买东西的人多不多",
         "消费趋势研究、商业地产、品牌布局"),
        ("commerce", "ecommerce", "consumption",
         "网络零售、电子商务交易、电商交易额",
         "网络零售额、网店数量、品类销售、直播电商",
         "网上卖货情况、网店销量、线上购物规模",
         "电商服务、品牌营销、消费研究"),
        ("commerce", "business_districts", "consumption",
         "商圈、商业网点、商业综合体",
         "商圈客流、商户数量、业态结构、空置率",
         "购物中心人流、商场店铺分布、商业街热度",
         "门店选址、商业地产投资、招商"),
        ("commerce", "foreign_trade", "trade",
         "进出口贸易、外贸进出口、跨境贸易",
         "进出口额、商品编码、贸易国别、企业进出口规模",
         "出口到哪些国家、外贸公司交易额、海关贸易统计",
         "外贸风控、供应链研究、跨境电商选品"),
        ("commerce", "wholesale_markets", "trade",
         "批发市场、大宗商品交易、商品交易市场",
         "交易额、商户数、主营品类、价格指数",
         "批发商交易情况、大宗货物买卖、市场成交量",
         "供应链金融、价格监测、采购决策"),
    ]  # fmt: skip
    return [
        Topic(domain, key, group, *(tuple(part.split("、")) for part in parts))
        for domain, key, group, *parts in rows
    ]


TOPICS = _topics()
REGIONS = ("全省", "广州市", "深圳市", "佛山市", "东莞市", "珠海市", "韶关市", "湛江市")
PROVINCE = "全省"
# Update cycles from the most to the least frequent: (wire value, how a product states it,
# how a buyer asks for it).
CYCLES = (
    ("realtime", "数据实时更新", "需要实时推送"),
    ("daily", "每日更新", "最好每天更新"),
    ("weekly", "每周更新", "至少每周更新一次"),
    ("monthly", "按月更新", "按月更新即可"),
    ("yearly", "每年更新", "每年更新一次就够"),
)
CYCLE_RANK = {wire: rank for rank, (wire, _product, _buyer) in enumerate(CYCLES)}
FORMS = ("file", "table", "api", "sandbox", "report")
FORM_TITLES = {
    "file": ("{region}{name}数据集", "{name}数据包({region})", "{region}{name}历史文件"),
    "table": ("{region}{name}数据库", "{region}{name}明细表", "{name}主题库({region})"),
    "api": ("{region}{name}接口", "{name}查询服务({region})", "{region}{name}API"),
    "sandbox": ("{region}{name}沙箱分析服务", "{name}隐私计算服务({region})"),
    "report": ("{region}{name}分析报告", "{name}专题报告({region})", "{region}{name}月报"),
}
FORM_WORDS = {
    "file": "文件下载",
    "table": "数据库表",
    "api": "接口调用",
    "sandbox": "沙箱环境",
    "report": "分析报告",
}
# Price ranges in fen per charging unit for industry use (public uses are free).
PRICE_RANGES = {
    "per_call": (5, 500),
    "per_period": (50_000, 2_000_000),
    "per_volume": (1_000, 50_000),
    "per_product": (100_000, 10_000_000),
}
UNIT_WORDS = {
    "per_call": "每次调用",
    "per_period": "每期",
    "per_volume": "每万条",
    "per_product": "整体",
}
INTROS = ("本产品提供", "汇集", "整合多源数据,形成", "基于政务数据治理,提供", "面向行业用户提供")
SECURITY = (
    "数据经脱敏和加密处理,原始数据不出域。",
    "采用隐私计算技术,确保个人信息安全。",
    "已完成数据资源登记,质量评估达标。",
    "支持按需定制字段与时间范围。",
    "提供字段说明文档与样例数据。",
)
BUYER_KINDS = ("我司是一家物流企业", "我们是金融科技公司", "本单位为研究机构", "我们是互联网平台",
               "我司从事咨询服务", "本公司为保险机构", "我们是政府部门的技术支撑单位",
               "我们是一家初创企业")  # fmt: skip
DEMAND_TITLES = ("求购{region}{ask}", "征集{ask}相关数据", "寻找{ask}的数据服务",
                 "{use}需要{ask}", "关于{ask}的数据需求", "需要{region}{ask}")  # fmt: skip


def _price(rng: random.Random, unit: str) -> int:
    low, high = PRICE_RANGES[unit]
    return rng.randint(low, high)


@dataclass(frozen=True)
class _ProductTruth:
    topic: Topic
    region: str
    cycle: str


def _product(rng: random.Random, serial: int, topic: Topic) -> dict[str, Any]:
    domain_topics = [other for other in TOPICS if other.domain == topic.domain]
    region = rng.choice(REGIONS) if rng.random() < 0.75 else PROVINCE
    cycle_wire, cycle_text, _ask = rng.choice(CYCLES)
    form = rng.choices(FORMS, weights=(3, 2, 4, 1, 2))[0]
    # Important data only goes out through forms that keep raw data in the domain.
    grade = "important" if form in {"api", "sandbox"} and rng.random() < 0.3 else "general"
    name = rng.choice(topic.names)
    # A province-wide product says so in its title half the time, otherwise not at all.
    province_word = PROVINCE if rng.random() < 0.5 else ""
    title_region = province_word if region == PROVINCE else region
    title = rng.choice(FORM_TITLES[form]).format(region=title_region, name=name).replace("()", "")
    facets = rng.sample(topic.facets, k=min(len(topic.facets), rng.randint(2, 4)))
    uses = rng.sample(topic.uses, k=rng.randint(1, 2))
    sentences = [
        f"{rng.choice(INTROS)}{region}{'、'.join(facets)}等{rng.choice(topic.names)}内容。",
        f"覆盖{region}范围,{cycle_text},以{FORM_WORDS[form]}方式交付。",
        f"适用于{'、'.join(uses)}等场景。",
    ]
    if rng.random() < 0.3:
        # Noise: listings often cite a neighbouring product line they combine with.
        other = rng.choice([candidate for candidate in domain_topics if candidate != topic])
        sentences.append(f"可与{rng.choice(other.names)}数据联合分析。")
    sentences.append(rng.choice(SECURITY))
    # Sellers order their paragraphs differently; only the opening sentence stays first.
    rest = sentences[1:]
    rng.shuffle(rest)
    sentences = [sentences[0], *rest]
    purposes = [purpose for purpose, chance in
                (("industry", 0.85), ("public_governance", 0.4), ("public_welfare", 0.3))
                if rng.random() < chance] or ["industry"]  # fmt: skip
    prices: list[list[Any]] = []
    for purpose in purposes:
        if purpose == "industry":
            units = sorted(rng.sample(sorted(PRICE_RANGES), k=rng.randint(1, 2)))
            prices.extend([purpose, unit, _price(rng, unit)] for unit in units)
        else:
            prices.append([purpose, rng.choice(sorted(PRICE_RANGES)), 0])
    code = UnifiedCode(issuer="GDDEX", kind=SubjectKind.PRODUCT, year=2026, serial=serial)
    return {
        "id": f"P{serial:06d}",
        "operator": f"OP{rng.randint(1, 60):03d}",
        "title": title,
        "description": "".join(sentences),
        "domain": topic.domain,
        "form": form,
        "grade": grade,
        "prices": prices,
        "purposes": sorted(purposes),
        "code": str(code),
        "active": rng.random() >= 0.05,
        "authorized": rng.random() >= 0.03,
        "truth": {"topic": topic.ident, "region": region, "cycle": cycle_wire},
    }


def generate_products(seed: int, count: int) -> Iterator[dict[str, Any]]:
    """``count`` products, topics spread evenly (each topic gets count/len(TOPICS) ± 1)."""
    rng = random.Random(seed)
    for serial in range(1, count + 1):
        yield _product(rng, serial, TOPICS[(serial - 1) % len(TOPICS)])


def _region_fits(product_region: str, wanted: str) -> bool:
    return product_region in {wanted, PROVINCE}


def _hard_fit(product: dict[str, Any], demand: dict[str, Any]) -> bool:
    """The exchange's hard rules, restated here independently of the matcher under test."""
    if not (product["active"] and product["authorized"]):
        return False
    if product["domain"] not in demand["domains"] or product["form"] not in demand["forms"]:
        return False
    if demand["purpose"] not in product["purposes"]:
        return False
    if product["grade"] == "important" and demand["clearance"] != "important":
        return False
    budgets: dict[str, int] = demand["budgets"]
    return any(
        purpose == demand["purpose"] and unit in budgets and amount <= budgets[unit]
        for purpose, unit, amount in product["prices"]
    )


def grade(product: dict[str, Any], demand: dict[str, Any], topics: dict[str, Topic]) -> int:
    """Graded relevance from the generative structure (see README): 0–3."""
    if not _hard_fit(product, demand):
        return 0
    truth, want = product["truth"], demand["truth"]
    region_ok = _region_fits(truth["region"], want["region"])
    cycle_ok = CYCLE_RANK[truth["cycle"]] <= CYCLE_RANK[want["cycle"]]
    if truth["topic"] == want["topic"]:
        return 3 if region_ok and cycle_ok else 2
    ours, theirs = topics[truth["topic"]], topics[want["topic"]]
    if ours.domain != theirs.domain:
        return 0
    if ours.group == theirs.group:
        return 2 if region_ok else 1
    return 1 if region_ok else 0


def _demand(rng: random.Random, serial: int, topic: Topic) -> dict[str, Any]:
    domains = {topic.domain}
    if rng.random() < 0.25:
        domains.add(rng.choice(sorted({other.domain for other in TOPICS} - domains)))
    region = PROVINCE if rng.random() < 0.2 else rng.choice(REGIONS[1:])
    cycle_wire, _product_text, cycle_ask = rng.choice(CYCLES)
    purpose = rng.choices(("industry", "public_governance", "public_welfare"),
                          weights=(7, 2, 1))[0]  # fmt: skip
    forms = sorted(rng.sample(FORMS, k=rng.randint(2, 4)))
    clearance = "important" if rng.random() < 0.3 else "general"
    budgets: dict[str, int] = {}
    if purpose == "industry":
        # A buyer names the units it can pay in and a ceiling somewhere in the market's range,
        # so some listings on topic are too dear (the price filter has work to do).
        for unit in sorted(rng.sample(sorted(PRICE_RANGES), k=rng.randint(2, 4))):
            low, high = PRICE_RANGES[unit]
            budgets[unit] = low + int((high - low) * rng.uniform(0.4, 1.0))
    else:
        budgets = dict.fromkeys(PRICE_RANGES, 0)
    asks = rng.sample(topic.asks, k=2)
    use = rng.choice(topic.uses)
    region_text = "" if region == PROVINCE and rng.random() < 0.5 else region
    title = rng.choice(DEMAND_TITLES).format(region=region_text, ask=asks[0], use=use)
    budget_text = (
        "、".join(
            f"{UNIT_WORDS[unit]}不超过{amount / 100:.2f}元" for unit, amount in budgets.items()
        )
        if purpose == "industry"
        else "用于公共服务,申请无偿使用"
    )
    description = "".join(
        [
            f"{rng.choice(BUYER_KINDS)},目前在做{use}方面的工作,",
            f"希望获得{region}{asks[1]}的相关资料,",
            f"{cycle_ask},接受{'或'.join(FORM_WORDS[form] for form in forms)}。",
            f"预算:{budget_text}。",
        ]
    )
    deadline = date(2026, 12, 1) + timedelta(days=rng.randint(0, 180))
    return {
        "id": f"D{serial:05d}",
        "buyer": f"B{rng.randint(1, 120):04d}",
        "title": title[:50],
        "description": description,
        "domains": sorted(domains),
        "purpose": purpose,
        "budgets": budgets,
        "forms": forms,
        "clearance": clearance,
        "deadline": deadline.isoformat(),
        "truth": {"topic": topic.ident, "region": region, "cycle": cycle_wire},
    }


def generate(
    seed: int, product_count: int, demand_count: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Products, demands and their graded judgements (qrels)."""
    products = list(generate_products(seed, product_count))
    topics = {topic.ident: topic for topic in TOPICS}
    rng = random.Random(seed + 1)
    demands: list[dict[str, Any]] = []
    qrels: list[dict[str, Any]] = []
    for serial in range(1, demand_count + 1):
        topic = TOPICS[(serial - 1) % len(TOPICS)]
        # A demand nothing can answer says nothing about ranking: draw its constraints again
        # until at least one product is relevant (grade ≥ 2).
        for _attempt in range(100):
            demand = _demand(rng, serial, topic)
            grades = {
                product["id"]: relevance
                for product in products
                if (relevance := grade(product, demand, topics)) > 0
            }
            if any(relevance >= 2 for relevance in grades.values()):
                break
        else:
            raise RuntimeError(f"no answerable demand for topic {topic.ident}")
        demands.append(demand)
        qrels.append({"demand": demand["id"], "grades": dict(sorted(grades.items()))})
    return products, demands, qrels


def listed_product(row: dict[str, Any]) -> ListedProduct:
    """The matcher's view of a product row (what the listings service will fill in)."""
    return ListedProduct(
        product_id=row["id"],
        operator_id=row["operator"],
        title=row["title"],
        description=row["description"],
        domain=DataDomain(row["domain"]),
        delivery_form=DeliveryForm(row["form"]),
        grade=Grade(row["grade"]),
        prices=tuple(
            Price(Purpose(purpose), ChargingUnit(unit), amount)
            for purpose, unit, amount in row["prices"]
        ),
        permitted_purposes=frozenset(Purpose(purpose) for purpose in row["purposes"]),
        registration_code=row["code"],
        active=row["active"],
        operator_authorized=row["authorized"],
    )


def demand(row: dict[str, Any]) -> Demand:
    """The matcher's view of a demand row."""
    return Demand(
        demand_id=row["id"],
        buyer_org_id=row["buyer"],
        title=row["title"],
        description=row["description"],
        domains=frozenset(DataDomain(domain) for domain in row["domains"]),
        purpose=Purpose(row["purpose"]),
        budget_minor_per_unit=None,
        unit_budgets_minor={ChargingUnit(unit): amount for unit, amount in row["budgets"].items()},
        delivery_forms=frozenset(DeliveryForm(form) for form in row["forms"]),
        grade_clearance=Grade(row["clearance"]),
        deadline=date.fromisoformat(row["deadline"]),
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--products", type=int, default=DEFAULT_PRODUCTS)
    parser.add_argument("--demands", type=int, default=DEFAULT_DEMANDS)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    arguments = parser.parse_args()
    products, demands, qrels = generate(arguments.seed, arguments.products, arguments.demands)
    arguments.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(arguments.out / "products.jsonl", products)
    write_jsonl(arguments.out / "demands.jsonl", demands)
    write_jsonl(arguments.out / "qrels.jsonl", qrels)
    judged = sum(len(row["grades"]) for row in qrels)
    domains = len({product["domain"] for product in products})
    print(
        f"wrote {len(products)} products in {domains} domains, {len(demands)} demands and "
        f"{judged} graded judgements to {arguments.out}"
    )


if __name__ == "__main__":
    main()

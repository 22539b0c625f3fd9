"""A labelled sample of realistic hotline tickets written for the purpose: 18 departments (utilities,
city bureaus, two district governments), their categories, a district/street tree, and for each department
the matters citizens call about in several wordings. ``sample(n, seed)`` draws tickets from them with the
framing agents write (市民来电反映 ..., times, places, what the caller asks for), so no two read alike;
some tickets lack a category or a region, as real ones do, and the two district governments handle the
same matters, told apart only by place.

Used by the dispatch-suggestion tests and bench/analysis.py; ``install()`` creates the organisation in the
bound database. Pure data apart from ``install``.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

# district code, name, streets (code, name, roads/communities)
REGIONS = (
    ("R-DH", "东湖区", (("R-DH-DHJD", "东湖街道", ("光明路", "湖滨花园", "东湖新村", "解放东路")),
                       ("R-DH-QSJD", "青山街道", ("青山路", "翠苑小区", "青山农贸市场", "望江家园")),
                       ("R-DH-XFJD", "幸福街道", ("幸福小区", "幸福里", "人民路", "春晖苑")))),
    ("R-XS", "西山区", (("R-XS-XSJD", "西山街道", ("西山路", "枫林小区", "西山公园", "建设西路")),
                       ("R-XS-LQZ", "龙泉镇", ("龙泉村", "龙泉大道", "桃源新村", "镇中心小学")),
                       ("R-XS-JQJD", "金桥街道", ("金桥路", "金桥嘉苑", "科技园", "滨河小区")))),
)

# category code, name, parent code
CATEGORIES = (
    ("GYSY", "公用事业", None), ("GS", "供水", "GYSY"), ("GD", "供电", "GYSY"), ("RQ", "燃气", "GYSY"),
    ("TX", "通信", "GYSY"),
    ("HJBH", "环境保护", None), ("SCJG", "市场监管", None), ("LDBZ", "劳动保障", None),
    ("JTCX", "交通出行", None), ("JTGL", "交通管理", "JTCX"), ("ZAHZ", "治安户政", None), ("JY", "教育", None),
    ("YLWS", "医疗卫生", None), ("YB", "医疗保障", "YLWS"), ("MZ", "民政", None), ("YLLH", "园林绿化", None),
    ("ZFJS", "住房建设", None), ("CSGL", "城市管理", None),
)


@dataclass(frozen=True)
class Matter:
    """A matter a department handles: a short title and wordings of the complaint."""

    title: str
    wordings: tuple[str, ...]


# department code, name, category code, district code (only for the district governments), matters
DEPARTMENTS: tuple[tuple[str, str, str, str | None, tuple[Matter, ...]], ...] = (
    ("SW", "市水务集团", "GS", None, (
        Matter("停水", ("{place}从{time}开始停水，一直没有来水，也没有看到停水通知", "家里水龙头拧开一滴水都没有，{place}整栋楼都停水了")),
        Matter("水压低", ("{place}高层住户水压太低，洗澡都成问题", "{time}以来自来水水压很小，楼上几乎出不了水")),
        Matter("水质发黄", ("{place}自来水发黄有异味，不敢饮用", "放出来的水浑浊发黄，烧开后有沉淀，担心水质不达标")),
        Matter("水管爆裂", ("{place}路边供水管道爆裂，水流满地", "小区门口地下水管破了，一直在往外冒水，浪费严重")),
        Matter("水费异常", ("这个月水费突然是平时的三倍，怀疑水表有问题", "水表读数不对，水费多收了，要求重新抄表")),
        Matter("二次供水", ("{place}二次供水水箱很久没有清洗，水里有杂质", "楼顶水箱没人管，供水泵经常坏")),
    )),
    ("GD", "国网市供电公司", "GD", None, (
        Matter("停电", ("{place}从{time}突然停电，冰箱里的东西都坏了", "整个片区停电好几个小时，供电部门也没有通知")),
        Matter("电压不稳", ("{place}电压忽高忽低，家里电器烧坏了两个", "晚上用电高峰电压太低，空调都开不起来")),
        Matter("电线老化", ("{place}楼道里的电线老化裸露，存在安全隐患", "小区架空电线垂得很低，担心触电")),
        Matter("电费疑问", ("电费账单比上月多了很多，想查询用电明细", "智能电表走得太快，电费不正常")),
        Matter("变压器噪音", ("{place}变压器嗡嗡响，晚上吵得睡不着", "楼下配电箱一直有电流声，还发热")),
        Matter("充电桩报装", ("小区想安装电动汽车充电桩，供电报装一直没人受理", "申请充电桩用电报装，迟迟不给接电")),
    )),
    ("RQ", "市燃气集团", "RQ", None, (
        Matter("燃气泄漏", ("{place}楼道里闻到很浓的燃气味，怀疑管道漏气", "厨房一直有煤气味，担心燃气泄漏")),
        Matter("燃气表故障", ("燃气表不走字了，充值后还是打不着火", "燃气表显示异常，无法正常用气")),
        Matter("停气", ("{place}从{time}开始停气，做不了饭", "天然气突然没有了，也没有接到停气通知")),
        Matter("燃气开户", ("新房想开通天然气，燃气公司一直不上门安装", "申请燃气开户，等了一个多月还没通气")),
        Matter("燃气安检", ("有人冒充燃气公司上门安检推销报警器", "燃气入户安检人员收费是否合理")),
    )),
    ("HB", "市生态环境局", "HJBH", None, (
        Matter("工厂废气", ("{place}附近工厂晚上偷偷排放废气，气味刺鼻", "化工厂烟囱冒黑烟，空气里都是怪味")),
        Matter("污水直排", ("{place}旁边的河被工厂排污染黑了，还发臭", "有企业把污水直接排进河道，鱼都死了")),
        Matter("工业噪音", ("{place}工厂机器日夜轰鸣，噪声超标", "附近厂房切割设备噪音太大，严重干扰休息")),
        Matter("餐饮油烟", ("楼下饭店油烟直排，窗户都不敢开", "{place}烧烤摊油烟熏人，排烟没有净化设备")),
        Matter("焚烧垃圾", ("有人在{place}空地焚烧垃圾和塑料，黑烟滚滚", "农田边有人烧秸秆，烟雾很大")),
        Matter("危废倾倒", ("有人在{place}偷倒工业废料，桶上有化学品标志", "河边出现来历不明的废油桶")),
    )),
    ("SC", "市市场监督管理局", "SCJG", None, (
        Matter("食品安全", ("在{place}超市买到过期食品，商家拒绝退换", "饭店的菜里吃出了异物，怀疑卫生不合格")),
        Matter("缺斤短两", ("{place}农贸市场摊贩缺斤短两，秤有问题", "买的水果回家一称少了好几两")),
        Matter("价格欺诈", ("商场先涨价再打折，属于虚假促销", "药店同一种药标价和结算价不一致")),
        Matter("预付卡退费", ("健身房突然关门，办的预付卡无法退费", "理发店老板跑路了，会员卡里还有两千元")),
        Matter("网购纠纷", ("网上买的家电有质量问题，商家不给退货", "网购商品与宣传不符，平台客服推诿")),
        Matter("无证经营", ("{place}有家小作坊无证生产食品", "街边药店没有营业执照还在卖处方药")),
    )),
    ("RS", "市人力资源和社会保障局", "LDBZ", None, (
        Matter("拖欠工资", ("公司已经拖欠工资三个月，老板一直推脱", "在工地干活，包工头欠薪不给，过年回不了家")),
        Matter("社保缴纳", ("单位没有给员工缴纳社保，入职时也没说", "公司少缴社保基数，想了解怎么维权")),
        Matter("劳动合同", ("工作一年了公司还不签劳动合同", "被公司无故辞退，没有任何补偿")),
        Matter("失业金申领", ("想咨询失业保险金怎么申领", "失业金申请提交后一直没有到账")),
        Matter("养老金", ("退休后养老金迟迟没有发放", "想咨询养老保险转移接续的办理流程")),
        Matter("职业培训", ("想报名政府补贴的职业技能培训", "技能培训补贴申请后一直没有审核结果")),
    )),
    ("JT", "市交通运输局", "JTCX", None, (
        Matter("公交线路", ("{place}没有公交车站，希望增设公交线路", "某路公交车班次太少，早高峰等四十分钟")),
        Matter("出租车拒载", ("在火车站打车，出租车司机拒载还绕路", "出租车不打表，一口价乱收费")),
        Matter("网约车", ("网约车司机中途把我赶下车，平台不处理", "网约车多收费，投诉平台没有回应")),
        Matter("公交司机态度", ("公交司机服务态度恶劣，辱骂乘客", "公交车不进站停靠，乘客追车很危险")),
        Matter("道路破损", ("{place}公路路面坑洼严重，车辆颠簸", "国道上有个大坑，已经有电动车摔倒")),
        Matter("公交卡", ("老年人公交卡办理需要什么材料", "公交卡充值后余额不对")),
    )),
    ("JJ", "市公安局交通警察支队", "JTGL", None, (
        Matter("红绿灯故障", ("{place}路口红绿灯坏了，车辆乱成一团", "交通信号灯时间太短，行人过马路来不及")),
        Matter("交通拥堵", ("{place}每天早晚高峰严重堵车，希望交警疏导", "学校门口接送车辆堵塞交通")),
        Matter("违章停车", ("有车辆长期乱停车占用消防通道", "{place}路边违章停车，把路都堵死了")),
        Matter("驾驶证业务", ("驾驶证到期换证需要什么材料", "驾照扣分有异议，想申请复核")),
        Matter("违法记录", ("收到违章短信，但是那天车没开出去", "电子眼抓拍有误，想申诉违法记录")),
        Matter("电动车上牌", ("电动自行车上牌要去哪里办理", "电动车登记上牌排队太久")),
    )),
    ("GA", "市公安局", "ZAHZ", None, (
        Matter("户口迁移", ("孩子落户需要准备哪些材料", "户口迁移手续办理太麻烦，跑了好几趟")),
        Matter("身份证办理", ("身份证丢了怎么补办，异地能办吗", "临时身份证办理需要多久")),
        Matter("治安问题", ("{place}晚上经常有人聚众喝酒闹事", "小区里发生多起电动车被盗")),
        Matter("诈骗", ("接到冒充客服的诈骗电话，被骗了钱", "网上兼职刷单被骗，想报案")),
        Matter("邻居噪音", ("楼上邻居半夜吵闹摔东西，多次沟通无效", "邻居家狗整夜叫，严重影响休息")),
        Matter("居住证", ("外地人办理居住证需要什么条件", "居住证签注过期了怎么续签")),
    )),
    ("JY", "市教育局", "JY", None, (
        Matter("入学报名", ("孩子今年上小学，学区划分怎么查询", "随迁子女入学需要哪些材料")),
        Matter("学校收费", ("学校乱收资料费和补课费", "幼儿园收费太高，还要交赞助费")),
        Matter("校外培训", ("校外培训机构卷款跑路，学费退不回来", "培训机构违规在周末组织学科培训")),
        Matter("学生安全", ("{place}学校门口没有护学岗，孩子过马路很危险", "校车超载，担心孩子安全")),
        Matter("教师问题", ("老师体罚学生，家长很担心", "老师在校外有偿补课")),
        Matter("学籍转学", ("孩子转学学籍手续怎么办理", "学籍信息有误，怎么更正")),
    )),
    ("WJ", "市卫生健康委员会", "YLWS", None, (
        Matter("医院服务", ("医院挂号难，排队好几个小时", "医生服务态度差，看病不耐心")),
        Matter("医疗纠纷", ("手术后出现并发症，医院推卸责任", "怀疑医院过度治疗，乱开检查")),
        Matter("疫苗接种", ("孩子打疫苗在哪个社区卫生服务中心预约", "新冠疫苗加强针接种点在哪里")),
        Matter("无证行医", ("{place}有个诊所无证行医", "小区里有人非法给人打针输液")),
        Matter("出生证明", ("出生医学证明丢了怎么补办", "出生证明信息写错了怎么改")),
    )),
    ("YB", "市医疗保障局", "YB", None, (
        Matter("医保报销", ("住院费用医保报销比例太低，想了解政策", "门诊费用医保报销一直没有到账")),
        Matter("异地就医", ("在外地住院怎么办理异地就医备案", "异地就医直接结算为什么刷不了医保卡")),
        Matter("医保卡", ("医保卡丢了怎么补办", "医保卡余额被冒用，怀疑被盗刷")),
        Matter("医保缴费", ("城乡居民医保怎么缴费，截止时间是什么时候", "灵活就业人员医保缴费断了怎么补")),
        Matter("慢特病", ("慢性病门诊认定需要什么材料", "特殊病种待遇申请被退回")),
    )),
    ("MZ", "市民政局", "MZ", None, (
        Matter("低保", ("家庭困难想申请低保，不知道条件", "低保资格被取消，想了解原因")),
        Matter("养老院", ("想给老人找公办养老院，排队太长", "养老院护工虐待老人")),
        Matter("婚姻登记", ("婚姻登记需要预约吗，要带什么材料", "结婚登记处周末能办理吗")),
        Matter("殡葬服务", ("殡仪馆收费太高，不透明", "公墓价格昂贵，还要交管理费")),
        Matter("残疾人补贴", ("残疾人两项补贴怎么申请", "残疾人护理补贴停发了")),
        Matter("高龄津贴", ("八十岁以上老人高龄津贴怎么领取", "高龄津贴好几个月没有发")),
    )),
    ("YL", "市园林绿化局", "YLLH", None, (
        Matter("树木倒伏", ("{place}大树被风刮倒，压住了路", "路边行道树倾斜快倒了，很危险")),
        Matter("修剪树枝", ("{place}树枝挡住窗户，家里采光很差，希望修剪", "树枝碰到电线，存在安全隐患")),
        Matter("公园设施", ("{place}公园健身器材坏了没人修", "公园里的公厕太脏，路灯也不亮")),
        Matter("绿地被占", ("小区公共绿地被人圈起来种菜", "绿化带被毁，有人在里面停车")),
        Matter("病虫害", ("行道树长了很多虫子，掉得满地都是", "公园树木病虫害严重，树叶都枯了")),
    )),
    ("ZJ", "市住房和城乡建设局", "ZFJS", None, (
        Matter("房屋质量", ("新买的商品房墙面开裂漏水，开发商不管", "交房后发现房屋质量问题，要求维修")),
        Matter("维修基金", ("小区电梯坏了，想申请使用维修基金", "住房维修基金怎么查询余额")),
        Matter("工地夜间施工", ("{place}建筑工地夜间施工，噪音很大", "工地半夜还在浇混凝土，吵得睡不着")),
        Matter("烂尾楼", ("买的楼盘停工一年多了，迟迟不能交房", "开发商资金链断裂，项目烂尾")),
        Matter("公租房", ("公租房申请需要什么条件", "公租房审核结果什么时候出来")),
        Matter("老旧小区改造", ("{place}老旧小区改造进度太慢", "小区改造施工质量差，刚修的路就坏了")),
    )),
    ("TX", "市通信管理局", "TX", None, (
        Matter("手机信号", ("{place}手机信号很差，经常打不通电话", "家里一点信号都没有，基站能不能加一个")),
        Matter("宽带故障", ("宽带断网好几天了，运营商一直不来修", "宽带网速很慢，和套餐不符")),
        Matter("骚扰电话", ("每天接到很多推销骚扰电话", "手机号被泄露，天天收到垃圾短信")),
        Matter("携号转网", ("携号转网被运营商设置障碍", "想携号转网，客服说不能办理")),
        Matter("套餐扣费", ("手机话费被乱扣费，开通了不知情的业务", "运营商擅自变更套餐")),
    )),
    ("DH", "东湖区人民政府", "CSGL", "R-DH", (
        Matter("占道经营", ("{place}有商贩占道经营，行人只能走机动车道", "早市摊贩把人行道都占满了")),
        Matter("垃圾清运", ("{place}垃圾桶满了好几天没人清运，臭气熏天", "小区垃圾堆在路边没人管")),
        Matter("违章搭建", ("{place}有业主在楼顶违章搭建", "一楼住户私自扩建院子，占用公共绿地")),
        Matter("物业管理", ("{place}物业不作为，楼道灯坏了也不修", "物业费年年涨，服务却很差")),
        Matter("广场舞噪音", ("{place}广场舞音响声音太大，晚上十点还不停", "每天早上五点有人在楼下跳广场舞")),
        Matter("路灯不亮", ("{place}路灯不亮好几天，晚上走路很危险", "小区门口一排路灯都坏了")),
        Matter("井盖缺失", ("{place}人行道上井盖丢了，很危险", "路中间的井盖松动，车一过就响")),
    )),
    ("XS", "西山区人民政府", "CSGL", "R-XS", (
        Matter("占道经营", ("{place}流动摊贩占道经营，交通很乱", "店铺把货物摆到人行道上")),
        Matter("垃圾清运", ("{place}垃圾清运不及时，苍蝇很多", "建筑垃圾堆了一个月没人拉走")),
        Matter("违章搭建", ("{place}村民在河边违章搭建房屋", "有人在小区空地上私搭乱建")),
        Matter("物业管理", ("{place}物业管理混乱，门禁坏了没人修", "物业公司强制收取停车费")),
        Matter("广场舞噪音", ("{place}晚上广场舞噪音扰民", "公园里大音响唱歌，周边居民没法休息")),
        Matter("路灯不亮", ("{place}一段路的路灯全部不亮", "村道上没有路灯，晚上太黑了")),
        Matter("井盖缺失", ("{place}下水道井盖破损", "雨水井盖被偷了，留下一个大洞")),
    )),
)

OPENERS = ("市民来电反映：", "来电人称，", "市民投诉：", "网友留言：", "来电反映，", "", "市民求助：", "来电咨询：")
TIMES = ("昨天晚上", "今天早上", "前天", "三天前", "上周", "今天上午八点", "最近一周", "一个月前", "昨天下午")
REQUESTS = ("希望尽快处理。", "请相关部门核实处理。", "要求给个说法。", "", "希望有关部门管一管。", "请尽快派人来看看。",
            "多次反映未解决，请督办。", "")


# Departments that end up with each other's cases in real centres (noise, roads, housing, parking ...).
NEIGHBOURS = {
    "SW": ("ZJ", "DH"), "GD": ("ZJ",), "RQ": ("ZJ", "SC"), "HB": ("DH", "XS", "ZJ"), "SC": ("WJ",),
    "RS": ("MZ", "YB"), "JT": ("JJ",), "JJ": ("JT", "DH"), "GA": ("DH", "XS"), "JY": ("SC",), "WJ": ("YB", "SC"),
    "YB": ("WJ", "RS"), "MZ": ("RS",), "YL": ("DH", "XS"), "ZJ": ("DH", "XS"), "TX": ("SC",), "DH": ("XS", "ZJ", "HB"),
    "XS": ("DH", "ZJ", "HB"),
}
MISROUTED = 0.06


@dataclass(frozen=True)
class SampleTicket:
    """One drawn ticket: text, category and region codes (either may be empty), the handling department."""

    title: str
    content: str
    category: str
    region: str
    department: str
    matter: str


def streets() -> list[tuple[str, str, str, tuple[str, ...]]]:
    """(district code, street code, street name, places) for every street."""
    return [(dcode, scode, sname, places) for dcode, _dname, rows in REGIONS for scode, sname, places in rows]


def draw(rng: random.Random, department: str | None = None) -> SampleTicket:
    """One ticket of ``department`` (any, when None), worded at random."""
    code, _name, category, district, matters = (next(d for d in DEPARTMENTS if d[0] == department)
                                                if department else rng.choice(DEPARTMENTS))
    matter = rng.choice(matters)
    pool = [s for s in streets() if district is None or s[0] == district]
    dcode, scode, sname, places = rng.choice(pool)
    place = rng.choice(places)
    where = rng.choice((f"{sname}{place}", place, f"{sname}", f"{place}附近"))
    text = rng.choice(matter.wordings).format(place=where, time=rng.choice(TIMES))
    content = f"{rng.choice(OPENERS)}{text}。{rng.choice(REQUESTS)}".replace("。。", "。")
    region = rng.choices((scode, dcode, ""), weights=(70, 10, 20))[0]
    # Agents leave the category out or pick a broad or neighbouring one now and then.
    cat = rng.choices((category, "", rng.choice(CATEGORIES)[0]), weights=(70, 20, 10))[0]
    title = rng.choice((matter.title, f"{sname}{matter.title}", f"反映{matter.title}问题", text[:12],
                        rng.choice(("市民投诉", "市民求助", "咨询", "来电反映问题"))))
    handled = code
    if rng.random() < MISROUTED:  # a neighbouring department kept and handled it (no return)
        handled = rng.choice(NEIGHBOURS.get(code, (code,)))
    return SampleTicket(title, content, cat, region, handled, matter.title)


def sample(n: int, seed: int = 14) -> list[SampleTicket]:
    """``n`` tickets over every department in turn (so each has its share), worded at random."""
    rng = random.Random(seed)
    return [draw(rng, DEPARTMENTS[i % len(DEPARTMENTS)][0]) for i in range(n)]


def install() -> dict[str, dict[str, object]]:
    """Create the sample's organisation in the bound database (a centre, the departments, the category and
    region trees); returns {"departments"|"categories"|"regions": code -> row}. Existing codes are reused."""
    from caseflow import org
    from caseflow.models import Category, Department, Region

    made: dict[str, dict[str, object]] = {"departments": {}, "categories": {}, "regions": {}}
    centre = Department.get_or_none(Department.level == 1) or org.create_department(
        "SAMPLE-C", "市12345热线中心", None, "centre")
    made["departments"]["CENTRE"] = centre
    for code, name, _cat, _district, _matters in DEPARTMENTS:
        made["departments"][code] = (Department.get_or_none(Department.code == code)
                                     or org.create_department(code, name, centre, "city_dept"))
    for code, name, parent in CATEGORIES:
        made["categories"][code] = (Category.get_or_none(Category.code == code)
                                    or org.create_category(code, name, made["categories"].get(parent)))
    for dcode, dname, rows in REGIONS:
        district = Region.get_or_none(Region.code == dcode) or org.create_region(dcode, dname, None)
        made["regions"][dcode] = district
        for scode, sname, _places in rows:
            made["regions"][scode] = Region.get_or_none(Region.code == scode) or org.create_region(scode, sname, district)
    return made


def closed_history(tickets: list[SampleTicket], made, *, start: dt.datetime, step: dt.timedelta,
                   first_number: int = 50000000) -> int:
    """Store ``tickets`` as closed tickets the centre dispatched to their department (one dispatch history
    row each), created ``step`` apart from ``start`` (naive UTC). Fast bulk rows for tests and benchmarks,
    not the workflow. Returns how many."""
    from caseflow.models import Ticket, TicketHistory
    from core.db import database

    deps, cats, regs = made["departments"], made["categories"], made["regions"]
    with database.atomic():
        for offset in range(0, len(tickets), 500):
            chunk = tickets[offset:offset + 500]
            rows = []
            for i, t in enumerate(chunk, start=offset):
                at = start + step * i
                rows.append({"number": f"{first_number + i:08d}", "type": "complaint", "channel": "phone",
                             "status": "closed", "title": t.title, "content": t.content,
                             "category": cats[t.category].id if t.category else None,
                             "region": regs[t.region].id if t.region else None,
                             "department": deps[t.department].id, "created_at": at, "updated_at": at,
                             "dispatched_at": at, "closed_at": at + dt.timedelta(days=3)})
            Ticket.insert_many(rows).execute()
            numbers = [r["number"] for r in rows]
            ids = dict(Ticket.select(Ticket.number, Ticket.id).where(Ticket.number.in_(numbers)).tuples())
            TicketHistory.insert_many([{"ticket": ids[r["number"]], "action": "dispatch", "from_status": "recorded",
                                        "to_status": "dispatched", "department": r["department"],
                                        "at": r["dispatched_at"], "note": ""} for r in rows]).execute()
    return len(tickets)

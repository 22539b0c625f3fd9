"""A small, realistic demo organisation for `make run`: a centre, districts, city departments and
streets, a user for every role (password ``demo1234``), categories, regions, knowledge items, a working
calendar and tickets in several states. ``load_demo`` does nothing when departments already exist.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Optional

from caseflow import knowledge, org, services
from caseflow.accounts import create_user
from caseflow.models import Department
from core.calendar import HOLIDAY, WORKDAY, set_day
from core.clock import Clock, FixedClock

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo1234"

# (operator_no, name, roles, department code, extension)
DEMO_USERS = [
    ("0001", "系统管理员", "admin", "CENTRE", None),
    ("1001", "王晓燕", "agent", "CENTRE", "1000"),
    ("1002", "李明", "agent", "CENTRE", "1001"),
    ("8001", "赵班长", "team_lead,agent", "CENTRE", "1008"),
    ("9001", "陈派单", "centre", "CENTRE", None),
    ("9002", "周主任", "centre_leader,centre", "CENTRE", None),
    ("6001", "孙录入", "entry", "CENTRE", None),
    ("5001", "吴市长", "leader", "CENTRE", None),
    ("7001", "刘东湖", "dept", "DH", None),
    ("7002", "郑区长", "dept_leader,dept", "DH", None),
    ("7101", "黄街道", "dept", "DH-DHJD", None),
    ("7201", "何城管", "dept", "CGJ", None),
    ("7301", "马西山", "dept", "XS", None),
    ("7401", "林环保", "dept", "HBJ", None),
]

# 2026 official holiday arrangement (国务院办公厅通知); administrators add later years on the calendar page.
DEMO_CALENDAR = [
    ("2026-01-01", HOLIDAY, "元旦"), ("2026-01-02", HOLIDAY, "元旦"), ("2026-01-04", WORKDAY, "元旦调休"),
    *[(f"2026-02-{d:02d}", HOLIDAY, "春节") for d in range(15, 24)],
    ("2026-02-14", WORKDAY, "春节调休"), ("2026-02-28", WORKDAY, "春节调休"),
    ("2026-04-06", HOLIDAY, "清明节"),
    *[(f"2026-05-0{d}", HOLIDAY, "劳动节") for d in range(1, 6)], ("2026-05-09", WORKDAY, "劳动节调休"),
    ("2026-06-19", HOLIDAY, "端午节"), ("2026-09-25", HOLIDAY, "中秋节"),
    *[(f"2026-10-0{d}", HOLIDAY, "国庆节") for d in range(1, 8)],
    ("2026-09-20", WORKDAY, "国庆节调休"), ("2026-10-10", WORKDAY, "国庆节调休"),
]

KNOWLEDGE = [
    ("ZYRM", "夜间施工噪音扰民如何处理", "夜间（22时至次日6时）在噪声敏感建筑物集中区域施工作业，须持有建设、生态环境部门出具的夜间施工证明。"
     "无证夜间施工造成噪音扰民的，可拨打12345反映，由属地生态环境部门和城管部门依法查处。",
     ["请告知具体施工地点和时间，我们将转属地执法部门核查处理。", "如有夜间施工许可，施工单位应提前公告并采取降噪措施。"]),
    ("ZYRM", "广场舞音响声音过大", "公园、广场等公共场所组织娱乐活动使用音响器材，音量不得对周边居民造成干扰。由属地街道和公安派出所协调处理。",
     ["已记录，将转属地街道协调活动组织者控制音量和时间。"]),
    ("ZYRM", "商铺高音喇叭招揽顾客", "商业经营活动中使用高音广播喇叭或者采用其他发出高噪声的方法招揽顾客，由城管部门责令改正。", []),
    ("ZDJY", "流动摊贩占道经营投诉", "占用城市道路、桥梁、广场等公共场所摆摊设点的，由城市管理综合执法部门依法处理。",
     ["请提供具体路段和时间段，我们将转属地城管执法中队处理。"]),
    ("SPAQ", "购买到过期食品怎么办", "消费者购买到过期食品，可保存购物凭证和商品，向市场监管部门投诉举报，也可要求经营者退货并依法赔偿。",
     ["根据食品安全法，可要求支付价款十倍或者损失三倍的赔偿金，增加赔偿的金额不足一千元的，为一千元。"]),
    ("SBZX", "灵活就业人员如何缴纳养老保险", "灵活就业人员可持身份证到户籍所在地社保经办机构登记，或通过政务服务网办理参保登记，按年或按月缴费。", []),
    ("GJFW", "公交车不按站停靠", "反映公交车不按站停靠、甩站等问题，请提供线路、车牌号和时间，由市交通运输部门督促公交企业核查处理。", []),
    ("WYGL", "物业公司不履行维修义务", "业主可依据物业服务合同要求物业公司履行维修义务，也可向街道、区住建部门反映，由其督促整改。", []),
    ("DQWR", "餐饮油烟污染投诉", "餐饮服务经营者应安装油烟净化设施并保持正常使用，油烟超标排放的由生态环境或城管部门依法查处。", []),
    ("CSGL", "12345热线受理范围", "12345政务服务便民热线受理企业和群众的咨询、求助、投诉、举报和建议；"
     "110、119、120、122等紧急类诉求请直接拨打相应紧急电话。", ["紧急情况请直接拨打110、119、120。"]),
]


def load_demo(clock: Optional[Clock] = None) -> list[tuple[str, str, str, str]]:
    """Create the demo data unless departments exist; returns [(operator_no, name, roles, password)]."""
    clock = clock or Clock()
    if Department.select().exists():
        log.info("demo data not loaded: the organisation already exists")
        return []
    db = Department._meta.database
    with db.atomic():
        depts = _organisation()
        cats, regions = _trees(depts)
        users = {}
        for operator_no, name, roles, dept_code, ext in DEMO_USERS:
            users[operator_no] = create_user(operator_no, name, DEMO_PASSWORD, roles=roles,
                                             department=depts[dept_code], extension=ext)
        for day, kind, name in DEMO_CALENDAR:
            set_day(day, kind, name)
        for code, title, content, answers in KNOWLEDGE:
            item = knowledge.create_item(title, content, category=cats[code], review_state="approved",
                                         clock=clock)
            for text in answers:
                knowledge.review(knowledge.add_answer(item, text, clock=clock), "approved")
        _tickets(clock, depts, cats, regions, users)
    accounts = [(no, name, roles, DEMO_PASSWORD) for no, name, roles, _d, _e in DEMO_USERS]
    for no, name, roles, password in accounts:
        log.info("demo user %s %s (%s) password %s", no, name, roles, password)
    return accounts


def _organisation() -> dict[str, Department]:
    d: dict[str, Department] = {}
    d["CENTRE"] = org.create_department("CENTRE", "市12345政务服务便民热线中心", None, "centre", "12345")
    for code, name, kind, phone in (
        ("DH", "东湖区", "district", "0571-86000001"), ("XS", "西山区", "district", "0571-86000002"),
        ("CGJ", "市城市管理局", "city_dept", "0571-87000001"), ("HBJ", "市生态环境局", "city_dept", "0571-87000002"),
        ("SCJ", "市市场监督管理局", "city_dept", "0571-87000003"), ("JTJ", "市交通运输局", "city_dept", "0571-87000004"),
        ("RSJ", "市人力资源和社会保障局", "city_dept", "0571-87000005"),
    ):
        d[code] = org.create_department(code, name, d["CENTRE"], kind, phone)
    for code, name, parent, kind in (
        ("DH-DHJD", "东湖街道", "DH", "street"), ("DH-QSJD", "青山街道", "DH", "street"),
        ("DH-CGJ", "东湖区城市管理局", "DH", "district_dept"), ("XS-XSJD", "西山街道", "XS", "street"),
        ("XS-LQZ", "龙泉镇", "XS", "street"), ("HBJ-DH", "市生态环境局东湖分局", "HBJ", "sub_office"),
    ):
        d[code] = org.create_department(code, name, d[parent], kind)
    return d


def _trees(depts):
    c = {}
    for code, name, parent in (
        ("CSGL", "城市管理", None), ("ZYRM", "噪音扰民", "CSGL"), ("ZDJY", "占道经营", "CSGL"),
        ("WZDJ", "违章搭建", "CSGL"), ("HJBH", "环境保护", None), ("DQWR", "大气污染", "HJBH"),
        ("SCJG", "市场监管", None), ("SPAQ", "食品安全", "SCJG"), ("JGTS", "价格投诉", "SCJG"),
        ("JTCX", "交通出行", None), ("GJFW", "公交服务", "JTCX"), ("ZFJS", "住房建设", None),
        ("WYGL", "物业管理", "ZFJS"), ("SHBZ", "社会保障", None), ("SBZX", "社保咨询", "SHBZ"),
    ):
        c[code] = org.create_category(code, name, c.get(parent))
    r = {}
    for code, name, parent in (("R-DH", "东湖区", None), ("R-XS", "西山区", None),
                               ("R-DH-DHJD", "东湖街道", "R-DH"), ("R-DH-QSJD", "青山街道", "R-DH"),
                               ("R-XS-XSJD", "西山街道", "R-XS"), ("R-XS-LQZ", "龙泉镇", "R-XS")):
        r[code] = org.create_region(code, name, r.get(parent))
    for cat in ("CSGL", "ZYRM", "ZDJY", "WZDJ", "WYGL"):
        org.add_responsibility(depts["DH"], c[cat], r["R-DH"])
        org.add_responsibility(depts["XS"], c[cat], r["R-XS"])
    org.add_responsibility(depts["CGJ"], c["CSGL"])
    org.add_responsibility(depts["HBJ"], c["HJBH"])
    org.add_responsibility(depts["HBJ"], c["ZYRM"])
    org.add_responsibility(depts["SCJ"], c["SCJG"])
    org.add_responsibility(depts["JTJ"], c["JTCX"])
    org.add_responsibility(depts["RSJ"], c["SHBZ"])
    return c, r


def _tickets(clock, depts, cats, regions, users):
    agent, centre, leader = users["1001"], users["9001"], users["9002"]
    dept_dh, street = users["7001"], users["7101"]
    # Some work from 25 days ago, so the desk shows overdue items at once.
    past = FixedClock(clock.now() - dt.timedelta(days=25), tz=str(clock.tz))

    def new(content, clk=clock, **kw):
        return services.create_ticket(content, created_by=agent, clock=clk, **kw)

    services.create_ticket(
        "青山街道幸福小区3幢楼下烧烤店每晚营业到凌晨2点，油烟和噪音严重扰民，多次反映未解决。", type="complaint",
        category=cats["ZYRM"], region=regions["R-DH-QSJD"], citizen_phone="13800000001", citizen_name="张伟",
        citizen_address="东湖区青山街道幸福小区3幢", created_by=agent, clock=clock)
    new("咨询灵活就业人员养老保险如何缴费。", type="consult", category=cats["SBZX"], citizen_phone="13800000002",
        citizen_name="李娜")
    t = new("东湖路与解放路交叉口每天傍晚有流动摊贩占道经营，影响通行。", type="complaint", category=cats["ZDJY"],
            region=regions["R-DH-DHJD"], citizen_phone="13800000003", citizen_name="王芳")
    services.dispatch(t, centre, depts["DH"], clock=clock)
    t = new("龙泉镇工地夜间施工，电钻声持续到凌晨，严重影响休息。", type="complaint", category=cats["ZYRM"],
            region=regions["R-XS-LQZ"], citizen_phone="13800000004", citizen_name="欧阳娜娜", clk=past)
    services.dispatch(t, centre, depts["XS"], clock=past)  # 25 days old: overdue when the jobs run
    t = new("东湖街道建设路58号门前人行道被私家车长期占用。", type="complaint", category=cats["ZDJY"],
            region=regions["R-DH-DHJD"], citizen_phone="13800000005", citizen_name="赵磊")
    t = services.dispatch(t, centre, depts["DH"], clock=clock)
    t = services.transition(t, "accept", dept_dh, clock=clock)
    t = services.transition(t, "sub_dispatch", dept_dh, department=depts["DH-DHJD"], clock=clock)
    services.transition(t, "accept", street, clock=clock)
    t = new("小区物业长期不维修电梯，反映多次无果。", type="complaint", category=cats["WYGL"], region=regions["R-DH"],
            citizen_phone="13800000006", citizen_name="孙丽")
    t = services.dispatch(t, centre, depts["DH"], clock=clock)
    t = services.transition(t, "accept", dept_dh, clock=clock)
    services.transition(t, "reply", dept_dh, reply="已约谈物业公司，电梯已于本周维修完毕并通过检测。", clock=clock)
    t = new("超市出售过期酸奶。", type="report", category=cats["SPAQ"], citizen_phone="13800000007",
            citizen_name="周杰")
    services.dispatch(t, centre, depts["SCJ"], clock=clock)
    t = new("建议在东湖公园增设儿童游乐设施。", type="suggestion", category=cats["CSGL"], region=regions["R-DH"],
            citizen_phone="13800000008", citizen_name="吴敏")
    t = services.dispatch(t, centre, depts["DH"], clock=clock)
    t = services.transition(t, "accept", dept_dh, clock=clock)
    t = services.transition(t, "reply", dept_dh, reply="已纳入明年公园提升改造计划。", clock=clock)
    t = services.transition(t, "approve", centre, clock=clock)
    t = services.call_back(t, centre, "satisfied", clock=clock)
    services.transition(t, "close", leader, clock=clock)
    t = new("咨询12345热线的服务时间。", type="consult", citizen_phone="13800000009", citizen_name="郑强")
    services.transition(t, "answer", agent, reply="12345热线7×24小时提供服务。", clock=clock)
    t = new("反映的路灯问题不属于本区管辖。", type="complaint", category=cats["CSGL"], citizen_phone="13800000010",
            citizen_name="钱多")
    t = services.dispatch(t, centre, depts["XS"], clock=clock)
    services.transition(t, "return", users["7301"], reason="该路段属东湖区管辖，请改派。", clock=clock)
    services.create_ticket("来信反映：西山街道老旧小区改造进度缓慢。", type="suggestion", channel="letter",
                           citizen_name="冯老师", citizen_address="西山区西山街道光明路12号", reply_by="letter",
                           created_by=users["6001"], clock=clock)

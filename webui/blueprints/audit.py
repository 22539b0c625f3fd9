"""The audit log page: who logged in, read or changed what, from where (system log browsing)."""
from __future__ import annotations

import datetime as dt
import math

from flask import Blueprint, current_app, render_template, request
from peewee import JOIN

from caseflow.models import User
from webui.app import NavItem, bad_request
from webui.blueprints.agent_tickets import parse_page
from webui.models import AuditLog
from webui.security import require_roles

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

AUDIT_ROLES = ("admin", "centre_leader")
NAV = [NavItem("Audit log", "audit.index", frozenset(AUDIT_ROLES), order=90)]
PAGE_SIZE = 50

# What each audited action is called (security.audit's first argument; tests keep every one named).
ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("登录", "Logged in"),
    "logout": ("退出", "Logged out"),
    "login_failed": ("登录失败", "Login failed"),
    "login_throttled": ("登录被限制", "Login throttled"),
    "login_unlock": ("解除登录锁定", "Login unlocked"),
    "password_changed": ("修改密码", "Password changed"),
    "password_change_failed": ("修改密码失败", "Password change failed"),
    "seat_password_reset": ("重置座席话机密码", "Seat SIP password reset"),
    "view_contact": ("查看联系方式", "Contact viewed"),
    "acd_agent_create": ("新增坐席", "Agent created"),
    "acd_agent_update": ("修改坐席", "Agent changed"),
    "acd_agent_delete": ("删除坐席", "Agent deleted"),
    "acd_agent_skills": ("修改坐席技能", "Agent skills changed"),
    "acd_guest_add": ("添加临时坐席", "Guest agent added"),
    "acd_guest_end": ("结束临时坐席", "Guest agent ended"),
    "acd_queue_create": ("新增队列", "Queue created"),
    "acd_queue_update": ("修改队列", "Queue changed"),
    "acd_queue_update_refused": ("修改队列被拒", "Queue change refused"),
    "alarm_ack": ("确认告警", "Alarm acknowledged"),
    "api_key_issue": ("签发接口密钥", "API key issued"),
    "api_key_revoke": ("吊销接口密钥", "API key revoked"),
    "assessment_view": ("查看考核", "Assessment viewed"),
    "assessment_export": ("导出考核", "Assessment exported"),
    "assessment_evidence": ("查看考核依据", "Assessment evidence viewed"),
    "assessment_appeal": ("提交考核申诉", "Appeal raised"),
    "assessment_appeal_refused": ("考核申诉被拒", "Appeal refused"),
    "assessment_appeal_accepted": ("采纳考核申诉", "Appeal accepted"),
    "assessment_appeal_rejected": ("驳回考核申诉", "Appeal rejected"),
    "assessment_close": ("考核月度结账", "Assessment month closed"),
    "assessment_indicator": ("修改考核指标", "Indicator saved"),
    "hotspot_handled": ("处理热点预警", "Hotspot warning handled"),
    "blacklist_add": ("加入黑名单", "Added to the block list"),
    "blacklist_remove": ("移出黑名单", "Removed from the block list"),
    "chat_start": ("开始在线交谈", "Chat started"),
    "chat_answer": ("接入在线交谈", "Chat answered"),
    "chat_end": ("结束在线交谈", "Chat ended"),
    "chat_refused": ("在线交谈被拒", "Chat refused"),
    "chat_ticket": ("在线交谈生成工单", "Ticket from a chat"),
    "chat_capacity": ("修改交谈并发数", "Chat capacity changed"),
    "chat_queue_create": ("新增交谈队列", "Chat queue created"),
    "chat_queue_update": ("修改交谈队列", "Chat queue changed"),
    "chat_queue_update_refused": ("修改交谈队列被拒", "Chat queue change refused"),
    "department_create": ("新增单位", "Department created"),
    "department_update": ("修改单位", "Department changed"),
    "email_send": ("发送邮件", "E-mail sent"),
    "ivr_campaign_group": ("新建群呼任务", "Group call campaign created"),
    "ivr_campaign_satisfaction": ("新建回访任务", "Call-back campaign created"),
    "ivr_campaign_pause": ("暂停外呼任务", "Campaign paused"),
    "ivr_campaign_resume": ("恢复外呼任务", "Campaign resumed"),
    "ivr_poll_create": ("新建民意调查", "Poll created"),
    "ivr_poll_activate": ("启用民意调查", "Poll activated"),
    "ivr_prompt_text": ("修改提示音文字", "Prompt text changed"),
    "ivr_prompt_upload": ("上传提示音", "Prompt uploaded"),
    "ivr_tree_save": ("保存语音导航", "IVR menu saved"),
    "ivr_tree_activate": ("启用语音导航", "IVR menu activated"),
    "log_view": ("查看系统日志", "Log viewed"),
    "message_log_view": ("查看消息记录", "Message log viewed"),
    "message_retry": ("重发消息", "Message resent"),
    "notice_create": ("新建公告", "Notice created"),
    "notice_edit": ("修改公告", "Notice changed"),
    "notice_submit": ("提交公告审核", "Notice submitted"),
    "notice_publish": ("发布公告", "Notice published"),
    "notice_send_back": ("退回公告", "Notice sent back"),
    "notice_withdraw": ("撤回公告", "Notice withdrawn"),
    "open311_discovery": ("Open311 服务发现", "Open311 discovery read"),
    "open311_post": ("Open311 提交请求", "Open311 request filed"),
    "open311_refused": ("Open311 请求被拒", "Open311 request refused"),
    "open311_request": ("Open311 查询单个请求", "Open311 request read"),
    "open311_requests": ("Open311 查询请求列表", "Open311 requests listed"),
    "open311_service": ("Open311 查询服务定义", "Open311 service definition read"),
    "open311_services": ("Open311 查询服务列表", "Open311 service list read"),
    "open311_token": ("Open311 查询令牌", "Open311 token looked up"),
    "org_category": ("修改分类", "Category saved"),
    "org_region": ("修改区域", "Region saved"),
    "org_responsibility": ("设置职责", "Responsibility set"),
    "org_remove_responsibility": ("删除职责", "Responsibility removed"),
    "calendar_day": ("设置节假日", "Calendar day set"),
    "calendar_clear_day": ("清除节假日", "Calendar day cleared"),
    "calendar_limit": ("设置办理时限", "Time limit set"),
    "calendar_clear_limit": ("清除办理时限", "Time limit cleared"),
    "portal_submit": ("网站来信", "Website letter"),
    "portal_refused": ("网站来信被拒", "Website letter refused"),
    "portal_captcha_failed": ("网站验证码错误", "Website captcha failed"),
    "portal_code_sent": ("发送短信验证码", "SMS code sent"),
    "portal_code_failed": ("短信验证码错误", "SMS code failed"),
    "portal_code_refused": ("短信验证码被拒", "SMS code refused"),
    "portal_guide_search": ("网站办事指南检索", "Website guide search"),
    "portal_lookup": ("网站办理查询", "Website case lookup"),
    "portal_lookup_failed": ("网站查询失败", "Website lookup failed"),
    "portal_lookup_unavailable": ("网站查询暂不可用（未配置查询密码密钥）", "Website lookup unavailable (no PIN key)"),
    "portal_lookup_phone": ("按手机号查询", "Website lookup by phone"),
    "portal_lookup_throttled": ("网站查询被限制", "Website lookup throttled"),
    "portal_poll": ("网站民意调查", "Website poll"),
    "publish": ("公开信件", "Case published"),
    "region_map_upload": ("上传区县边界", "District boundaries uploaded"),
    "region_map_refused": ("区县边界文件被拒", "District boundaries refused"),
    "region_map_withdraw": ("撤下区县地图", "District map withdrawn"),
    "region_map_denied": ("区县边界访问被拒", "District boundaries page refused"),
    "role_permissions": ("修改角色权限", "Role permissions changed"),
    "stats_view": ("查看统计", "Statistics viewed"),
    "stats_export": ("导出统计", "Statistics exported"),
    "stats_denied": ("统计访问被拒", "Statistics refused"),
    "stats_query_save": ("保存报表查询", "Report query saved"),
    "stats_query_delete": ("删除报表查询", "Report query deleted"),
    "template_save": ("修改消息模板", "Template saved"),
    "template_reset": ("恢复默认模板", "Template reset"),
    "user_create": ("新增用户", "User created"),
    "user_update": ("修改用户", "User changed"),
}

MESSAGES = {"zh": {
    "Audit log": "审计日志",
    "Time": "时间",
    "User": "用户",
    "Action": "操作",
    "Object": "对象",
    "Detail": "详情",
    "Address": "来源地址",
    "From date": "起始日期",
    "To date": "截止日期",
    "No entries match.": "没有符合条件的记录。",
    "Page %(page)s of %(pages)s, %(total)s entries": "第 %(page)s / %(pages)s 页，共 %(total)s 条",
    "Dates must look like 2026-03-01.": "日期格式应为 2026-03-01。",
    "Address or object": "地址或对象",
    "Refusals only": "仅失败与拒绝",
    **{f"audit:{code}": zh for code, (zh, _en) in ACTIONS.items()},
    # Object kinds (the second argument of security.audit)
    "object:agent": "坐席",
    "object:alarm": "告警",
    "object:api_client": "接口客户端",
    "object:appeal": "申诉",
    "object:assessment": "考核",
    "object:chat": "在线交谈",
    "object:chat_queue": "交谈队列",
    "object:citizen": "市民",
    "object:department": "单位",
    "object:indicator": "考核指标",
    "object:ivr_tree_version": "语音导航版本",
    "object:log": "日志",
    "object:message": "消息",
    "object:poll": "民意调查",
    "object:prompt": "提示音",
    "object:public_notice": "公告",
    "object:queue": "队列",
    "object:role": "角色",
    "object:sample": "质检抽样",
    "object:saved_report": "保存的报表",
    "object:stats": "统计",
    "object:template": "消息模板",
    "object:ticket": "工单",
    "object:user": "用户",
    "object:web": "网页",
    "object:org": "组织", "object:calendar": "工作日历", "object:outbound_campaign": "外呼任务",
}, "en": {
    **{f"audit:{code}": en for code, (_zh, en) in ACTIONS.items()},
    "object:org": "Organisation", "object:calendar": "Work calendar", "object:outbound_campaign": "Outbound campaign",
    "object:agent": "Agent",
    "object:alarm": "Alarm",
    "object:api_client": "API client",
    "object:appeal": "Appeal",
    "object:assessment": "Assessment",
    "object:chat": "Chat",
    "object:chat_queue": "Chat queue",
    "object:citizen": "Citizen",
    "object:department": "Department",
    "object:indicator": "Indicator",
    "object:ivr_tree_version": "IVR version",
    "object:log": "Log",
    "object:message": "Message",
    "object:poll": "Poll",
    "object:prompt": "Prompt",
    "object:public_notice": "Public notice",
    "object:queue": "Queue",
    "object:role": "Role",
    "object:sample": "Sample",
    "object:saved_report": "Saved report",
    "object:stats": "Statistics",
    "object:template": "Template",
    "object:ticket": "Ticket",
    "object:user": "User",
    "object:web": "Web page",
}}


def parse_day(raw: str | None) -> dt.date | None:
    """A YYYY-MM-DD filter date; absent is None, anything else malformed is a 400."""
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw.strip()[:10])
    except ValueError:
        bad_request("Dates must look like 2026-03-01.")


def parse_moment(raw: str | None) -> tuple[dt.date, dt.time | None] | None:
    """A filter date with an optional local time (``2026-03-01``, ``2026-03-01T08:30``, ``2026-03-01 08:30``)."""
    day = parse_day(raw)
    if day is None:
        return None
    rest = raw.strip()[10:].lstrip("T ")
    if not rest:
        return day, None
    try:
        return day, dt.time.fromisoformat(rest[:8])
    except ValueError:
        bad_request("Dates must look like 2026-03-01.")


# Actions that record a refusal or a failure (the audit log's "level" filter).
REFUSAL_WORDS = ("failed", "denied", "refused", "throttled", "locked", "rejected")


def utc_bounds(day: dt.date, tz, at: dt.time | None = None) -> dt.datetime:
    """Local midnight (or ``at``) of ``day`` as naive UTC (how AuditLog.at is stored)."""
    local = dt.datetime.combine(day, at or dt.time(0, 0), tzinfo=tz)
    return local.astimezone(dt.timezone.utc).replace(tzinfo=None)


@bp.route("")
@require_roles(*AUDIT_ROLES)
def index():
    """Newest first; filter by operator number, action and local date range."""
    operator_no = request.args.get("operator_no", "").strip()[:32]
    action = request.args.get("action", "").strip()[:48]
    since, until = parse_moment(request.args.get("from")), parse_moment(request.args.get("to"))
    where = request.args.get("where", "").strip()[:64]
    refusals = request.args.get("refusals") == "1"
    page = parse_page(request.args.get("page"))
    tz = current_app.extensions["hotline"].services.clock.tz

    rows = AuditLog.select(AuditLog, User).join(User, JOIN.LEFT_OUTER, on=(AuditLog.user == User.id))
    if operator_no:
        rows = rows.where(AuditLog.operator_no == operator_no)
    if action:
        rows = rows.where(AuditLog.action == action)
    if since:
        rows = rows.where(AuditLog.at >= utc_bounds(since[0], tz, since[1]))
    if until:  # a date alone includes that whole day; a time is the end itself
        rows = rows.where(AuditLog.at < (utc_bounds(until[0], tz, until[1]) if until[1] is not None
                                         else utc_bounds(until[0] + dt.timedelta(days=1), tz)))
    if where:
        rows = rows.where((AuditLog.ip == where) | (AuditLog.obj_id == where) | (AuditLog.obj_type == where))
    if refusals:
        condition = None
        for word in REFUSAL_WORDS:
            term = AuditLog.action.contains(word)
            condition = term if condition is None else condition | term
        rows = rows.where(condition)
    total = rows.count()
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(page, pages)
    entries = list(rows.order_by(AuditLog.at.desc(), AuditLog.id.desc()).paginate(page, PAGE_SIZE))
    actions = [r.action for r in AuditLog.select(AuditLog.action).distinct().order_by(AuditLog.action)]
    filters = {"operator_no": operator_no or None, "action": action or None,
               "from": request.args.get("from", "").strip()[:19] or None,
               "to": request.args.get("to", "").strip()[:19] or None,
               "where": where or None, "refusals": "1" if refusals else None}
    return render_template("audit/index.html", entries=entries, total=total, page=page, pages=pages,
                           actions=actions, filters=filters)

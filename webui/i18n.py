"""Message catalogues for the web UI: Chinese (zh-CN) first, English second.

Message ids are the English text (gettext style), so English needs no catalogue of its own and an id reads
well in a template: ``{{ _("Ticket list") }}``. Chinese comes from ``MESSAGES["zh"]``. A blueprint module
may carry its own ``MESSAGES = {"zh": {...}}``; ``create_app`` merges them into the app's ``Catalogue``
from the explicit blueprint list, so no global registry is needed. Placeholders use ``%(name)s``.
"""
from __future__ import annotations

import logging
from typing import Iterable, Mapping

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
HTML_LANG = {"zh": "zh-CN", "en": "en"}

MESSAGES: dict[str, dict[str, str]] = {
    "zh": {
        # Frame
        "12345 Citizen Service Hotline": "12345 政务服务便民热线",
        "Hotline 12345": "12345 热线",
        "Home": "首页",
        "Log in": "登录",
        "Log out": "退出",
        "Language": "语言",
        "Operator number": "工号",
        "Password": "密码",
        "Signed in as %(name)s (%(operator_no)s)": "当前用户：%(name)s（%(operator_no)s）",
        "Roles": "角色",
        "Main navigation": "主导航",
        "Skip to content": "跳到正文",
        # Login
        "Please log in with your operator number and password.": "请输入工号和密码登录。",
        "Wrong operator number or password.": "工号或密码错误。",
        "Please enter your operator number and password.": "请输入工号和密码。",
        "Too many failed logins for this operator number from this address. Please try again in %(minutes)s "
        "minutes, or ask an administrator to unlock your account.":
            "该工号在本地址登录失败次数过多，请在 %(minutes)s 分钟后再试，或请管理员为您解锁。",
        "Too many failed logins for this account. It is locked for %(minutes)s minutes; an administrator can "
        "unlock it sooner.":
            "该账号登录失败次数过多，已锁定 %(minutes)s 分钟；管理员可提前解锁。",
        "Too many failed logins from this address. Please try again in %(minutes)s minutes, or ask an "
        "administrator to unlock your account.":
            "本地址登录失败次数过多，请在 %(minutes)s 分钟后再试，或请管理员为您解锁。",
        "This account is disabled. Please contact the administrator.": "该账号已停用，请联系管理员。",
        "You have been logged out.": "您已退出登录。",
        "Please log in to continue.": "请先登录。",
        "Welcome, %(name)s.": "欢迎，%(name)s。",
        "Change password": "修改密码",
        "Current password": "当前密码",
        "New password": "新密码",
        "New password again": "再次输入新密码",
        "Save": "保存",
        "The current password is wrong.": "当前密码不正确。",
        "The new password needs %(min)s to %(max)s characters.": "新密码长度须为 %(min)s 至 %(max)s 个字符。",
        "The two new passwords differ.": "两次输入的新密码不一致。",
        "The new password must differ from the current one.": "新密码不能与当前密码相同。",
        "Your password has been changed.": "密码已修改。",
        # Roles
        "role:agent": "话务员",
        "role:team_lead": "班长",
        "role:centre": "热线办",
        "role:centre_leader": "热线办领导",
        "role:dept": "成员单位",
        "role:dept_leader": "成员单位领导",
        "role:leader": "领导",
        "role:admin": "系统管理员",
        "role:entry": "录入员",
        # Desks and navigation
        "My desk": "我的工作台",
        "Agent desk": "话务员工作台",
        "Ticket list": "工单列表",
        "Hotline centre": "热线办",
        "Department workbench": "成员单位工作台",
        "Supervisor console": "班长监控台",
        "Statistics": "统计分析",
        "Administration": "系统管理",
        "Data entry": "录入台",
        "Your desks": "您的工作台",
        "This desk is not available yet.": "该工作台尚未开通。",
        "Your account has no role yet. Please contact the administrator.": "您的账号尚未分配角色，请联系管理员。",
        # Online chat transcripts on the ticket page and the ticket lists' link to them
        "Chat transcript": "在线交谈记录",
        "chat_sender:citizen": "市民",
        "chat_sender:agent": "话务员",
        "chat_sender:system": "系统",
        "Chat started": "开始时间",
        "Chat ended": "结束时间",
        "Chat topic": "咨询主题",
        "Answered by": "接待话务员",
        "No messages in this chat.": "本次交谈没有消息。",
        # Ticket list
        "Tickets": "工单",
        "Acceptance number": "受理号",
        "Type": "类型",
        "Channel": "渠道",
        "Status": "状态",
        "Phone": "来电号码",
        "Citizen": "诉求人",
        "Title": "标题",
        "Created": "登记时间",
        "No tickets yet.": "暂无工单。",
        "No tickets match.": "没有符合条件的工单。",
        "Search": "查询",
        "Acceptance number or phone": "受理号或电话号码",
        "Only mine": "只看我登记的",
        "All": "全部",
        "Show": "显示",
        "Previous": "上一页",
        "Next": "下一页",
        "Page %(page)s of %(pages)s, %(total)s tickets": "第 %(page)s / %(pages)s 页，共 %(total)s 件",
        "Pagination": "分页",
        "Anonymous": "匿名",
        "Overdue": "已超期",
        # Ticket types, channels and statuses are labelled from caseflow's tables (webui.app.code_label).
        # Errors
        "Bad request": "请求有误",
        "Forbidden": "无权访问",
        "You do not have permission to open this page.": "您没有访问此页面的权限。",
        "Not found": "页面不存在",
        "The page you asked for does not exist.": "您要访问的页面不存在。",
        "Method not allowed": "不支持该请求方式",
        "Request too large": "请求内容过大",
        "Server error": "服务器错误",
        "Something went wrong on our side. It has been logged.": "系统出现错误，已记录日志。",
        "Service unavailable": "服务暂时不可用",
        "The database is not answering at the moment. Please try again in a minute.":
            "数据库暂时无法响应，请稍后再试。",
        "The form has expired or was not sent from this site. Please reload the page and try again.":
            "表单已过期或并非来自本站，请刷新页面后重试。",
        "Page number must be a whole number of 1 or more.": "页码必须是不小于 1 的整数。",
        "Back to home": "返回首页",
        "The request contains characters that are not allowed.": "请求中含有不允许的字符。",
        "Choose a file first.": "请先选择文件。",
        # Messages (SMS and e-mail): the ticket page's panel, the centre's log, the templates page
        "Messages": "短信与邮件", "No messages yet.": "暂无短信或邮件。", "Message log": "消息日志",
        "Message templates": "消息模板", "Message channel": "渠道", "Message direction": "方向",
        "Message status": "状态", "Message kind": "类别", "Message text": "内容", "Phone or e-mail": "号码或邮箱",
        "Time": "时间", "From date": "起始日期", "To date": "截止日期", "Sent at": "发出", "Attempts": "尝试次数",
        "Retry": "重发", "No messages match.": "没有符合条件的消息。",
        "Page %(page)s of %(pages)s, %(total)s messages": "第 %(page)s / %(pages)s 页，共 %(total)s 条",
        "msg_channel:sms": "短信", "msg_channel:email": "电子邮件",
        "msg_direction:in": "来信", "msg_direction:out": "去信",
        "msg_status:queued": "排队中", "msg_status:sending": "发送中", "msg_status:sent": "已发出",
        "msg_status:delivered": "已送达", "msg_status:failed": "发送失败", "msg_status:received": "已接收",
        "msg_status:ignored": "已忽略",
        "msg_template:receipt": "受理回执", "msg_template:result": "办理结果", "msg_template:satisfaction": "满意度评价",
        "msg_template:thanks": "评价致谢", "msg_template:status": "进度查询答复", "msg_template:status_unknown": "查询无结果",
        "msg_template:optout": "退订确认", "msg_template:dispatch_alert": "派单提醒", "msg_template:overdue_alert": "超期提醒",
        "msg_template:due_soon_alert": "临期提醒", "msg_template:supervise_alert": "督办提醒",
        "msg_template:alarm": "值班告警", "msg_template:verify": "网站验证码", "msg_template:material": "资料发送",
        "Template": "模板", "Variables": "变量", "Changed": "已修改", "Edit": "编辑", "Template text": "模板文本",
        "Preview": "预览", "Reset to default": "恢复默认", "Default text": "默认文本",
        "Urgent: sent in quiet hours": "紧急：免打扰时段也发送",
        "%(chars)s characters, %(segments)s SMS parts": "%(chars)s 字，%(segments)s 条短信",
        "Texts of the SMS and e-mails the hotline sends. Variables are written {{ name }}; only the listed ones may be used.":
            "热线发出的短信和邮件的文本。变量写作 {{ name }}，只能使用列出的变量。",
        "E-mail the citizen": "给市民发邮件", "Send e-mail": "发送邮件",
        "E-mail is not configured": "未配置邮件服务器，邮件将在配置后发出",
        # The public website's SMS codes
        "SMS code": "短信验证码", "Send me a code": "获取验证码", "Mobile number": "手机号码",
        "A mobile number is confirmed by a code we send to it.": "填写手机号码的，请获取并输入短信验证码。",
        "Without a mobile number: type the characters in the picture.": "未填写手机号码的，请输入图片中的字符。",
        "A code was sent to %(phone)s by SMS. It is good for 10 minutes.": "验证码已发送至 %(phone)s，10 分钟内有效。",
        "Or by your mobile number": "或凭手机号码查询",
        "We send a code to the number you gave when you wrote in or called; your newest cases open here.":
            "我们向您反映问题时留下的手机号码发送验证码，验证后显示您最近的诉求。",
        "No cases with this number.": "该号码没有诉求记录。",
        # Alarms (ops.alarms): the banner of the team-lead console and the centre desk, the alarm list
        "Alarms": "告警", "All alarms": "全部告警", "Acknowledge": "确认", "Resolved": "已恢复", "times": "次",
        "Alarm": "告警", "Severity": "级别", "First seen": "首次发生", "Last seen": "最近发生", "Count": "次数",
        "Acknowledged": "已确认", "No alarms.": "没有告警。",
        "severity:critical": "严重", "severity:warning": "警告",
        "alarm:switch_down": "FreeSWITCH 断开", "alarm:switch_silent": "FreeSWITCH 无响应",
        "alarm:agent_stuck": "坐席状态卡住", "alarm:queue_waiting": "排队过长", "alarm:answer_rate": "15秒接通率偏低",
        "alarm:disk_low": "磁盘空间不足", "alarm:backup_failed": "备份失败", "alarm:chain_broken": "话单签封链异常",
    },
}


class Catalogue:
    """Translations for one app: the base messages plus those merged from blueprints."""

    def __init__(self, base: Mapping[str, Mapping[str, str]] | None = None):
        self.messages: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        # Each blueprint's own messages, looked up first on its pages: two areas may give the same English
        # id different Chinese ("From": 主叫 on a call list, 起始日期 on a date filter).
        self.scoped: dict[str, dict[str, dict[str, str]]] = {}
        self.merge(MESSAGES if base is None else base)

    def merge(self, extra: Mapping[str, Mapping[str, str]], source: str = "", scope: str | None = None) -> None:
        """Add messages (under ``scope`` too, when given); for other pages the later definition wins."""
        for lang, entries in extra.items():
            if lang not in self.messages:
                raise ValueError(f"unknown language {lang!r} in messages from {source or 'catalogue'}")
            table = self.messages[lang]
            for key, text in entries.items():
                if key in table and table[key] != text:
                    log.info("message %r given another text by %s", key, source or "catalogue")
                table[key] = text
            if scope is not None:
                self.scoped.setdefault(scope, {}).setdefault(lang, {}).update(entries)

    def gettext(self, lang: str, message: str, _scope: str | None = None, **values) -> str:
        """Translate ``message`` to ``lang`` and fill ``%(name)s`` placeholders.

        ``_scope`` (the current blueprint) picks that blueprint's own text first. An id of the form
        ``prefix:code`` with no translation shows the code itself, so an unknown status still reads sensibly.
        """
        text = None
        if _scope is not None:
            text = self.scoped.get(_scope, {}).get(lang, {}).get(message)
        if text is None:
            text = self.messages.get(lang, {}).get(message)
        if text is None:
            text = message.split(":", 1)[1] if _is_code_id(message) else message
        if values:
            try:
                return text % values
            except (KeyError, ValueError, TypeError):
                log.warning("bad placeholders for message %r in %s", message, lang)
                return text
        return text

    def missing(self, lang: str, ids: Iterable[str]) -> list[str]:
        """Ids with no translation in ``lang`` (tests keep the Chinese catalogue complete)."""
        table = self.messages.get(lang, {})
        return sorted({i for i in ids if i not in table})


def _is_code_id(message: str) -> bool:
    prefix, sep, code = message.partition(":")
    return bool(sep) and prefix.isidentifier() and bool(code) and " " not in message


def gettext(message: str, **values) -> str:
    """Translate for the current request's language (for flash messages and other text built in views)."""
    from flask import current_app

    return current_app.extensions["hotline"].gettext(message, **values)


def one_language(message: str, lang: str) -> str:
    """A domain error written "中文 / English" (the convention of acd, caseflow and recorder errors) in one
    language: the Chinese half for zh, the English half otherwise; a message without the pair as it is."""
    zh, sep, en = str(message).partition(" / ")
    if not sep:
        return str(message)
    return zh.strip() if lang == "zh" else en.strip()


def error_text(error) -> str:
    """A domain error (or any "中文 / English" message) in the current request's language, for a flash, a
    form's error line or a JSON answer."""
    from flask import g

    return one_language(str(error), g.get("lang") or DEFAULT_LANGUAGE)


def format_duration(seconds, lang: str) -> str:
    """Seconds as 1小时2分3秒 / 1 h 2 min 3 s (whole seconds; 0 as 0秒 / 0 s)."""
    total = int(round(float(seconds or 0)))
    hours, rest = divmod(max(total, 0), 3600)
    minutes, secs = divmod(rest, 60)
    units = (("小时", "分", "秒") if lang == "zh" else (" h", " min", " s"))
    parts = [f"{n}{u}" for n, u in zip((hours, minutes, secs), units) if n]
    return ("" if lang == "zh" else " ").join(parts) if parts else f"0{units[2]}"


def normalise_language(value: str | None) -> str | None:
    """Map 'zh-CN', 'zh_cn', 'en-US'... to a supported code; None if unsupported."""
    if not value:
        return None
    code = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return code if code in LANGUAGES else None


def best_language(accept_language: str | None) -> str:
    """Pick a language from an Accept-Language header; Chinese when nothing matches."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    choices = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = normalise_language(tag)
        if code:
            choices.append((-quality, index, code))
    return min(choices)[2] if choices else DEFAULT_LANGUAGE

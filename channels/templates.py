"""Message texts: defaults in code (zh-CN and English), replaced by an administrator's stored text, rendered
with Jinja2's sandbox (a template can read the values it is given and nothing else)."""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Iterable, Optional

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from channels.models import MessageTemplate, utcnow

MAX_BODY = 1000


@dataclass(frozen=True)
class Default:
    zh: str
    en: str
    urgent: bool  # may go out in quiet hours
    variables: tuple[str, ...]
    title: tuple[str, str]


DEFAULTS: dict[str, Default] = {
    "receipt": Default(
        "【12345热线】您的诉求已受理，受理号{{ number }}，查询码{{ pin }}。回复CX{{ number }}可查询办理进度。",
        "[12345] Your request is registered: number {{ number }}, query code {{ pin }}. "
        "Text CX{{ number }} for its status.",
        True, ("number", "pin", "title"), ("受理回执", "Acceptance receipt")),
    "result": Default(
        "【12345热线】您的诉求（受理号{{ number }}）已办理完毕：{{ reply }}",
        "[12345] Your request {{ number }} has been answered: {{ reply }}",
        False, ("number", "reply"), ("办理结果", "Result notice")),
    "satisfaction": Default(
        "【12345热线】请对受理号{{ number }}的办理结果评价：回复1满意 2基本满意 3不满意。",
        "[12345] Please rate the handling of {{ number }}: reply 1 satisfied, 2 basically satisfied, "
        "3 unsatisfied.",
        False, ("number",), ("满意度评价", "Satisfaction question")),
    "thanks": Default("【12345热线】感谢您的评价（受理号{{ number }}：{{ rating }}）。",
                      "[12345] Thank you for rating {{ number }}: {{ rating }}.",
                      True, ("number", "rating"), ("评价致谢", "Thanks for a rating")),
    "status": Default("【12345热线】受理号{{ number }}：{{ words }}。",
                      "[12345] Request {{ number }}: {{ words }}.",
                      True, ("number", "words"), ("进度查询答复", "Status answer")),
    "status_unknown": Default(
        "【12345热线】未查到该受理号，或本机号码不是登记的联系电话。请发送“CX+8位受理号”。",
        "[12345] No request found for that number with this phone. Text CX and the 8-digit number.",
        True, (), ("查询无结果", "Status not found")),
    "optout": Default("【12345热线】您已退订热线通知短信。拨打12345仍可随时反映诉求。",
                      "[12345] You will get no more notices. Call 12345 any time.",
                      True, (), ("退订确认", "Opt-out confirmation")),
    "dispatch_alert": Default("【12345热线】新工单{{ number }}已派至{{ department }}：{{ title }}，请及时签收办理。",
                              "[12345] New ticket {{ number }} for {{ department }}: {{ title }}.",
                              False, ("number", "department", "title"), ("派单提醒", "New dispatch alert")),
    "overdue_alert": Default("【12345热线】工单{{ number }}（{{ title }}）已超期，请尽快办理。",
                             "[12345] Ticket {{ number }} ({{ title }}) is overdue.",
                             False, ("number", "title"), ("超期提醒", "Overdue alert")),
    "due_soon_alert": Default("【12345热线】工单{{ number }}（{{ title }}）将于{{ deadline }}到期，请抓紧办理。",
                              "[12345] Ticket {{ number }} ({{ title }}) is due at {{ deadline }}.",
                              False, ("number", "title", "deadline"), ("临期提醒", "Due-soon alert")),
    "supervise_alert": Default("【12345热线】工单{{ number }}（{{ title }}）已被督办，请优先办理、按时答复。",
                               "[12345] Ticket {{ number }} ({{ title }}) is under supervision: handle it first.",
                               False, ("number", "title"), ("督办提醒", "Supervision alert")),
    "alarm": Default("【12345热线告警】{{ kind }}：{{ text }}", "[12345 alarm] {{ kind }}: {{ text }}",
                     True, ("kind", "text"), ("值班告警", "Duty alarm")),
    "verify": Default("【12345热线】您的验证码{{ code }}，{{ minutes }}分钟内有效，请勿告诉他人。",
                      "[12345] Your code is {{ code }}, valid for {{ minutes }} minutes. Do not share it.",
                      True, ("code", "minutes"), ("网站验证码", "Website verification code")),
    "material": Default("【12345热线】您索取的“{{ topic }}”资料：{{ text }}",
                        "[12345] The material you asked for ({{ topic }}): {{ text }}",
                        False, ("topic", "text"), ("资料发送", "Requested material")),
}

_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined)


class TemplateInputError(ValueError):
    """A template that does not compile or render; the message says where."""


@functools.lru_cache(maxsize=256)
def _compiled(source: str):
    """``source`` compiled once: compiling costs far more than rendering (a burst of receipts compiled the
    same text for every message). A text that does not compile raises and is not kept."""
    return _ENV.from_string(source)


def render_text(source: str, values: dict) -> str:
    """Render ``source`` in the sandbox; errors become TemplateInputError."""
    try:
        return _compiled(source).render(**values).strip()
    except TemplateError as error:
        raise TemplateInputError(f"模板错误：{error} / template error: {error}") from None


def stored(key: str, lang: str) -> Optional[MessageTemplate]:
    return MessageTemplate.get_or_none((MessageTemplate.key == key) & (MessageTemplate.lang == lang))


def stored_text(key: str, lang: str) -> Optional[str]:
    """The administrator's text for ``key``/``lang``, None when the default is in force."""
    row = stored(key, lang)
    return row.body if row is not None else None


def source(key: str, lang: str = "zh") -> str:
    """The text in force: the administrator's, else the default."""
    if key not in DEFAULTS:
        raise TemplateInputError(f"unknown template {key!r}")
    text = stored_text(key, lang)
    return text if text is not None else _default(key, lang)


def _default(key: str, lang: str) -> str:
    default = DEFAULTS[key]
    return default.en if lang == "en" else default.zh


LANGS = ("zh", "en")  # the languages a text is kept in


class Texts:
    """The texts in force, each read from the database once: a round that queues many messages (a burst of
    receipts) asks once per key and language, not once per message. Lives for one round, so an
    administrator's edit applies from the next."""

    def __init__(self, known: Optional[dict[tuple[str, str], Optional[str]]] = None):
        """``known``: texts already read with something else ((key, lang) -> the stored text, None for none)."""
        self._read: dict[tuple[str, str], str] = {
            (key, lang): text if text is not None else _default(key, lang) for (key, lang), text in (known or {}).items()}

    def source(self, key: str, lang: str = "zh") -> str:
        if (key, lang) not in self._read:
            self._read[key, lang] = source(key, lang)
        return self._read[key, lang]


def read(keys: Iterable[str]) -> Texts:
    """The texts in force for ``keys`` in every language, read now in one statement, for work that must not read
    them later (an inbound message's, before its write transaction). Read anew for each message: an edit applies
    to the next one."""
    keys = tuple(keys)
    rows = MessageTemplate.select(MessageTemplate.key, MessageTemplate.lang, MessageTemplate.body).where(
        MessageTemplate.key.in_(keys)).tuples()
    stored = {(key, lang): body for key, lang, body in rows}
    return Texts(known={(key, lang): stored.get((key, lang)) for key in keys for lang in LANGS})


def render(key: str, values: dict, lang: str = "zh", texts: Optional[Texts] = None) -> str:
    """The message text for ``key`` with ``values`` (the texts in force read through ``texts`` if given)."""
    return render_text(texts.source(key, lang) if texts is not None else source(key, lang), values)


def sample_values(key: str) -> dict:
    """Values to try a template with before saving it."""
    samples = {"number": "12345678", "pin": "123456", "title": "路灯不亮", "reply": "已修复。",
               "rating": "满意", "words": "正在办理", "department": "市政局", "topic": "社保", "text": "……",
               "code": "123456", "minutes": "10", "deadline": "2026-03-05 17:30", "kind": "数据库不可用"}
    return {name: samples.get(name, name) for name in DEFAULTS[key].variables}


def check(key: str, lang: str, body: str) -> str:
    """An administrator's text made ready to store: a known key and language, 1-MAX_BODY characters, Jinja2
    that compiles in the sandbox, names only the key's variables (anything else is refused by name, so a
    typo cannot reach a citizen as an empty gap) and renders with sample values. Returns the cleaned text."""
    if key not in DEFAULTS:
        raise TemplateInputError(f"未知模板 / unknown template {key!r}")
    if lang not in LANGS:
        raise TemplateInputError(f"未知语言 / unknown language {lang!r}")
    body = str(body or "").replace("\r\n", "\n").strip()
    if not body or len(body) > MAX_BODY or "\x00" in body:
        raise TemplateInputError(f"模板不能为空且不超过{MAX_BODY}字 / a template is 1-{MAX_BODY} characters")
    try:
        names = meta.find_undeclared_variables(_ENV.parse(body))
    except TemplateError as error:
        raise TemplateInputError(f"模板错误：{error} / template error: {error}") from None
    unknown = sorted(names - set(DEFAULTS[key].variables))
    if unknown:
        allowed = ", ".join(DEFAULTS[key].variables) or "-"
        raise TemplateInputError(f"未知变量：{', '.join(unknown)}（可用：{allowed}） / "
                                 f"unknown variables: {', '.join(unknown)} (allowed: {allowed})")
    render_text(body, sample_values(key))
    return body


def preview(key: str, lang: str, body: str) -> dict:
    """``body`` checked and rendered with sample values: {text, chars, segments} (SMS parts)."""
    from channels import sms

    text = render_text(check(key, lang, body), sample_values(key))
    return {"text": text, "chars": len(text), "segments": sms.segments(text)}


def save(key: str, lang: str, body: str, actor_label: str = "") -> MessageTemplate:
    """Store an administrator's text after ``check``."""
    body = check(key, lang, body)
    row = stored(key, lang)
    if row is None:
        row = MessageTemplate(key=key, lang=lang)
    row.body, row.updated_at, row.updated_by = body, utcnow(), actor_label[:32]
    row.save()
    return row


def reset(key: str, lang: str) -> None:
    """Back to the default text."""
    MessageTemplate.delete().where((MessageTemplate.key == key) & (MessageTemplate.lang == lang)).execute()


def now_text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")

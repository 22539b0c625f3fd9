"""The public 12345 website at the product's root (issue 11): write in (and 市长信箱), follow a case with the
acceptance number and query code, add information, rate the answer, read published cases and the monthly
figures. No login; its own templates, CSS and strict Content-Security-Policy (no inline script or style).

Views parse forms, check the picture CAPTCHA and count failed look-ups (from the audit log, like failed
logins); the cases themselves are caseflow.portal's. Every submission, look-up, addition and rating is
audited with the address.
Long because: the whole public site is one blueprint with what only it uses (catalogue, CAPTCHA, SMS codes).
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import secrets
import threading
import time

from flask import (Blueprint, abort, current_app, g, make_response, redirect, render_template, request,
                   session, url_for)
from markupsafe import Markup, escape

from caseflow import pins, portal, services
from caseflow.privacy import mask_phone
from caseflow.search import SearchNotReady
from channels import sms, verify
from core import secret_codes
from caseflow import workflow as wf
from caseflow.models import Ticket
from webui import picture_codes, security
from webui.i18n import error_text, normalise_language
from webui.page_cache import cached_page
from webui.security import ThrottlePolicy, audit, client_ip, public

log = logging.getLogger(__name__)

bp = Blueprint("portal", __name__)

# Stricter than the staff pages' policy: no inline style either, nothing from anywhere else.
PORTAL_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
              "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# A whole request may carry the files and the form, no more: larger bodies get 413 before they are read.
MAX_BODY = portal.MAX_FILES * portal.MAX_FILE_SIZE + 256 * 1024
CAPTCHA_KEY = "portal_captcha"
CAPTCHA_ALPHABET = "ABCDEFHJKMNPRSTUVWXY3456789"
CAPTCHA_LENGTH = 5
CAPTCHA_TTL = 600  # seconds a picture stays good
FOLLOW_KEY = "portal_cases"
FOLLOW_TTL = 1800  # seconds a successful look-up keeps the case open in this browser
FOLLOW_MAX = 5
LOOKUP_WINDOW = dt.timedelta(minutes=30)
CAPTCHA_WINDOW = dt.timedelta(hours=1)

MESSAGES = {"zh": {
    "Website": "网站",  # the hidden honeypot field's label
    "Write to us": "我要写信", "Mayor mailbox": "市长信箱", "Follow my case": "办理查询",
    "Published cases": "公开信件", "Figures": "数据公开", "Staff login": "工作人员登录",
    "Write to 12345 and follow your case online. Urgent danger? Call 110, 119 or 120.":
        "网上写信、查询办理进度。遇紧急危险请拨打 110、119、120。",
    "The mayor mailbox goes to the leaders of the hotline centre.": "市长信箱来信由热线办领导阅处。",
    "Kind of request": "诉求类型", "Category": "诉求分类", "Region": "所属区域", "Address": "事发地址",
    "Content": "诉求内容", "Attachments": "附件", "Your name": "姓名", "Phone": "电话号码",
    "E-mail": "电子邮箱", "Anonymous (the name is not recorded)": "匿名（不记录姓名）",
    "How do you want the reply?": "答复方式", "Consent to publication": "同意公开",
    "The centre may publish this request and its answer on this website, without your name, phone, "
    "address or files.": "热线办可将本诉求及答复在本网站公开，不含您的姓名、电话、地址和附件。",
    "Picture code": "验证码", "Type the characters in the picture.": "请输入图片中的字符。",
    "New picture": "换一张", "Send": "提交", "Choose…": "请选择…", "Optional": "选填",
    "at most %(n)s characters": "最多 %(n)s 字", "characters": "字",
    "Images (PNG, JPEG, GIF) or PDF, at most %(n)s files of %(mb)s MB each.":
        "图片（PNG、JPEG、GIF）或 PDF，最多 %(n)s 个，每个不超过 %(mb)s MB。",
    "Your request has been received.": "您的诉求已受理。",
    "Query code": "查询码",
    "Write both down now: the query code is shown only this once.": "请立即记下受理号和查询码：查询码只显示这一次。",
    "Follow your case with these on this website, or call 12345.": "可凭二者在本网站查询办理进度，或拨打 12345。",
    "Enter the acceptance number and query code you were given.": "请输入受理时获得的受理号和查询码。",
    "Look up": "查询", "Wrong acceptance number or query code.": "受理号或查询码不正确。",
    "Too many wrong attempts. Please try again in %(minutes)s minutes.": "错误次数过多，请在 %(minutes)s 分钟后再试。",
    "The look-up is temporarily unavailable. Please try again later or call 12345.":
        "查询暂时无法使用，请稍后再试或拨打 12345。",
    "Status": "办理状态", "Progress": "办理过程", "Answer": "答复内容", "Add information": "补充材料",
    "Your request": "诉求内容", "Rate the answer": "评价答复", "Comment": "评价意见",
    "Thank you, your rating has been recorded.": "感谢您的评价，已记录。",
    "Your information has been added to the case.": "补充材料已提交。",
    "You rated": "您的评价", "Search": "检索", "Month": "月份",
    "Received": "受理时间", "Closed": "办结时间", "Department": "承办单位", "No published cases match.":
        "没有符合条件的公开信件。",
    "Page %(page)s of %(pages)s": "第 %(page)s / %(pages)s 页",
    "Monthly figures": "月度数据", "Cases received": "受理量", "Cases closed": "办结量",
    "On-time rate": "按时办结率", "Satisfaction rate": "满意率",
    "Latest published cases": "最新公开信件", "More": "更多",
    "Back to the home page": "返回首页",
    "The upload is too large: at most %(mb)s MB in all.": "上传内容过大：合计不超过 %(mb)s MB。",
    "The form has expired. Please reload the page and try again.": "表单已过期，请刷新页面后重试。",
    "The picture code is wrong or has expired. Please type the new one.": "验证码错误或已过期，请输入新的验证码。",
    "Too many wrong picture codes from this address. Please try again later.": "验证码错误次数过多，请稍后再试。",
    "Please choose the files again.": "请重新选择附件。", "Too many requests": "请求过于频繁", "Figures of %(month)s": "%(month)s 数据",
    "Published %(n)s": "共 %(n)s 件", "More than %(n)s published: choose a filter or search to narrow them.":
        "超过 %(n)s 件，请选择条件或输入检索词缩小范围。",
    "Open cases stay private; only closed cases the centre approved and the writer agreed to are shown, without "
    "personal details.":
        "只公开已办结、经热线办审核且来信人同意公开的信件，且不含个人信息。",
    "Received: cases written in during the month; closed: cases closed in it; on-time rate: cases due in it; satisfaction: ratings given in it.":
        "受理量：当月受理；办结量：当月办结；按时办结率：当月到期的诉求；满意率：当月的评价。",
    "Close this case in this browser": "在本浏览器中退出查询", "Rating": "满意度",
    "You added information": "您补充了材料", "You rated the answer": "您已评价",
}}


# ------------------------------------------------------------------------------------------ frame
@bp.url_value_preprocessor
def _limit_body(_endpoint, _values):
    """Runs before the app's hooks parse the form: the portal's smaller body limit applies from the start."""
    request.max_content_length = MAX_BODY


@bp.before_request
def _language():
    """?lang=en (or zh) on any public page switches the language for this browser."""
    code = normalise_language(request.args.get("lang"))
    if code:
        session["lang"] = code
        g.lang = code


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = PORTAL_CSP
    response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.errorhandler(413)
def _too_large(_error):
    audit("portal_refused", "web", "", f"request too large ({request.content_length} B)", user=None)
    return _page_error(413, "Request too large", "The upload is too large: at most %(mb)s MB in all.",
                       mb=MAX_BODY // (1024 * 1024))


@bp.errorhandler(404)
def _not_found(_error):
    return _page_error(404, "Not found", "The page you asked for does not exist.")


def _page_error(code: int, title: str, message: str, **values):
    return render_template("portal/error.html", code=code, title=title, message=message, values=values), code


def _t(message: str, **values) -> str:
    return current_app.extensions["hotline"].gettext(message, **values)


def _clock():
    return current_app.extensions["hotline"].services.clock


def _root():
    return current_app.extensions["hotline"].config.attachments_dir


def _setting(name: str):
    """A HOTLINE_PORTAL_* setting (core.config: environment or instance file; create_app puts it in
    app.config)."""
    return current_app.config[name]


# ------------------------------------------------------------------------------- SMS codes
def _sms_settings():
    from webui.blueprints.sms_gateway import settings

    return settings()


def _codes_on() -> bool:
    """SMS codes confirm phone numbers when the SMS channel has a gateway (HOTLINE_PORTAL_SMS_CODES=0 turns
    them off); otherwise the picture CAPTCHA alone guards the forms."""
    return bool(_setting("HOTLINE_PORTAL_SMS_CODES")) and verify.enabled(_sms_settings())


def _code_key() -> bytes:
    """The product's secret key (HOTLINE_SECRET_KEY): the key of the query codes', SMS codes' and CAPTCHA's
    hashes (core.secret_codes). Not of a ticket's PIN: caseflow.portal.find_case checks that under the
    process's installed keys (caseflow.pins), as the phone does."""
    return current_app.config["SECRET_KEY"].encode()


def _previous_code_keys() -> tuple[bytes, ...]:
    """The keys HOTLINE_SECRET_KEY was rotated from (HOTLINE_SECRET_KEY_PREVIOUS, comma-separated): a query
    code hashed under one still opens its case, and is hashed again under the current key
    (caseflow.portal.find_case). The short-lived SMS codes and CAPTCHAs need none."""
    return secret_codes.previous_keys(current_app.extensions["hotline"].config.extra)


def _send_code(purpose: str, phone: str) -> tuple[str, str, int]:
    """Send a code to ``phone``: (notice, error, status) for the page."""
    limits = verify.SendLimits(gap=dt.timedelta(seconds=_setting("HOTLINE_PORTAL_CODE_GAP")),
                               per_phone=_setting("HOTLINE_PORTAL_CODES_PER_PHONE"),
                               per_address=_setting("HOTLINE_PORTAL_CODES_PER_IP"))
    try:
        row = verify.request_code(phone, purpose, key=_code_key(), ip=client_ip(), sms_settings=_sms_settings(),
                                  limits=limits, clock=_clock(), lang=g.get("lang", "zh"))
    except verify.VerifyError as error:
        audit("portal_code_refused", "web", "", f"{purpose}: {error}"[:500], user=None)
        return "", error_text(error), error.status
    audit("portal_code_sent", "web", "", f"{purpose} {mask_phone(row.phone)} code {row.id}", user=None)
    return _t("A code was sent to %(phone)s by SMS. It is good for 10 minutes.", phone=mask_phone(row.phone)), "", 200


# ------------------------------------------------------------------------------------------ CAPTCHA
def _captcha_mac(captcha_id: str, answer: str) -> str:
    return secret_codes.keyed_digest(_code_key(), "captcha", captcha_id, answer.upper())


@bp.route("/captcha.png")
@public
def captcha():
    """A new picture code for this browser (the session keeps only a keyed MAC of the answer, never it)."""
    answer = "".join(secrets.choice(CAPTCHA_ALPHABET) for _ in range(CAPTCHA_LENGTH))
    captcha_id = secrets.token_urlsafe(16)
    session[CAPTCHA_KEY] = {"id": captcha_id, "mac": _captcha_mac(captcha_id, answer), "at": int(time.time())}
    response = make_response(picture_codes.picture(answer))
    response.mimetype = "image/png"
    response.headers["Cache-Control"] = "no-store"
    return response


def warm_up(app) -> None:
    """What the portal's first visitors would otherwise pay in each serving process, done before it serves: its
    templates compiled and the picture code's drawing imported with its fonts loaded (bench/portal.py --trace:
    the first write forms, pictures and answers of a worker held its hub 20-37 ms each, every other request
    waiting behind them)."""
    for name in app.jinja_env.list_templates(filter_func=lambda name: name.startswith("portal/")):
        app.jinja_env.get_template(name)
    picture_codes.picture("A" * CAPTCHA_LENGTH)


def _check_captcha(answer: str) -> str | None:
    """The solved picture's id, or None. A picture is good for one try: after any answer it is gone."""
    held = session.pop(CAPTCHA_KEY, None)
    if not isinstance(held, dict) or not answer or len(answer) > 16:
        return None
    if int(time.time()) - int(held.get("at", 0)) > CAPTCHA_TTL:
        return None
    if not secret_codes.same(str(held.get("mac", "")), _captcha_mac(str(held.get("id", "")), answer.strip())):
        return None
    return str(held["id"])


# ----------------------------------------------------------------------------------------- pages
def _choices(form: dict) -> dict:
    """The write form's choices; its category and region options are the list filters' kept HTML (the same
    trees, rendered once per language: about 100 options a write form's rendering otherwise)."""
    options = _filter_options({"category": form.get("category", ""), "region": form.get("region", "")})
    return {"types": portal.TYPES, "category_options": options["category"], "region_options": options["region"],
            "reply_choices": portal.REPLY_CHOICES, "max_content": portal.MAX_CONTENT, **_file_limits()}


def _file_limits() -> dict:
    """What the case page's 补充材料 form says of files (it needs no category or region: two queries less)."""
    return {"max_files": portal.MAX_FILES, "max_file_mb": portal.MAX_FILE_SIZE // (1024 * 1024)}


# The monthly figures read a month of tickets (about 40,000 of a million): the home page and /figures reuse
# them for this many seconds, computed by one request at a time, instead of every visitor reading the month
# again (bench/portal.py: p99 0.6-1 s at 50 clients without this).
FIGURES_KEPT_SECONDS = 300


class _KeptFigures:
    """The figures counted per month in one app, with a lock per month that lets one request count them at a
    time (made at the first request, so under run.py's monkey-patching they are gevent's)."""

    def __init__(self):
        self.lock = threading.Lock()  # guards ``locks``
        self.locks: dict[str, threading.Lock] = {}
        self.months: dict[str, tuple[float, dict]] = {}

    def lock_of(self, month: str) -> threading.Lock:
        with self.lock:
            return self.locks.setdefault(month, threading.Lock())

    def fresh(self, month: str):
        held = self.months.get(month)
        return held[1] if held is not None and time.monotonic() - held[0] < FIGURES_KEPT_SECONDS else None


def _public_figures(month: str) -> dict:
    """The monthly figures of ``month`` (_month_figures), kept FIGURES_KEPT_SECONDS in this app."""
    kept = current_app.extensions.get("portal_figures")
    if kept is None:
        kept = current_app.extensions.setdefault("portal_figures", _KeptFigures())
    figures = kept.fresh(month)
    if figures is None:
        with kept.lock_of(month):  # the visitors who asked meanwhile take what the first one counted
            figures = kept.fresh(month)
            if figures is None:
                figures = _month_figures(month)
                kept.months[month] = (time.monotonic(), figures)
    return figures


def _month_figures(month: str) -> dict:
    """Received, closed, on-time rate and satisfaction rate of a local month: the leaders' statistics
    queries for the whole city (stats.queries / stats.figures), so the public sees the same numbers."""
    from stats.figures import figure_values
    from stats.queries import Scope, ticket_counts

    tz = _clock().tz
    start, end = portal.month_bounds(month, tz)
    now = services.to_db(_clock().now())
    end = min(end, now + dt.timedelta(seconds=1))
    # The month's tickets created in one count, in place of the statistics' hour-by-channel series (which the
    # public page does not show): the same number, without a row-by-row hour function over the month.
    created = [(start, "all", Ticket.select().where((Ticket.created_at >= start) & (Ticket.created_at < end)).count())]
    values = figure_values(None, ticket_counts(Scope(), start, end, now, channel_hours=created))
    return {"received": values["tickets_created"], "closed": values["tickets_closed"],
            "on_time_rate": values["on_time_rate"], "satisfaction_rate": values["satisfaction_rate"]}


# The category paths, region and department names the published pages show (three small tables, 4 of a
# published case page's 6 queries) are read at most once a minute per app: a renamed category shows within it.
NAMES_KEPT_SECONDS = 60


def _kept(key: str, build):
    """``build()`` kept in this app NAMES_KEPT_SECONDS at most, and read again at once after trees_changed
    here or a page cache emptied (page_cache.invalidate, from any process through the bus)."""
    cache = current_app.extensions.get("page_cache")
    generation = cache.generation if cache is not None else 0
    held = current_app.extensions.get(key)
    if held is None or held[1] != generation or time.monotonic() - held[0] >= NAMES_KEPT_SECONDS:
        held = current_app.extensions[key] = (time.monotonic(), generation, build())
    return held[2]


def _names() -> portal.Names:
    return _kept("portal_names", portal.Names)


def _pickers() -> portal.Pickers:
    """The category and region trees of the forms and filters (caseflow.portal.Pickers), kept like the names."""
    return _kept("portal_pickers", portal.Pickers)


def _filter_options(criteria: dict) -> dict[str, Markup]:
    """The published list's filter options (kind, category, region, month) as HTML, the chosen ones selected:
    rendered once per language and kept like the trees (_kept), not the ~100 options of the trees by the
    template on every request (a list request's rendering was 1.9-2.3 ms of CPU)."""
    kept = _kept(f"portal_filter_options:{g.lang}", _render_filter_options)
    return {name: _chosen(options, criteria.get(name, "")) for name, options in kept.items()}


def _render_filter_options() -> dict[str, Markup]:
    pickers = _pickers()

    def options(pairs) -> Markup:
        return Markup("".join(f'<option value="{escape(value)}">{escape(label)}</option>' for value, label in pairs))

    return {"type": options((t, _label("type", t)) for t in portal.TYPES),
            "category": options((c.id, "　" * depth + c.name) for c, depth in pickers.category_tree),
            "region": options((r.id, "　" * depth + r.name) for r, depth in pickers.region_tree),
            "month": options((m, m) for m in _months(24))}


def _chosen(options: Markup, value: str) -> Markup:
    """``options`` with the one whose value is ``value`` selected (none selected when no option has it)."""
    if not value:
        return options
    plain = f'<option value="{escape(value)}">'
    return Markup(str(options).replace(plain, plain[:-1] + " selected>", 1))  # Markup's own replace escapes


def trees_changed() -> None:
    """The categories or regions changed (the administrator's page): this app and, through the page cache's
    announcement, every process read the trees, names and filter options again at their next request."""
    from webui import page_cache

    for key in [key for key in current_app.extensions
                if key in ("portal_names", "portal_pickers") or str(key).startswith("portal_filter_options:")]:
        current_app.extensions.pop(key)
    page_cache.invalidate()


def _months(count: int = 12) -> list[str]:
    today = _clock().now().date()
    out, year, month = [], today.year, today.month
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out


@bp.route("/")
@cached_page
@public
def index():
    """The home page: what the site offers, the latest published cases and last month's figures."""
    months = _months(2)
    return render_template("portal/index.html",
                           latest=portal.public_views(portal.latest_published(5), g.lang, _names()),
                           figures=_public_figures(months[1]), month=months[1])


@bp.route("/write", methods=["GET", "POST"])
@public
def write():
    """Write in (网上写信)."""
    return _write_page("web")


@bp.route("/mailbox", methods=["GET", "POST"])
@public
def mailbox():
    """The mayor's mailbox (市长信箱): the same form, filed on the mailbox channel the centre leaders watch."""
    return _write_page("mailbox")


def _form_values() -> dict:
    form = request.form
    return {key: form.get(key, "") for key in ("type", "content", "category", "region", "address", "name",
                                                "phone", "email", "reply_by")} | {
        "anonymous": form.get("anonymous") == "1", "consent": form.get("consent") == "1"}


def _write_page(box: str):
    codes = _codes_on()
    if request.method == "GET":
        return render_template("portal/write.html", box=box, form={"reply_by": "phone"}, error=None,
                               error_field="", codes=codes, **_choices({}))
    values = _form_values()
    ip = client_ip()
    now = security.now_utc()

    def again(message: str, field: str = "", status: int = 400, files_lost: bool = False, notice: str = ""):
        if message:
            audit("portal_refused", "web", "", f"{box}: {field or 'form'}: {message}"[:500], user=None)
        return render_template("portal/write.html", box=box, form=values, error=message or None,
                               error_field=field, notice=notice, codes=codes,
                               files_lost=files_lost and bool(request.files.getlist("files")),
                               **_choices(values)), status

    if request.form.get("website"):  # the honeypot: people never see this field, robots fill it
        return again(_t("The form has expired. Please reload the page and try again."), "", 400)
    files = [f for f in request.files.getlist("files") if f and f.filename]
    if codes and request.form.get("action") == "send_code":
        notice, error, status = _send_code("write", values["phone"])
        return again(error, "phone" if error else "", status, True, notice)
    verified = None
    if codes and values["phone"] and sms.is_mobile(values["phone"]):
        # A mobile number is confirmed by the SMS code instead of the picture (issue 11 item 1); the code's
        # row id takes the picture's place, so one code is good for one submission.
        try:
            verified = verify.confirm(values["phone"], "write", request.form.get("sms_code", ""), key=_code_key(),
                                      clock=_clock(), consume=False)
        except verify.VerifyError as error:
            audit("portal_code_failed", "web", "", f"{box} {mask_phone(values['phone'])}", user=None)
            return again(error_text(error), "sms_code", error.status, True)
        captcha_id = f"sms:{verified.id}"
    else:
        if len(security.audit_failures("portal_captcha_failed", now - CAPTCHA_WINDOW, ip=ip)) >= _setting(
                "HOTLINE_PORTAL_CAPTCHA_FAILURES_PER_IP"):
            return again(_t("Too many wrong picture codes from this address. Please try again later."), "captcha",
                         429, True)
        captcha_id = _check_captcha(request.form.get("captcha", ""))
        if captcha_id is None:
            audit("portal_captcha_failed", "web", "", box, user=None)
            return again(_t("The picture code is wrong or has expired. Please type the new one."), "captcha",
                         400, True)
    sub = portal.Submission(box=box, files=[(f.filename, f.stream) for f in files], **values)
    limits = portal.Limits(per_address=_setting("HOTLINE_PORTAL_PER_ADDRESS"),
                           per_phone=_setting("HOTLINE_PORTAL_PER_PHONE"))

    def audited(ticket):  # written with the ticket: its only commit (a refusal is audited by again())
        return security.audit_row("portal_submit", "ticket", ticket.number,
                                  f"{box} {ticket.type} {len(files)} file(s) consent={int(values['consent'])}",
                                  user=None)

    try:
        ticket, code = portal.submit(sub, ip=ip, captcha_id=captcha_id, root=_root(), key=_code_key(),
                                     clock=_clock(), limits=limits, pickers=_pickers(), recorded=audited)
    except portal.PortalError as error:
        return again(error_text(error), error.field, error.status, True)
    if verified is not None:
        verify.consume(verified.id, _clock())
    return render_template("portal/done.html", ticket=ticket, code=code, box=box)


# ---------------------------------------------------------------------------------------- follow
def _followed() -> dict:
    held = session.get(FOLLOW_KEY)
    now = int(time.time())
    return {n: until for n, until in held.items() if until > now} if isinstance(held, dict) else {}


def _lookup_wait(number: str, ip: str, now: dt.datetime) -> dt.timedelta | None:
    """How long this address, or this number, must wait after too many wrong look-ups (None: no wait). The
    failures of both in one statement (two round trips before)."""
    by_ip, by_number = security.failures_of_address_and_object("portal_lookup_failed", now - LOOKUP_WINDOW, ip,
                                                               "ticket", number)
    waits = [security.retry_after(by_ip, now, ThrottlePolicy(_setting("HOTLINE_PORTAL_LOOKUP_LIMIT_PER_IP"),
                                                             LOOKUP_WINDOW))]
    if number:
        waits.append(security.retry_after(by_number, now,
                                          ThrottlePolicy(_setting("HOTLINE_PORTAL_LOOKUP_LIMIT"), LOOKUP_WINDOW)))
    waits = [w for w in waits if w is not None]
    return max(waits) if waits else None


# A look-up in a process without a PIN key is logged at ERROR once per process, then at DEBUG: /follow is public,
# an ERROR a look-up would flood the log with one misconfiguration (next() on a count is atomic: one ERROR).
_no_pin_key_seen = itertools.count()


def _log_no_pin_key(error: Exception) -> None:
    first = next(_no_pin_key_seen) == 0
    log.log(logging.ERROR if first else logging.DEBUG,
            "portal: /follow cannot check query PINs, it answers 503 (%s): set HOTLINE_SECRET_KEY (32 characters or "
            "more, the same in every process) and start the web process through webui.app.create_app or "
            "hotline.product, which install it (caseflow.pins.install)%s", error,
            "; logged once, further look-ups at DEBUG" if first else "")


@bp.route("/follow", methods=["GET", "POST"])
@public
def follow():
    """办理查询: acceptance number + query code. Ten wrong codes for a number (or from an address) within
    half an hour lock it until the oldest ages out."""
    if request.method == "GET":
        return render_template("portal/follow.html", number="", error=None, codes=_codes_on())
    raw = request.form.get("number", "")
    ip, now = client_ip(), security.now_utc()

    def again(message: str, status: int):
        return render_template("portal/follow.html", number=raw[:12], error=message, codes=_codes_on()), status

    try:
        number = portal.parse_number(raw)
    except portal.PortalError as error:
        audit("portal_lookup_failed", "web", "", "malformed number", user=None)
        wait = _lookup_wait("", ip, now)
        if wait is not None:
            return again(_t("Too many wrong attempts. Please try again in %(minutes)s minutes.",
                            minutes=security.minutes_ceiling(wait)), 429)
        return again(error_text(error), 400)
    wait = _lookup_wait(number, ip, now)
    if wait is not None:
        audit("portal_lookup_throttled", "ticket", number, f"retry after {int(wait.total_seconds())}s", user=None)
        return again(_t("Too many wrong attempts. Please try again in %(minutes)s minutes.",
                        minutes=security.minutes_ceiling(wait)), 429)
    try:
        ticket = portal.find_case(number, request.form.get("code", ""), _code_key(), _previous_code_keys())
    except pins.PinKeyError as error:
        # The process's start installed no PIN key (caseflow.pins.install): the server's configuration, not the
        # citizen's code, so neither a wrong-code answer nor a count towards the number's lock.
        _log_no_pin_key(error)
        audit("portal_lookup_unavailable", "ticket", number, "no PIN key installed", user=None)
        return again(_t("The look-up is temporarily unavailable. Please try again later or call 12345."), 503)
    if ticket is None:
        audit("portal_lookup_failed", "ticket", number, "wrong number or code", user=None)
        return again(_t("Wrong acceptance number or query code."), 404)
    audit("portal_lookup", "ticket", number, "", user=None)
    held = _followed()
    held[number] = int(time.time()) + FOLLOW_TTL
    session[FOLLOW_KEY] = dict(sorted(held.items(), key=lambda kv: kv[1])[-FOLLOW_MAX:])
    return redirect(url_for("portal.case", number=number), code=303)


@bp.route("/follow/phone", methods=["POST"])
@public
def follow_phone():
    """办理查询 by phone (issue 11 item 2): a code sent to the number, then the number's newest cases open in
    this browser like a case looked up with its query code. Only while SMS codes are on."""
    if not _codes_on():
        abort(404)
    phone = request.form.get("phone", "")[:32]

    def page(status: int = 200, **values):
        return render_template("portal/follow.html", number="", error=None, codes=True, phone=phone,
                               **values), status

    if request.form.get("action") == "send_code":
        notice, error, status = _send_code("follow", phone)
        return page(status, phone_notice=notice, phone_error=error)
    try:
        row = verify.confirm(phone, "follow", request.form.get("sms_code", ""), key=_code_key(), clock=_clock())
    except verify.VerifyError as error:
        audit("portal_code_failed", "web", "", f"follow {mask_phone(phone)}", user=None)
        return page(error.status, phone_error=error_text(error))
    tickets = portal.cases_of_phone(row.phone, FOLLOW_MAX)
    audit("portal_lookup_phone", "web", "", f"{mask_phone(row.phone)}: {len(tickets)} case(s)", user=None)
    held = _followed()
    until = int(time.time()) + FOLLOW_TTL
    held |= {t.number: until for t in tickets}
    session[FOLLOW_KEY] = dict(sorted(held.items(), key=lambda kv: kv[1])[-FOLLOW_MAX:])
    return page(cases=[portal.citizen_view(t, g.lang) for t in tickets], verified=True)


def _held_case(number: str) -> Ticket:
    """The case this browser looked up with its code (and not for too long), else 404."""
    if number not in _followed():
        abort(404)
    ticket = Ticket.get_or_none(Ticket.number == number)
    if ticket is None:
        abort(404)
    return ticket


@bp.route("/follow/<number>")
@public
def case(number):
    """The citizen's view of their case: status words, progress, the answer, add information, rate."""
    ticket = _held_case(number)
    return render_template("portal/case.html", view=portal.citizen_view(ticket, g.lang), message=None,
                           error=None, **_file_limits())


def _case_action(number: str, action, done_message: str, audit_action: str):
    ticket = _held_case(number)
    try:
        detail = action(ticket)
    except portal.PortalError as error:
        audit("portal_refused", "ticket", number, f"{audit_action}: {error}"[:500], user=None)
        fresh = Ticket.get_by_id(ticket.id)
        return render_template("portal/case.html", view=portal.citizen_view(fresh, g.lang), message=None,
                               error=error_text(error), **_file_limits()), error.status
    audit(audit_action, "ticket", number, detail, user=None)
    fresh = Ticket.get_by_id(ticket.id)
    return render_template("portal/case.html", view=portal.citizen_view(fresh, g.lang),
                           message=_t(done_message), error=None, **_file_limits())


@bp.route("/follow/<number>/add", methods=["POST"])
@public
def supplement(number):
    """补充材料 while the case is open: into the history, the handler is told."""
    files = [f for f in request.files.getlist("files") if f and f.filename]

    def add(ticket):
        portal.supplement(ticket, request.form.get("text", ""), [(f.filename, f.stream) for f in files],
                          root=_root(), clock=_clock())
        return f"{len(files)} file(s)"

    return _case_action(number, add, "Your information has been added to the case.", "portal_supplement")


@bp.route("/follow/<number>/rate", methods=["POST"])
@public
def rate(number):
    """The online rating of an answered case (counted as a call-back rating, once)."""
    def give(ticket):
        satisfaction = request.form.get("satisfaction", "")
        portal.rate(ticket, satisfaction, request.form.get("comment", ""), clock=_clock())
        return satisfaction

    return _case_action(number, give, "Thank you, your rating has been recorded.", "portal_rate")


@bp.route("/follow/<number>/leave", methods=["POST"])
@public
def leave(number):
    """Forget a looked-up case in this browser (a shared computer)."""
    held = _followed()
    held.pop(number, None)
    session[FOLLOW_KEY] = held
    return redirect(url_for("portal.follow"), code=303)


# ---------------------------------------------------------------------------------- publication
@bp.route("/cases")
@cached_page
@public
def cases():
    """Published cases with search and filters (kind, category, region, month)."""
    args = request.args
    criteria = {key: (args.get(key) or "")[:60] for key in ("q", "type", "category", "region", "month")}
    try:
        page = max(1, min(int(args.get("page", "1")), portal.MAX_PAGES))
    except ValueError:
        page = 1
    error, rows, total, status = None, [], 0, 200
    try:
        rows, total = portal.search_published(text=criteria["q"], type=criteria["type"],
                                              category=criteria["category"], region=criteria["region"],
                                              month=criteria["month"], page=page,
                                              tz=_clock().tz, pickers=_pickers())
    except portal.PortalError as err:
        error, status = error_text(err), 400
    except SearchNotReady as err:  # a big database just migrated: the start is building the index
        error, status = error_text(err), 503
    pages = max(1, min(-(-total // portal.PAGE_SIZE), portal.MAX_PAGES))
    return render_template("portal/cases.html", rows=portal.public_views(rows, g.lang, _names()), total=total,
                           max_listed=portal.MAX_LISTED, page=page, pages=pages, criteria=criteria, error=error,
                           filter_options=_filter_options(criteria)), status


@bp.route("/cases/<number>")
@cached_page
@public
def published_case(number):
    """One published case: the masked request and the department's reply."""
    ticket = Ticket.get_or_none(Ticket.number == number) if services.NUMBER_RE.match(number or "") else None
    if ticket is None or not portal.is_published(ticket):
        abort(404)
    return render_template("portal/published.html", case=portal.public_view(ticket, g.lang, _names()))


@bp.route("/figures")
@cached_page
@public
def figures():
    """Monthly public figures: received, closed, on-time rate, satisfaction."""
    months = _months(24)
    month = request.args.get("month") or months[1]
    if month not in months:
        abort(404)
    return render_template("portal/figures.html", month=month, months=months, figures=_public_figures(month))


# Labels the templates need from caseflow's tables (the one source of these words).
def _label(kind: str, code: str) -> str:
    table = {"type": services.TICKET_TYPES, "reply_by": services.REPLY_BY, "satisfaction": wf.SATISFACTION}[kind]
    return wf.label(table, code, g.get("lang", "zh"))


# The citizen's own entries of a case's timeline (caseflow.portal.timeline), by its codes.
TIMELINE_WORDS = {portal.ADDED: "You added information", portal.RATED: "You rated the answer"}


@bp.app_context_processor
def _portal_helpers():
    return {"portal_label": _label, "timeline_words": TIMELINE_WORDS}

"""The public website's case services (issue 11): writing in (市长信箱 included), following a case with its
query code, adding information, the online rating, and publication of consented, approved cases masked.

The web blueprint (webui.blueprints.portal) parses forms, checks the CAPTCHA and counts failed look-ups;
everything about tickets happens here, through ``caseflow.services`` (the same workflow as a phone ticket).
Long because: one service module per public site, its publication queries (and their planner upkeep) with it.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import peewee

from caseflow import attachments, org, pins, privacy, search, services
from caseflow import workflow as wf
from caseflow.models import Category, Region, Ticket, TicketHistory, WebCase
from caseflow.values import field_words
from caseflow.org import category_paths, category_subtree_ids
from caseflow.services import TicketInputError
from core import secret_codes
from core.clock import Clock
from core.db import database, is_postgres

log = logging.getLogger(__name__)

# What a citizen may write in as (P1: 投诉 举报 求助 咨询 建议 表扬), in this order on the form.
TYPES = ("complaint", "report", "help", "consult", "suggestion", "praise")
# Box -> ticket channel. 市长信箱 reuses the IVR's mailbox channel, which the centre leaders watch.
BOXES = {"web": "web", "mailbox": "mailbox"}
REPLY_CHOICES = ("phone", "sms", "email", "web")
MAX_CONTENT = 3000          # characters; longer text is refused with this number, never cut
MAX_ADDRESS = 200
MAX_NAME = 40
MAX_EMAIL = 120
MAX_SUPPLEMENT = 2000
MAX_COMMENT = 500
MAX_FILES = 3
MAX_FILE_SIZE = 5 * 1024 * 1024
# Images and PDF only, each recognised by its content (a PNG that is really HTML is refused).
FILE_TYPES = {".png": ("image/png", "image/png"), ".jpg": ("image/jpeg", "image/jpeg"),
              ".jpeg": ("image/jpeg", "image/jpeg"), ".gif": ("image/gif", "image/gif"),
              ".pdf": ("application/pdf", "application/pdf")}
DUPLICATE_WINDOW = dt.timedelta(minutes=10)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L to misread
CODE_LENGTH = 10                                    # ~49 bits: enough against online guesses (look-up throttle)
KEYED_FORM = "h1"   # a stored code "h1$salt$hmac"; older rows hold "salt$sha256(salt + code)"
EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[A-Za-z0-9.-]{1,100}\.[A-Za-z]{2,24}\Z")
MONTH_RE = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])\Z")
PUBLISHABLE = (wf.CLOSED, wf.ARCHIVED)  # the centre's disclose action exists only there
REPLIED_WORDS = ("answered", "closed")  # citizen words under which the approved reply is shown
PAGE_SIZE = 20
# The published list's pages; the filters and the search narrow it. A page's count walks up to MAX_LISTED + 1
# index entries (and as many of web_case's): 10 pages keep that walk to 201 (50 pages took 20-100 ms on
# PostgreSQL with a selective filter at 1,000,000 tickets, bench/portal.py).
MAX_PAGES = 10
MAX_LISTED = MAX_PAGES * PAGE_SIZE   # a total above this reads "more than"


class PortalError(TicketInputError):
    """Input refused; ``str()`` says why (Chinese / English), ``field`` names the form field when one is at
    fault and ``status`` is the HTTP status the page answers with."""

    def __init__(self, message: str, field: str = "", status: int = 400):
        super().__init__(message)
        self.field = field
        self.status = status


@dataclass(frozen=True)
class Limits:
    """Submissions allowed per address per hour and per phone number per day (the blueprint passes the
    app's settings)."""

    per_address: int = 5
    per_phone: int = 5
    address_window: dt.timedelta = dt.timedelta(hours=1)
    phone_window: dt.timedelta = dt.timedelta(days=1)


@dataclass
class Submission:
    """One filled-in form, as text (the blueprint copies the fields); ``files`` are (name, stream)."""

    type: str = ""
    content: str = ""
    category: str = ""
    region: str = ""
    address: str = ""
    name: str = ""
    phone: str = ""
    email: str = ""
    anonymous: bool = False
    reply_by: str = "phone"
    consent: bool = False
    box: str = "web"
    files: list = field(default_factory=list)


# ------------------------------------------------------------------------------------- query codes
def new_code() -> str:
    """A random query code shown once to the citizen (stored only hashed)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(code) -> str:
    """Upper case without spaces or dashes (as it may be typed back)."""
    return re.sub(r"[\s-]", "", str(code or "")).upper()[:64]


def hash_code(code: str, key: bytes, salt: str | None = None) -> str:
    """h1$salt$HMAC-SHA256 under the product's secret ``key`` (core.secret_codes): a copy of the database
    without the key cannot test a guess."""
    salt = salt or secret_codes.new_salt()
    return f"{KEYED_FORM}${salt}${secret_codes.keyed_digest(key, 'query-code', salt, normalise_code(code))}"


def code_matches(stored: str, code, key: bytes, previous: Sequence[bytes] = ()) -> bool:
    """True if ``code`` is the one hashed in ``stored`` (constant-time compare): in the keyed form under ``key``
    or one of the ``previous`` keys (HOTLINE_SECRET_KEY_PREVIOUS: a rotated key left every code of the cases
    filed before unverifiable), or in the salt$sha256(salt + code) form written before the keyed one, which
    stored cases keep until their next look-up (``find_case`` re-hashes them)."""
    return _code_match(stored, code, key, previous) is not None


def _code_match(stored: str, code, key: bytes, previous: Sequence[bytes]) -> str | None:
    """How ``code`` matches ``stored``: "current" (the keyed form under ``key``), "stale" (under a previous key,
    or the unkeyed form: worth hashing again under ``key``), or None."""
    form, _, rest = (stored or "").partition("$")
    typed = normalise_code(code)
    if form == KEYED_FORM:
        salt = rest.partition("$")[0]
        if not (salt and typed):
            return None
        for n, candidate in enumerate((key, *previous)):
            if secret_codes.same(stored, hash_code(typed, candidate, salt)):
                return "current" if n == 0 else "stale"
        return None
    salt = form
    expected = f"{salt}${hashlib.sha256((salt + typed).encode()).hexdigest()}"
    return "stale" if salt and typed and secret_codes.same(stored, expected) else None


def digest(content: str) -> str:
    """The text's fingerprint for duplicate detection: blanks removed, NFKC, lower case."""
    return hashlib.sha256(re.sub(r"\s+", "", search.normalise(content)).encode()).hexdigest()


# ----------------------------------------------------------------------------------------- intake
def _text(value, name: str, limit: int, required: bool = False, field_name: str = "") -> str:
    zh, en = field_words(name)  # "诉求内容 content": the field's name in each language
    text = str(value or "").replace("\r\n", "\n").strip()
    if required and not text:
        raise PortalError(f"请填写{zh} / {en} is required", field_name)
    if len(text) > limit:
        raise PortalError(f"{zh}最多{limit}字，现有{len(text)}字，请删减后再提交 / {en} may have at most "
                          f"{limit} characters, it has {len(text)}", field_name)
    return text


def _pick(model, value, name: str, field_name: str, pickers: Optional["Pickers"] = None):
    """The active category or region chosen by id (from ``pickers`` when given: no query), or PortalError."""
    if value in (None, ""):
        return None
    try:
        if pickers is not None:
            row = (pickers.categories if model is Category else pickers.regions).get(int(value))
        else:
            row = model.get_or_none((model.id == int(value)) & model.active)
    except (TypeError, ValueError):
        row = None
    if row is None:
        zh, en = field_words(name)
        raise PortalError(f"请从列表中选择{zh} / choose a {en} from the list", field_name)
    return row


def validate(sub: Submission, pickers: Optional["Pickers"] = None) -> dict:
    """The ticket fields from a submission, or PortalError naming the first field at fault (the category and
    region from ``pickers`` when given)."""
    if sub.box not in BOXES:
        raise PortalError("信箱无效 / unknown box", "box")
    if sub.type not in TYPES:
        raise PortalError("请选择诉求类型 / choose the kind of request", "type")
    content = _text(sub.content, "诉求内容 content", MAX_CONTENT, True, "content")
    address = _text(sub.address, "地址 address", MAX_ADDRESS, field_name="address")
    name = _text(sub.name, "姓名 name", MAX_NAME, field_name="name")
    email = _text(sub.email, "电子邮箱 e-mail address", MAX_EMAIL, field_name="email")
    if email and not EMAIL_RE.match(email):
        raise PortalError("电子邮箱格式不正确 / the e-mail address is malformed", "email")
    try:
        phone = services.clean_phone(sub.phone)
    except TicketInputError:
        raise PortalError("电话号码格式不正确 / the phone number is malformed", "phone") from None
    if sub.reply_by not in REPLY_CHOICES:
        raise PortalError("请选择答复方式 / choose how you want the reply", "reply_by")
    if sub.reply_by in ("phone", "sms") and not phone:
        raise PortalError("电话或短信答复需要填写电话号码 / a reply by phone or SMS needs a phone number", "phone")
    if sub.reply_by == "email" and not email:
        raise PortalError("电子邮件答复需要填写电子邮箱 / a reply by e-mail needs an e-mail address", "email")
    if not sub.anonymous and not name:
        raise PortalError("请填写姓名，或选择匿名 / give your name or choose anonymous", "name")
    if len(sub.files) > MAX_FILES:
        raise PortalError(f"最多上传{MAX_FILES}个附件 / at most {MAX_FILES} files", "files")
    return {"type": sub.type, "content": content, "citizen_address": address,
            "citizen_name": "" if sub.anonymous else name, "citizen_phone": phone, "citizen_email": email,
            "anonymous": bool(sub.anonymous), "reply_by": sub.reply_by,
            "category": _pick(Category, sub.category, "诉求分类 category", "category", pickers),
            "region": _pick(Region, sub.region, "所属区域 region", "region", pickers)}


def check_limits(ip: str, phone: str, text_digest: str, now: dt.datetime, limits: Limits) -> None:
    """Refuse a flood from one address or one phone number, and the same text sent again within minutes.

    The three questions go to the database as one statement (each was a round trip: on PostgreSQL a wait for
    the server, under load most of a submission's time), and each count stops at its limit."""
    duplicate = WebCase.select(peewee.SQL("1")).where((WebCase.digest == text_digest)
                                                      & (WebCase.created_at > now - DUPLICATE_WINDOW)).limit(1)
    from_ip = WebCase.select(peewee.SQL("1")).where(
        (WebCase.ip == ip) & (WebCase.created_at > now - limits.address_window)).limit(max(limits.per_address, 0))
    from_phone = (WebCase.select(peewee.SQL("1")).join(Ticket, on=(WebCase.ticket == Ticket.id))
                  .where((Ticket.citizen_phone == phone) & (WebCase.created_at > now - limits.phone_window))
                  .limit(max(limits.per_phone, 0)))

    def capped(query):
        return peewee.Select([query.alias("capped")], [peewee.fn.COUNT(peewee.SQL("*"))])

    columns = [peewee.fn.EXISTS(duplicate), capped(from_ip) if ip else peewee.Value(0),
               capped(from_phone) if phone else peewee.Value(0)]
    repeated, sent_ip, sent_phone = peewee.Select(columns=columns).bind(WebCase._meta.database).tuples()[0]
    if repeated:
        raise PortalError("相同内容刚刚已提交过，正在办理中，请勿重复提交 / the same text was submitted a few "
                          "minutes ago and is being handled: please do not send it twice", "content", 409)
    if ip and sent_ip >= limits.per_address:
        raise PortalError("提交过于频繁，请稍后再试 / too many submissions from this address: please try "
                          "again later", "", 429)
    if phone and sent_phone >= limits.per_phone:
        raise PortalError("该电话号码今日提交次数已达上限，请明天再试或拨打12345 / this phone number has "
                          "reached today's limit: try tomorrow or call 12345", "phone", 429)


def store_files(root: Path, files: Iterable, clock: Clock) -> list[dict]:
    """Store and check every uploaded file (type by content, size); on any refusal none is kept."""
    infos: list[dict] = []
    try:
        for filename, stream in files:
            try:
                infos.append(attachments.store_checked(root, stream, filename, FILE_TYPES, clock, MAX_FILE_SIZE))
            except attachments.AttachmentError as error:
                name = attachments.safe_name(filename)
                zh, sep, en = str(error).partition(" / ")
                raise PortalError(f"附件“{name}”：{zh} / file {name!r}: {en if sep else zh}", "files") from None
    except BaseException:
        attachments.discard(root, infos)
        raise
    return infos


def submit(sub: Submission, *, ip: str, captcha_id: str, root: Path, key: bytes, clock: Optional[Clock] = None,
           limits: Limits = Limits(), pickers: Optional["Pickers"] = None,
           recorded: Optional[Callable[[Ticket], peewee.Model]] = None) -> tuple[Ticket, str]:
    """Record a website submission as a ticket (channel web, or mailbox for 市长信箱) in the same workflow as
    a phone ticket; returns (ticket, query code). The code is shown once and stored only hashed under ``key``
    (the product's secret key).

    The web case is one of the ticket's own rows (``create_ticket``'s ``rows``): on PostgreSQL it goes into the
    ticket's statement, and a submission without files is that one statement, atomic with no transaction (BEGIN,
    the web case's and the audit row's INSERTs and COMMIT were four round trips more, issue 11's submission
    p99); the files are written in the ticket's transaction before its day counts (``also``), which every new
    ticket updates and PostgreSQL holds from their upsert to the commit. ``recorded(ticket)``: the caller's own
    unsaved row of it (the website's audit row), written with the web case: one commit per submission, each a
    wait for PostgreSQL's WAL flush, and no ticket without its audit row."""
    clock = clock or Clock()
    fields = validate(sub, pickers)
    now = services.to_db(clock.now())
    text_digest = digest(fields["content"])
    check_limits(ip, fields["citizen_phone"], text_digest, now, limits)
    infos = store_files(root, sub.files, clock)
    code = new_code()
    code_hash = hash_code(code, key)

    def web_rows(draft: Ticket) -> list[peewee.Model]:
        case = WebCase(ticket=draft, box=sub.box, consent=bool(sub.consent), code_hash=code_hash, ip=ip[:64],
                       digest=text_digest, captcha_id=captcha_id[:40], created_at=now)
        return [case] if recorded is None else [case, recorded(draft)]

    def web_files(ticket: Ticket) -> None:
        for info in infos:
            attachments.attach_stored(ticket, info, None, "upload", clock, actor_label="网站 web")

    try:
        ticket = services.create_ticket(channel=BOXES[sub.box], clock=clock, actor_label="网站 web",
                                        note="市长信箱 / mayor's mailbox" if sub.box == "mailbox" else
                                        "网站 / website", rows=web_rows, also=web_files if infos else None,
                                        **fields)
    except peewee.IntegrityError:
        attachments.discard(root, infos)
        raise PortalError("验证码已使用过，请刷新验证码 / this picture code was used already: get a new one",
                          "captcha") from None
    except BaseException:
        attachments.discard(root, infos)
        raise
    log.info("web submission %s (%s, %s files)", ticket.number, sub.box, len(infos))
    return ticket, code


# --------------------------------------------------------------------------------------- follow-up
def parse_number(text) -> str:
    """An acceptance number as typed, or PortalError."""
    try:
        return services.parse_number(text)
    except TicketInputError:
        raise PortalError("受理号应为8位数字 / an acceptance number is 8 digits", "number") from None


def find_case(number: str, code, key: bytes, previous_keys: Sequence[bytes] = ()) -> Optional[Ticket]:
    """The ticket with this number whose query code matches, or None (an unknown number and a wrong code
    look the same). Either code opens it: the website's own code of a case written in on the site (hashed
    under ``key``, the product's secret key, or one of ``previous_keys`` it was rotated from: the code is then
    hashed again under ``key``, as is one in the old unkeyed form), or the query PIN every ticket carries, the
    one the phone reads back and the SMS and e-mail receipts send, checked as the phone's status query checks
    it: under the process's installed keys (caseflow.pins.verify), never ``key``, so the PIN has one source
    of keys wherever it is created or checked."""
    # The ticket and its web case's code in one statement (two round trips before).
    ticket = (Ticket.select(Ticket, WebCase.code_hash.alias("web_code_hash"))
              .join(WebCase, peewee.JOIN.LEFT_OUTER, on=(WebCase.ticket == Ticket.id))
              .where(Ticket.number == number).objects().first())
    stored = getattr(ticket, "web_code_hash", None) if ticket is not None else None
    case = WebCase(code_hash=stored) if stored else None
    # Spend the same hashing time whether or not the case was written in on the site.
    match = _code_match(case.code_hash if case is not None else hash_code("x", key), code, key, previous_keys)
    if match is not None and case is not None:
        if match == "stale":  # one UPDATE on a successful look-up only: under the current key from now on
            WebCase.update(code_hash=hash_code(code, key)).where(
                (WebCase.ticket == ticket.id) & (WebCase.code_hash == stored)).execute()
        return ticket
    # The PIN against its keyed hash (caseflow.pins: hashed again under the installed current key when stored
    # plain or under a previous one).
    if pins.digits(code) and pins.verify(ticket, code):
        return ticket
    return None


def cases_of_phone(phone: str, limit: int = 5) -> list[Ticket]:
    """The newest cases (any channel) whose citizen phone is ``phone``: what a citizen who confirmed the
    number by an SMS code may follow (issue 11 item 2)."""
    if not phone:
        return []
    forms = [phone, f"+86{phone}", f"86{phone}", f"0086{phone}"]  # as typed on other channels
    return list(Ticket.select().where(Ticket.citizen_phone.in_(forms)).order_by(Ticket.id.desc()).limit(limit))


def shown_ticket(ticket: Ticket) -> Ticket:
    """The ticket whose progress the public sees: a merged duplicate reports its master's (as the phone status
    query does); the website and Open311 alike."""
    return ticket.master if ticket.status == wf.MERGED and ticket.master_id else ticket


def citizen_view(ticket: Ticket, lang: str = "zh") -> dict:
    """What the citizen who holds the code sees: status words, timeline, the reply once approved, and what
    they may still do. No staff names, notes or department-internal steps."""
    shown = shown_ticket(ticket)
    word = wf.citizen_status(shown.status)
    reply = shown.reply if word in REPLIED_WORDS else ""
    return {"ticket": ticket, "word": word, "words": wf.citizen_words(shown.status, lang),
            "timeline": timeline(ticket, lang), "reply": reply,
            "may_supplement": word not in ("closed", "rejected") and ticket.status != wf.MERGED,
            "may_rate": ticket.status in (wf.APPROVED, wf.ANSWERED), "rating": ticket.satisfaction}


# Timeline entries that are the citizen's own doing (the website names them from its catalogue).
ADDED, RATED = "added", "rated"


def timeline(ticket: Ticket, lang: str = "zh") -> list[tuple[dt.datetime, str, str]]:
    """[(when, what, words)] each time the citizen-facing status changed ("status", words from the one table
    of citizen words, workflow.CITIZEN_WORDS), and their own additions (ADDED) and rating (RATED), whose
    words the page takes from its catalogue (empty here); never internal steps or notes."""
    out: list[tuple[dt.datetime, str, str]] = []
    last = None
    for row in TicketHistory.select().where(TicketHistory.ticket == ticket).order_by(TicketHistory.id):
        if row.action == "supplement":
            out.append((row.at, ADDED, ""))
            continue
        if row.action in ("call_back", "call_back_unsatisfied") and row.actor_id is None:
            out.append((row.at, RATED, ""))
        if not row.to_status or row.to_status not in wf.CITIZEN_STATUS:
            continue
        word = wf.citizen_status(row.to_status)
        if word != last:
            out.append((row.at, "status", wf.citizen_words(row.to_status, lang)))
            last = word
    return out


def supplement(ticket: Ticket, text, files: Iterable, *, root: Path, clock: Optional[Clock] = None) -> None:
    """补充材料: the citizen's addition goes into the history and files; the handler (or the centre, before
    dispatch) is told. Only while the case is open."""
    clock = clock or Clock()
    files = list(files)
    view = citizen_view(ticket)
    if not view["may_supplement"]:
        raise PortalError("该诉求已办结，不能再补充材料 / the case is closed: nothing can be added", "", 409)
    text = _text(text, "补充内容 addition", MAX_SUPPLEMENT, required=not files, field_name="text")
    if len(files) > MAX_FILES:
        raise PortalError(f"最多上传{MAX_FILES}个附件 / at most {MAX_FILES} files", "files")
    infos = store_files(root, files, clock)
    now = services.to_db(clock.now())
    try:
        with Ticket._meta.database.atomic():
            services._history(ticket, None, "supplement", ticket.status, ticket.status, text, now,
                              label="市民 citizen")
            for info in infos:
                attachments.attach_stored(ticket, info, None, "upload", clock, actor_label="市民 citizen")
            services._holder_notice(ticket, f"市民补充材料：工单 {ticket.number}（{ticket.title}）",
                                    "supplement", clock)
    except BaseException:
        attachments.discard(root, infos)
        raise


def rate(ticket: Ticket, satisfaction: str, comment, clock: Optional[Clock] = None) -> Ticket:
    """The citizen's own rating of an answered case: the same call-back event a phone rating records (so
    the statistics count it the same way) and only once (the event moves the ticket on)."""
    if satisfaction not in wf.SATISFACTION:
        raise PortalError("请选择满意度 / choose a rating", "satisfaction")
    comment = _text(comment, "评价意见 comment", MAX_COMMENT, field_name="comment")
    if ticket.status not in (wf.APPROVED, wf.ANSWERED):
        raise PortalError("该诉求尚未答复或已评价过 / the case is not answered yet, or was rated already",
                          "", 409)
    note = "网站评价 / rated on the website" + (f"：{comment}" if comment else "")
    try:
        return services.call_back(ticket, None, satisfaction, note, system=True, clock=clock,
                                  expected_version=ticket.version)
    except wf.WorkflowError as error:
        raise PortalError(str(error), "", 409) from None


# ------------------------------------------------------------------------------------- publication
# Published = the centre approved disclosure (Ticket.public, the disclose action) on a closed case AND the citizen
# consented on the website: ``disclosed`` and ``consented`` are the rule's two halves, the one place of it for
# ``published``, ``is_published``, a month's page (``_sorted_then_consented``) and the text search's restriction.
def disclosed(ticket=Ticket) -> peewee.Expression:
    """The ticket's half of the rule, on ``ticket`` (the model or an alias of it). ``Ticket.public`` comes
    first and bare: the partial indexes over the few disclosed tickets (caseflow.models) serve it on both
    databases. The status is compared as ``status || ''``, which no index serves: SQLite otherwise walked an
    index on the status (the workbench's) through every closed ticket of the million whenever its statistics
    were missing (5 s)."""
    return ticket.public & ticket.status.concat("").in_(PUBLISHABLE)


def consented(ticket_id) -> peewee.Expression:
    """The web case's half: the case of ``ticket_id`` (a column or a value) whose writer consented."""
    return (WebCase.ticket == ticket_id) & WebCase.consent


def is_published(ticket: Ticket) -> bool:
    """Whether ``ticket`` is published (the rule above); no query for one never disclosed, as most are."""
    return bool(ticket.public) and published().where(Ticket.id == ticket.id).exists()


def published():
    """The query of published tickets (the rule above)."""
    return Ticket.select().join(WebCase, on=consented(Ticket.id)).where(disclosed())


def _published_restriction() -> tuple[str, tuple]:
    """The rule as search.find_ids' ``restrict_sql`` on the ticket table aliased ``t`` (%s placeholders), with
    its parameters."""
    t = Ticket.alias("t")
    rule = disclosed(t) & peewee.fn.EXISTS(WebCase.select(peewee.SQL("1")).where(consented(t.id)))
    return Ticket._meta.database.get_sql_context(param="%s").sql(rule).query()


def ensure_statistics(analyze: bool = False) -> None:
    """PostgreSQL (14 and later): statistics on ``status || ''``, the expression ``published`` compares. Without
    them the planner took the expression for rare (0.5%), expected a few hundred published cases instead of a
    fifth of the tickets and read the whole table for a page's count (2.6 s at 1,000,000 tickets, 5-7 s with 50
    visitors); with them it walks the list's partial index and stops at the cap (bench/portal.py). Idempotent;
    ``analyze`` fills them now (an existing database) instead of at the next automatic analysis."""
    db = database.obj
    if not is_postgres(db) or int(db.execute_sql("SHOW server_version_num").fetchone()[0]) < 140000:
        return
    db.execute_sql("CREATE STATISTICS IF NOT EXISTS ticket_status_text ON ((status || '')) FROM ticket")
    if analyze:
        db.execute_sql("ANALYZE ticket")


def published_ids(ids: Iterable[int]) -> set[int]:
    """Which of the tickets ``ids`` are published (one query, for lists)."""
    ids = list(ids)
    return {row.id for row in published().select(Ticket.id).where(Ticket.id.in_(ids))} if ids else set()


def month_bounds(month: str, tz) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in naive UTC of the local month "YYYY-MM"; PortalError when malformed."""
    match = MONTH_RE.match(month or "")
    if not match:
        raise PortalError("月份格式应为“年-月”，如 2026-03 / a month is written YYYY-MM, e.g. 2026-03", "month")
    year, mon = int(match.group(1)), int(match.group(2))
    start = dt.datetime(year, mon, 1, tzinfo=tz)
    end = dt.datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return services.to_db(start), services.to_db(end)


def latest_published(count: int = 5) -> list[Ticket]:
    """The newest published cases (the home page's list), without counting them all."""
    return list(published().order_by(Ticket.closed_at.desc(), Ticket.id.desc()).limit(count))


def search_published(*, text: str = "", type: str = "", category: str = "", region: str = "", month: str = "",
                     page: int = 1, tz=None, pickers: Optional["Pickers"] = None) -> tuple[list[Ticket], int]:
    """(published tickets of the page, total) matching every filter. Text matches only what the public
    page shows (the masked request and reply), never the hidden address or name.

    The list reaches MAX_LISTED cases (MAX_PAGES pages): the total is counted up to one more than that, so a
    page never counts every published case (200,000 at 1,000,000 tickets); more than MAX_LISTED reads
    "more than", and the filters narrow it."""
    page = max(1, min(int(page), MAX_PAGES))
    if is_postgres() and not text:
        # Two round trips, the count and the page's rows, each carrying its planner settings (_PLANNER): BEGIN,
        # the settings, the count, the page's ids, its rows and COMMIT were six, and on a loaded machine each
        # was a wait for the server and then for this process's turn again (1-9 ms each, under load).
        return _search_published(text, type, category, region, month, page, tz, pickers)
    with database.atomic():
        if is_postgres():
            database.execute_sql(_PLANNER)
        return _search_published(text, type, category, region, month, page, tz, pickers)


# PostgreSQL's settings for the list's statements, sent in front of each (SET LOCAL lasts for the statements sent
# with it: one implicit transaction). No parallel workers for a page: starting them cost 50-200 ms a query, and 50
# visitors at once would ask for more workers than the server has; one process walks the index to the cap sooner.
# No bitmap scans: the partial indexes hold every column a filter names, so an index alone answers; a bitmap scan
# read the table's pages of every match (a category with a region: 420 pages at 100,000 tickets, combining the
# category's partial index with the region's index over all tickets).
_PLANNER = "SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL enable_bitmapscan = off; "
_NO_SORT = "SET LOCAL enable_sort = off; "


def _search_published(text: str, type: str, category: str, region: str, month: str, page: int, tz,
                      pickers: Optional["Pickers"] = None):
    filters = []  # on the ticket's own columns
    if type:
        if type not in TYPES:
            raise PortalError("诉求类型无效 / unknown type", "type")
        filters.append(Ticket.type == type)
    if category:
        row = _pick(Category, category, "诉求分类 category", "category", pickers)
        ids = pickers.category_ids(row.id) if pickers is not None else category_subtree_ids(row)
        filters.append(Ticket.category.in_(ids))
    if region:
        row = _pick(Region, region, "所属区域 region", "region", pickers)
        ids = [row.id] + (pickers.region_children.get(row.id, []) if pickers is not None else
                          [r.id for r in Region.select(Region.id).where(Region.parent == row)])
        filters.append(Ticket.region.in_(ids))
    if month:
        start, end = month_bounds(month, tz)
        filters.append((Ticket.created_at >= start) & (Ticket.created_at < end))
    query = published().where(*filters) if filters else published()
    text = _text(text, "检索词 search words", 50, field_name="q")
    query = query.order_by(Ticket.closed_at.desc(), Ticket.id.desc())
    if text:
        restrict, params = _published_restriction()
        ids, _grams = search.find_ids("ticket", text, order="recent", restrict_sql=restrict,
                                      restrict_params=tuple(params))
        needle = search.normalise(text)
        candidates = list(query.where(Ticket.id.in_(ids or [0])))
        # The index holds the address and unmasked text: keep only rows whose PUBLIC text matches.
        rows = [t for t, view in zip(candidates, public_views(candidates))
                if needle in search.normalise(" ".join(view[k] for k in ("title", "content", "reply")))]
        return rows[(page - 1) * PAGE_SIZE: page * PAGE_SIZE], min(len(rows), MAX_LISTED + 1)
    # Counted up to the cap in no order (peewee's count() would count them all): the database walks any index
    # that serves the filters and stops at the cap. In the list's order PostgreSQL, which takes a filter's
    # matches for far fewer than they are (it cannot know that every published ticket has its consenting web
    # case: 103 expected for 829 at 100,000 tickets), read every match through the narrowest filter's index
    # and sorted them all first (a region's 829 matches, 1,855 pages, for a count that stops at 201; 461 now);
    # SQLite walked the list's index through 12,000 entries for a category with a region's 201 matches (4 ms
    # of CPU, 0.5 ms unordered).
    capped = query.order_by().select(peewee.SQL("1")).limit(MAX_LISTED + 1)
    counted = peewee.Select([capped.alias("capped")], [peewee.fn.COUNT(peewee.SQL("*"))]).bind(Ticket._meta.database)
    total = _planned(counted).fetchone()[0] if is_postgres() else counted.scalar()
    if not total:
        return [], 0
    # The page's ids first, from the same index entries as the count, then those rows: asked for the wide rows
    # at once, PostgreSQL combined the filters' indexes, read every matching row and sorted them (0.3-0.5 s).
    if month:
        # A month's page: its range of the creation-time index (about 8,000 entries at 1,000,000 tickets) sorted,
        # not the list's index walked backwards through every later case until the month's (PostgreSQL chose
        # that, 30-45 ms for a month a year back): an order by an expression no index gives. Same order.
        query = query.order_by(peewee.fn.COALESCE(Ticket.closed_at, Ticket.closed_at).desc(), Ticket.id.desc())
    if is_postgres() and month:
        page_ids = _sorted_then_consented(filters, page)
    else:
        page_ids = query.select(Ticket.id).paginate(page, PAGE_SIZE)
    if is_postgres():
        # The page's rows in the same statement as its ids (an InitPlan of its own: planned as before). More
        # matches than the list shows (and no month): the page is among the first of the list's index walked
        # backwards (the filters checked on its entries), found after a few hundred entries at most for a dense
        # filter. PostgreSQL, expecting a few matches (above), read and sorted them all instead: no sort for this
        # statement (a region's page 5: 241 pages instead of 1,855 at 100,000 tickets). A filter with few
        # matches (under the cap) keeps its own plan: the walk could then pass the whole index.
        rows = Ticket.select().where(Ticket.id == peewee.fn.ANY(peewee.fn.ARRAY(page_ids)))
        rows = list(_planned(rows, no_sort=total > MAX_LISTED and not month, model=Ticket))
        return sorted(rows, key=lambda t: (t.closed_at, t.id), reverse=True), total  # the list's order
    ids = [row[0] for row in page_ids.tuples()]
    rows = {t.id: t for t in Ticket.select().where(Ticket.id.in_(ids))} if ids else {}
    return [rows[i] for i in ids if i in rows], total


def _planned(query: peewee.Select, no_sort: bool = False, model=None):
    """PostgreSQL: ``query`` run with the list's planner settings in front (and no sort when ``no_sort``): the
    cursor, or ``model``'s rows."""
    sql, params = query.sql()
    prefix = _PLANNER + (_NO_SORT if no_sort else "")
    return model.raw(prefix + sql, *params) if model is not None else database.execute_sql(prefix + sql, params)


def _sorted_then_consented(filters: list, page: int) -> peewee.Select:
    """PostgreSQL: the ids of a month's page of published cases, the month's disclosed tickets sorted in the list's
    order from their index entries first, then each checked for its consenting web case in that order until the
    page is full. Joined first, PostgreSQL looked up the web case of every ticket of the month (8,500 at 1,000,000
    tickets: 25,565 pages, 19.7 ms) before sorting them for 20. The check is a scalar subquery, which PostgreSQL
    never turns into a join: it runs row by row in the sorted order and stops with the page."""
    ordered = (Ticket.select(Ticket.id, Ticket.closed_at)
               .where(disclosed(), *filters)
               .order_by(Ticket.closed_at.desc(), Ticket.id.desc()).alias("ordered"))
    check = WebCase.select(peewee.SQL("true")).where(consented(ordered.c.id)).limit(1)
    return (peewee.Select([ordered], [ordered.c.id]).where(check)
            .order_by(ordered.c.closed_at.desc(), ordered.c.id.desc())
            .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE).bind(Ticket._meta.database))


class Names:
    """Category paths, region and department names of a whole page of tickets, read once (three small
    tables) instead of a query per ticket and per category level."""

    def __init__(self):
        from caseflow.models import Department

        self.category = {row.id: row for row in Category.select(Category.id, Category.code, Category.name)}
        self.categories = category_paths()
        self.regions = dict(Region.select(Region.id, Region.name).tuples())
        self.departments = dict(Department.select(Department.id, Department.name).tuples())


class Pickers:
    """The category and region trees of the website's forms and filters, read once (two small tables) for an
    app to keep (webui.blueprints.portal: at most a minute, and emptied at once when the trees change on the
    administrator's page): a write-in, its form and a list with filters read no tree per request (they read
    4-5 small queries each, every one a round trip).

    ``categories``/``regions``: the active ones by id (what a form may choose); ``category_tree``: the active
    categories as (category, depth) for the pickers; ``region_tree``: active districts, each followed by its
    active streets; ``category_ids(id)``: a category and every one below it; ``region_children``: the streets
    of a district (active or not, as a filter counts the cases filed under them)."""

    def __init__(self):
        rows = org.category_tree()
        self.category_tree = [(c, depth) for c, depth in rows if c.active]
        self.categories = {c.id: c for c, _depth in self.category_tree}
        self._category_children: dict = {}
        for c, _depth in rows:
            self._category_children.setdefault(c.parent_id, []).append(c.id)
        regions = list(Region.select().order_by(Region.code))
        self.regions = {r.id: r for r in regions if r.active}
        self.region_children: dict = {}
        streets: dict = {}
        for r in regions:
            if r.parent_id is not None:
                self.region_children.setdefault(r.parent_id, []).append(r.id)
            if r.active:
                streets.setdefault(r.parent_id, []).append(r)
        self.region_tree = []
        for district in streets.get(None, []):
            self.region_tree += [(district, 0)] + [(s, 1) for s in streets.get(district.id, [])]

    def category_ids(self, category_id: int) -> list[int]:
        """``category_id`` and the ids of every category below it (a filter by 城市管理 finds 噪音扰民)."""
        found, frontier = [category_id], [category_id]
        while frontier and len(found) <= 10000:
            frontier = [c for parent in frontier for c in self._category_children.get(parent, []) if c not in found]
            found.extend(frontier)
        return found


def public_view(ticket: Ticket, lang: str = "zh", names: Optional[Names] = None) -> dict:
    """A published case as the public sees it: masked request and reply, kind, category, district and
    street, dates and the answering department. Never a name, phone, address detail, file or note."""
    names = names or Names()

    def clean(text: str) -> str:
        return privacy.public_text(text, ticket)

    return {"number": ticket.number, "type": ticket.type, "title": clean(ticket.title),
            "content": clean(ticket.content), "reply": clean(ticket.reply),
            "category": names.categories.get(ticket.category_id, ""),
            "region": names.regions.get(ticket.region_id, ""),
            "department": names.departments.get(ticket.department_id, ""),
            "created_at": ticket.created_at, "replied_at": ticket.replied_at, "closed_at": ticket.closed_at,
            "satisfaction": ticket.satisfaction}


def public_views(tickets: Iterable[Ticket], lang: str = "zh", names: Optional[Names] = None) -> list[dict]:
    """``public_view`` of each ticket of a list, the names read once (or the ``names`` given)."""
    names = names or Names()
    return [public_view(t, lang, names) for t in tickets]

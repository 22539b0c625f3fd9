"""Open311 GeoReport v2 (issue 11 item 6, http://wiki.open311.org/GeoReport_v2/): services from the category
tree, service requests as tickets (channel api) through caseflow's create service, their public status in the
citizen words, API keys per client, and the XML/JSON shapes of the specification.

Pure where it can be: ``to_xml`` / ``to_json`` and the argument parsers take and return plain values; the
blueprint (webui.blueprints.open311) does HTTP, rate limits and the audit trail.

What comes back through GET: without a key, only published cases (portal.is_published: disclosed by the
centre, consented by the writer, closed), masked as on the website; with the key of the client that filed a
request, also that request's status, and its reply once the centre approved it, masked. Never a name, phone,
e-mail or address detail of a citizen.
Long because: the GeoReport v2 specification end to end (keys, services, requests, parsers, XML/JSON) in one place.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import re
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

from caseflow import portal, privacy, services
from caseflow import workflow as wf
from caseflow.models import Category, Region, Ticket
from caseflow.org import category_paths
from channels.models import ApiClient, Open311Request
from core.clock import Clock

log = logging.getLogger(__name__)

SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = ("text/xml", "application/json")
# When this endpoint's behaviour last changed (discovery's endpoint changeset; sortable, local time).
ENDPOINT_CHANGESET = "2026-12-06 12:00"
MAX_DESCRIPTION = 4000      # the specification's limit for description
MAX_FIELD = 64
MAX_URL = 500
MAX_IDS = 100               # service_request_id values in one GET
MAX_RESULTS = 1000          # the specification's default query limit
MAX_SPAN = dt.timedelta(days=90)
MODES = ("realtime", "batch")
KEY_PREFIX = "o311_"
# GeoReport status -> the citizen-word keys (workflow.CITIZEN_STATUS) it covers: closed = resolved.
CLOSED_WORDS = ("closed", "rejected")
W3C_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})\Z")
ATTRIBUTE_RE = re.compile(r"^attribute\[([A-Za-z0-9_.-]{1,32})\](\[\])?\Z")


class Open311Error(Exception):
    """A refused call: ``status`` is the HTTP status, ``errors`` the [(code, description)] array the
    specification sends back (several when several fields are wrong)."""

    def __init__(self, status: int, *errors: tuple[int, str]):
        super().__init__("; ".join(d for _c, d in errors))
        self.status = status
        self.errors = list(errors)


def bad(description: str) -> Open311Error:
    return Open311Error(400, (400, description))


def not_found(description: str) -> Open311Error:
    return Open311Error(404, (404, description))


# ------------------------------------------------------------------------------------------ API keys
def hash_key(key: str) -> str:
    """sha256 of the key (keys are 256-bit random: a salt or a slow hash adds nothing)."""
    return hashlib.sha256(str(key).encode()).hexdigest()


def issue_key(name: str, mode: str = "realtime", by=None, clock: Optional[Clock] = None) -> tuple[ApiClient, str]:
    """A new client and its key; the key is returned this once and only its hash is stored."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValueError("client name: 1 to 100 characters / 名称1至100字")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    now = services.to_db((clock or Clock()).now())
    client = ApiClient.create(name=name, prefix=key[:12], key_hash=hash_key(key), mode=mode, created_at=now,
                              created_by=by)
    return client, key


def revoke(client: ApiClient, by=None, clock: Optional[Clock] = None) -> ApiClient:
    """Revoke a key: it is refused from now on (its requests stay)."""
    if client.revoked_at is None:
        client.revoked_at = services.to_db((clock or Clock()).now())
        client.revoked_by = by
        client.save()
    return client


def client_for(key) -> Optional[ApiClient]:
    """The live client holding ``key``, or None (unknown, malformed or revoked)."""
    key = str(key or "")
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    client = ApiClient.get_or_none(ApiClient.key_hash == hash_key(key))
    return client if client is not None and client.revoked_at is None else None


# ------------------------------------------------------------------------------------------ discovery
def discovery(url: str, *, production: bool, contact: str, key_service: str, definitions_changed: str = "") -> dict:
    """The Service Discovery document (http://wiki.open311.org/Service_Discovery): one GeoReport v2 endpoint at
    ``url``, production or test, in XML and JSON. Its changeset is the later of the endpoint's own and
    ``definitions_changed`` (when the categories or regions behind the service definitions last changed,
    "YYYY-MM-DD HH:MM"), so a client knows when to fetch the services again."""
    return {"changeset": max(ENDPOINT_CHANGESET, definitions_changed or ""), "contact": contact,
            "key_service": key_service,
            "endpoints": [{"specification": SPEC, "url": url, "changeset": ENDPOINT_CHANGESET,
                           "type": "production" if production else "test", "formats": list(FORMATS)}]}


# ------------------------------------------------------------------------------------------ services
def _attributes() -> list[dict]:
    """The attributes every service takes: the kind of request and the district or street (optional lists
    from caseflow's own tables)."""
    types = [{"key": code, "name": f"{services.TICKET_TYPES[code][0]} {services.TICKET_TYPES[code][1]}"}
             for code in portal.TYPES]
    regions = [{"key": r.code, "name": r.name} for r in Region.select().where(Region.active)
               .order_by(Region.level, Region.code)]
    return [
        {"variable": True, "code": "type", "datatype": "singlevaluelist", "required": False,
         "datatype_description": None, "order": 1,
         "description": "诉求类型（默认投诉） / kind of request (default complaint)", "values": types},
        {"variable": True, "code": "region", "datatype": "singlevaluelist", "required": False,
         "datatype_description": None, "order": 2, "description": "所属区域 / district or street",
         "values": regions},
    ]


def _services() -> list[Category]:
    """Active categories whose ancestors are active too, in the tree's order."""
    from caseflow.org import category_tree

    out, inactive_depth = [], None
    for category, depth in category_tree():
        if inactive_depth is not None and depth > inactive_depth:
            continue
        inactive_depth = None
        if not category.active:
            inactive_depth = depth
            continue
        out.append(category)
    return out


def service_list(mode: str = "realtime") -> list[dict]:
    """GET Service List: one service per active category (group: its top-level category)."""
    rows, paths = [], category_paths()
    for category in _services():
        path = paths[category.id]
        top = path.split(" > ")[0]
        rows.append({"service_code": category.code, "service_name": category.name, "description": path,
                     "metadata": True, "type": mode, "keywords": ", ".join(path.split(" > ")),
                     "group": top})
    return rows


def service(code) -> Category:
    """The active category behind a service_code, or a 404 error."""
    code = str(code or "")
    if not code:
        raise bad("service_code was not provided")
    category = next((c for c in _services() if c.code == code), None) if len(code) <= 32 else None
    if category is None:
        raise not_found(f"service_code {code[:40]!r} not found")
    return category


def service_definition(code) -> dict:
    """GET Service Definition."""
    category = service(code)
    return {"service_code": category.code, "attributes": _attributes()}


# ------------------------------------------------------------------------------------------ POST
@dataclass
class NewRequest:
    """A POST's arguments, checked (``parse_post``)."""

    category: Category
    description: str = ""
    lat: Optional[float] = None
    long: Optional[float] = None
    address_string: str = ""
    address_id: str = ""
    email: str = ""
    device_id: str = ""
    account_id: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    media_url: str = ""
    attributes: dict = field(default_factory=dict)


CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _one(form: Mapping, name: str, limit: int, errors: list) -> str:
    value = str(form.get(name) or "").strip()
    if CONTROL_RE.search(value):
        errors.append((400, f"{name} contains control characters"))
        return ""
    if len(value) > limit:
        errors.append((400, f"{name} may have at most {limit} characters, it has {len(value)}"))
        return ""
    return value


def _coordinate(value: str, name: str, bound: float, errors: list) -> Optional[float]:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or abs(number) > bound:
        errors.append((400, f"{name} must be a WGS84 coordinate between -{bound:g} and {bound:g}"))
        return None
    return number


def parse_attributes(items: Iterable[tuple[str, str]], definition: list[dict], errors: list) -> dict:
    """attribute[code]=value and attribute[code][]=value pairs -> {code: value or [values]}, checked
    against the service definition (unknown codes and values outside a list are errors)."""
    by_code = {a["code"]: a for a in definition}
    values: dict[str, Any] = {}
    for name, value in items:
        match = ATTRIBUTE_RE.match(name)
        if not match:
            if name.startswith("attribute"):
                errors.append((400, f"malformed attribute argument {name[:40]!r}"))
            continue
        code, many = match.group(1), bool(match.group(2))
        spec = by_code.get(code)
        if spec is None:
            errors.append((400, f"attribute {code!r} is not defined for this service"))
            continue
        value = str(value).strip()
        allowed = {str(v["key"]) for v in spec.get("values", [])}
        if spec["datatype"] in ("singlevaluelist", "multivaluelist") and value and value not in allowed:
            errors.append((400, f"attribute {code!r}: {value[:40]!r} is not one of its values"))
            continue
        if many or spec["datatype"] == "multivaluelist":
            values.setdefault(code, []).append(value)
        elif code in values:
            errors.append((400, f"attribute {code!r} given twice"))
        else:
            values[code] = value
    for spec in definition:
        if spec["required"] and not values.get(spec["code"]):
            errors.append((400, f"attribute {spec['code']!r} is required"))
    return values


def parse_post(form, multi_items: Iterable[tuple[str, str]]) -> NewRequest:
    """Check a POST's arguments (``form``: first values; ``multi_items``: every pair, for attributes).
    Raises Open311Error: 400 with every fault found, or 404 for an unknown service_code."""
    code = str(form.get("service_code") or "").strip()
    if not code:
        raise bad("service_code was not provided")
    category = service(code)
    errors: list[tuple[int, str]] = []
    fields = {name: _one(form, name, MAX_FIELD, errors) for name in
              ("address_id", "email", "device_id", "account_id", "first_name", "last_name", "phone")}
    address = _one(form, "address_string", 255, errors)
    media_url = _one(form, "media_url", MAX_URL, errors)
    description = str(form.get("description") or "").replace("\r\n", "\n").strip()
    if CONTROL_RE.search(description):
        errors.append((400, "description contains control characters"))
    elif len(description) > MAX_DESCRIPTION:
        errors.append((400, f"description may have at most {MAX_DESCRIPTION} characters, it has "
                            f"{len(description)}"))
    lat_raw, long_raw = _one(form, "lat", 40, errors), _one(form, "long", 40, errors)
    lat = long = None
    if lat_raw or long_raw:
        if not (lat_raw and long_raw):
            errors.append((400, "lat and long must both be sent"))
        else:
            lat = _coordinate(lat_raw, "lat", 90, errors)
            long = _coordinate(long_raw, "long", 180, errors)
    if not (lat_raw or long_raw) and not address and not fields["address_id"]:
        errors.append((400, "a location is required: lat and long, address_string or address_id"))
    if fields["email"] and not portal.EMAIL_RE.match(fields["email"]):
        errors.append((400, "email is malformed"))
    if fields["phone"]:
        try:
            fields["phone"] = services.clean_phone(fields["phone"])
        except services.TicketInputError:
            errors.append((400, "phone is malformed"))
    if media_url and not re.match(r"^https?://[^\s<>\"']+\Z", media_url):
        errors.append((400, "media_url must be an http or https URL"))
    attributes = parse_attributes(multi_items, _attributes(), errors)
    if errors:
        raise Open311Error(400, *errors)
    return NewRequest(category=category, description=description, lat=lat, long=long, address_string=address,
                      media_url=media_url, attributes=attributes, **fields)


def create_request(new: NewRequest, client: ApiClient, clock: Optional[Clock] = None) -> tuple[Ticket, Open311Request]:
    """File the request as a ticket (channel api) in the same workflow as a phone ticket."""
    clock = clock or Clock()
    region = Region.get_or_none(Region.code == new.attributes["region"]) if new.attributes.get("region") else None
    place = new.address_string or (f"{new.lat:.6f},{new.long:.6f}" if new.lat is not None else "")
    content = new.description or f"{new.category.name}（{place or new.address_id}）"
    name = f"{new.last_name}{new.first_name}" if _is_cjk(new.last_name + new.first_name) else \
        " ".join(p for p in (new.first_name, new.last_name) if p)
    reply_by = "email" if new.email else ("phone" if new.phone else "none")
    details = [f"Open311 {client.name}"]
    for label, value in (("lat/long", f"{new.lat},{new.long}" if new.lat is not None else ""),
                         ("address_id", new.address_id), ("media_url", new.media_url),
                         ("device_id", new.device_id), ("account_id", new.account_id)):
        if value:
            details.append(f"{label}: {value}")
    try:
        with Ticket._meta.database.atomic():
            ticket = services.create_ticket(
                content, type=new.attributes.get("type") or "complaint", channel="api",
                citizen_phone=new.phone, citizen_name=name[:64], anonymous=not name,
                citizen_address=new.address_string, citizen_email=new.email, reply_by=reply_by,
                category=new.category, region=region, actor_label="Open311", clock=clock,
                note="；".join(details)[:2000])
            row = Open311Request.create(
                ticket=ticket, client=client, token=secrets.token_hex(12), service_code=new.category.code,
                lat=new.lat, long=new.long, address_id=new.address_id, device_id=new.device_id,
                account_id=new.account_id, media_url=new.media_url,
                attributes=json.dumps(new.attributes, ensure_ascii=False),
                created_at=services.to_db(clock.now()))
            ApiClient.update(last_used_at=services.to_db(clock.now())).where(ApiClient.id == client.id).execute()
    except services.TicketInputError as error:
        raise bad(str(error)) from None
    log.info("open311: %s filed ticket %s", client.prefix, ticket.number)
    return ticket, row


def _is_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def post_response(ticket: Ticket, row: Open311Request, client: ApiClient) -> list[dict]:
    """The POST's answer: service_request_id (realtime) or token (batch), never both."""
    out: dict[str, Any] = {"token": row.token} if client.mode == "batch" else {"service_request_id": ticket.number}
    out["service_notice"] = ("已受理，受理号 {0}，可拨打12345查询 / accepted as {0}; call 12345 to follow it"
                             .format(ticket.number) if client.mode == "realtime" else None)
    out["account_id"] = row.account_id or None
    return [out]


def token_lookup(token, client: Optional[ApiClient] = None) -> list[dict]:
    """GET service_request_id from a token."""
    token = str(token or "")
    row = Open311Request.get_or_none(Open311Request.token == token) if re.match(r"^[0-9a-f]{24}\Z", token) else None
    if row is None:
        raise not_found("token not found")
    return [{"service_request_id": row.ticket.number, "token": row.token}]


# ------------------------------------------------------------------------------------------ GET requests
def parse_w3c(value: str, name: str) -> dt.datetime:
    """A w3c datetime with its zone (2010-01-01T00:00:00Z) -> naive UTC; 400 otherwise."""
    value = str(value or "").strip()
    if not W3C_RE.match(value):
        raise bad(f"{name} must be a w3c datetime with a time zone, e.g. 2010-01-01T00:00:00Z")
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad(f"{name} is not a valid date and time") from None
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _csv(value, limit: int, name: str) -> list[str]:
    items = [v.strip() for v in str(value or "").split(",") if v.strip()]
    if len(items) > limit:
        raise bad(f"{name}: at most {limit} values")
    return items


def _statuses(words: Iterable[str]) -> list[str]:
    return [s for s, word in wf.CITIZEN_STATUS.items() if word in words]


def _visible_queries(client: Optional[ApiClient]) -> list:
    """The queries of what ``client`` may see: published cases, and the requests this client filed. Kept
    apart (not one query with an OR of two sub-selects, which no index serves): each runs on its own index,
    the published one on the partial indexes over disclosed tickets."""
    queries = [portal.published()]
    if client is not None:
        queries.append(Ticket.select().join(Open311Request, on=(Open311Request.ticket == Ticket.id))
                       .where(Open311Request.client == client))
    return queries


def find_requests(args: Mapping, client: Optional[ApiClient], now: dt.datetime) -> list["ListedRequest"]:
    """GET Service Requests: the filters of the specification over what ``client`` may see, newest first,
    at most MAX_RESULTS (as ListedRequest: the columns a view reads)."""
    conditions = []
    ids = _csv(args.get("service_request_id"), MAX_IDS, "service_request_id")
    if ids:  # overrides every other argument
        if not all(services.NUMBER_RE.match(i) for i in ids):
            raise bad("service_request_id must be 8-digit numbers, comma delimited")
        conditions.append(Ticket.number.in_(ids))
    else:
        codes = _csv(args.get("service_code"), 50, "service_code")
        if codes:
            conditions.append(Ticket.category.in_(Category.select(Category.id).where(Category.code.in_(codes))))
        words = _csv(args.get("status"), 2, "status")
        if any(w not in ("open", "closed") for w in words):
            raise bad("status must be open or closed, comma delimited")
        if words and set(words) != {"open", "closed"}:
            closed = _statuses(CLOSED_WORDS)
            status = Ticket.status.concat("")  # no index on the status: see portal.published
            conditions.append(status.in_(closed) if words == ["closed"] else status.not_in(closed))
        start = parse_w3c(args["start_date"], "start_date") if args.get("start_date") else None
        end = parse_w3c(args["end_date"], "end_date") if args.get("end_date") else None
        if start and end and start > end:
            raise bad("start_date is after end_date")
        if start and end and end - start > MAX_SPAN:
            raise bad("start_date and end_date may not span more than 90 days")
        end = end or (min(start + MAX_SPAN, now) if start else now)
        start = start or end - MAX_SPAN
        conditions.append((Ticket.created_at >= start) & (Ticket.created_at <= end))
    found: dict[int, ListedRequest] = {}
    for number, query in enumerate(_visible_queries(client)):
        listed = (query.select(*ListedRequest.FIELDS).where(*conditions)
                  .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(MAX_RESULTS).tuples())
        for values in listed:
            row = found.setdefault(values[0], ListedRequest(values))
            if number == 0:  # the first query is the published cases'
                row.published = True
    return sorted(found.values(), key=lambda t: (t.created_at, t.id), reverse=True)[:MAX_RESULTS]


class ListedRequest:
    """A ticket of a requests list with the columns ``request_view`` reads, built from a row's tuple: 1,000
    peewee model instances (every column converted and set, then copied again for the view) took a third of
    a full list's time. ``published`` is True when the published cases' query found it, else None (unknown:
    ``_Seen`` asks)."""

    FIELDS = (Ticket.id, Ticket.number, Ticket.status, Ticket.master, Ticket.reply, Ticket.content,
              Ticket.category, Ticket.department, Ticket.region, Ticket.created_at, Ticket.updated_at,
              Ticket.closed_at, Ticket.deadline, Ticket.citizen_name, Ticket.citizen_phone, Ticket.citizen_email,
              Ticket.citizen_address)
    __slots__ = ("id", "number", "status", "master_id", "reply", "content", "category_id", "department_id",
                 "region_id", "created_at", "updated_at", "closed_at", "deadline", "citizen_name", "citizen_phone",
                 "citizen_email", "citizen_address", "published")

    def __init__(self, values: tuple):
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)
        self.published = None

    @property
    def master(self) -> Ticket:
        """The merged duplicate's master (portal.shown_ticket reads it), read when asked."""
        return Ticket.get_by_id(self.master_id)


def find_request(number, client: Optional[ApiClient]) -> Ticket:
    """GET Service Request: one visible request, else 404 (an unpublished one looks like an unknown one)."""
    number = str(number or "")
    ticket = Ticket.get_or_none(Ticket.number == number) if services.NUMBER_RE.match(number) else None
    own = ticket is not None and client is not None and Open311Request.select().where(
        (Open311Request.ticket == ticket) & (Open311Request.client == client)).exists()
    if ticket is None or not (own or portal.is_published(ticket)):
        raise not_found("service_request_id not found")
    return ticket


def _w3c(clock: Clock, value) -> Optional[str]:
    return clock.local(value).isoformat(timespec="seconds") if value else None


class _Seen:
    """What the views of a list of requests share, read once: their Open311 rows, which are published, and
    the category, region and department names."""

    def __init__(self, tickets: list, client: Optional[ApiClient] = None, everyone: bool = False):
        """``everyone``: the views are for any client (``client`` None in a list: no Open311 row is read)."""
        ids = [t.id for t in tickets]
        self.rows = ({row.ticket_id: row for row in Open311Request.select().where(
            Open311Request.ticket.in_(ids) & (Open311Request.client == client))}
                     if ids and client is not None else {} if everyone else
                     {row.ticket_id: row for row in Open311Request.select().where(Open311Request.ticket.in_(ids))}
                     if ids else {})
        known = {t.id for t in tickets if getattr(t, "published", None)}  # found by the published query
        self.published = known | portal.published_ids([i for i in ids if i not in known])
        self.names = portal.Names()


def request_views(tickets: list, client: Optional[ApiClient], clock: Clock) -> list[dict]:
    """``request_view`` of each ticket of a list (a GET of up to 1,000; Ticket or ListedRequest): a few queries
    for all of them (for a client's call only its own Open311 rows, the rest are not its own)."""
    seen = _Seen(tickets, client, everyone=True)
    return [request_view(t, client, clock, seen) for t in tickets]


def request_view(ticket: Ticket, client: Optional[ApiClient], clock: Clock, seen: Optional[_Seen] = None) -> dict:
    """One request in the specification's field order. Published: the masked request and reply, the
    answering department and district. A client's own unpublished request: its status words, and the
    masked reply once the centre approved it."""
    seen = seen or _Seen([ticket])
    row = seen.rows.get(ticket.id)
    own = client is not None and row is not None and row.client_id == client.id
    public = ticket.id in seen.published
    shown = portal.shown_ticket(ticket)
    word = wf.citizen_status(shown.status)
    category = seen.names.category.get(ticket.category_id)

    def clean(text: str) -> Optional[str]:
        return privacy.public_text(text, ticket) or None

    reply = clean(shown.reply) if (public or (own and word in portal.REPLIED_WORDS)) else None
    closed = word in CLOSED_WORDS
    updated = ticket.closed_at if closed and ticket.closed_at else ticket.updated_at
    return {
        "service_request_id": ticket.number,
        "status": "closed" if closed else "open",
        "status_notes": wf.citizen_words(shown.status, "zh") + " / " + wf.citizen_words(shown.status, "en"),
        "service_name": category.name if category else None,
        "service_code": category.code if category else None,
        "description": clean(ticket.content) if (public or own) else None,
        "agency_responsible": seen.names.departments.get(ticket.department_id) if public or own else None,
        "service_notice": reply,
        "requested_datetime": _w3c(clock, ticket.created_at),
        "updated_datetime": _w3c(clock, updated),
        "expected_datetime": _w3c(clock, ticket.deadline) if not closed else None,
        "address": seen.names.regions.get(ticket.region_id),
        "address_id": (row.address_id or None) if own else None,
        "zipcode": None,
        "lat": row.lat if own else None,
        "long": row.long if own else None,
        "media_url": (row.media_url or None) if own else None,
    }


# ------------------------------------------------------------------------------------------ formats
def _value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(parent: ET.Element, tag: str, value) -> None:
    child = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, inner in value.items():
            _element(child, key, inner)
    elif isinstance(value, list):
        item_tag = LIST_ITEMS[tag]
        for inner in value:
            _element(child, item_tag, inner)
    else:
        child.text = _value(value)


# XML element of each list's items (the Spark convention the specification maps JSON from).
LIST_ITEMS = {"services": "service", "service_requests": "request", "attributes": "attribute",
              "values": "value", "errors": "error", "endpoints": "endpoint", "formats": "format"}


def to_xml(root: str, value) -> bytes:
    """The specification's XML: a declaration with encoding utf-8, no namespace; lists as repeated items."""
    element = ET.Element(root)
    if isinstance(value, list):
        for item in value:
            _element(element, LIST_ITEMS[root], item)
    else:
        for key, inner in value.items():
            _element(element, key, inner)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8",
                                                                      xml_declaration=False)


def to_json(value) -> bytes:
    """JSON in UTF-8 (Chinese kept as it is)."""
    return json.dumps(value, ensure_ascii=False).encode()


def errors_body(error: Open311Error) -> list[dict]:
    return [{"code": code, "description": description} for code, description in error.errors]

"""Open311 GeoReport v2 at /open311/v2 (issue 11 item 6): the specification's shapes field by field (XML and
JSON), requests becoming api tickets, keys issued by the administrator, bad input, limits, audit and
isolation, through the Flask client on both databases."""
from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET

import pytest

from caseflow import org, services
from caseflow import workflow as wf
from caseflow.models import Ticket, TicketHistory
from channels import open311
from channels.models import ApiClient, Open311Request
from webui.models import AuditLog

from .test_portal import _closed_web_case, known_captcha, receipt, submit  # noqa: F401 (fixture)

BASE = "/open311/v2"
# The specification's example POST, with this jurisdiction's service code and attributes.
SPEC_POST = {"jurisdiction_id": "12345", "service_code": "NOISE", "lat": "37.76524078", "long": "-122.4212043",
             "address_string": "1234 5th street", "email": "smit333@sfgov.edu", "device_id": "tt222111",
             "account_id": "123456", "first_name": "john", "last_name": "smith", "phone": "111111111",
             "description": "A large sinkhole is destroying the street",
             "media_url": "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg",
             "attribute[type]": "complaint"}


@pytest.fixture
def key(world, clock):
    """A realtime client's key, issued as the administrator does."""
    _client, value = open311.issue_key("城市助手 App", by=world.admin, clock=clock)
    return value


def xml(response) -> ET.Element:
    body = response.get_data()
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>'), body[:60]
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    return ET.fromstring(body)


def as_json(response):
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response.get_data(as_text=True))


def post(client, fmt="xml", **fields):
    return client.post(f"{BASE}/requests.{fmt}", data=fields)


def errors(response, fmt):
    if fmt == "json":
        body = as_json(response)
        assert all(set(e) == {"code", "description"} for e in body)
        return [(e["code"], e["description"]) for e in body]
    root = xml(response)
    assert root.tag == "errors" and all(e.tag == "error" for e in root)
    return [(int(e.findtext("code")), e.findtext("description")) for e in root]


# ------------------------------------------------------------------------------------------ discovery
def test_discovery_in_xml_and_json_field_by_field(client, world):
    """Should answer /open311/discovery.xml and .json with the Service Discovery fields in the specification's
    order: the GeoReport v2 endpoint (its URL working), test type outside production, both formats, the
    configured contact and key service; the changeset moves to the last category or region change."""
    root = xml(client.get("/open311/discovery.xml"))
    assert root.tag == "discovery" and [c.tag for c in root] == ["changeset", "contact", "key_service", "endpoints"]
    endpoint = root.find("endpoints").find("endpoint")
    assert [c.tag for c in endpoint] == ["specification", "url", "changeset", "type", "formats"]
    assert [f.tag for f in endpoint.find("formats")] == ["format", "format"]
    body = as_json(client.get("/open311/discovery.json"))
    assert body == {"changeset": open311.ENDPOINT_CHANGESET, "contact": root.findtext("contact"),
                    "key_service": root.findtext("key_service"),
                    "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                                   "url": "http://localhost/open311/v2", "changeset": open311.ENDPOINT_CHANGESET,
                                   "type": "test", "formats": ["text/xml", "application/json"]}]}
    assert "12345" in body["contact"] and body["key_service"]
    assert xml(client.get(body["endpoints"][0]["url"][len("http://localhost"):] + "/services.xml")).tag == "services"
    # An administrator's change at 03:04 UTC tomorrow: later than the endpoint's own changeset and than any row
    # written meanwhile, whatever today's date (a fixed date becomes the past, then neither).
    changed = (dt.datetime.utcnow() + dt.timedelta(days=1)).replace(hour=3, minute=4, second=0, microsecond=0)
    assert f"{changed:%Y-%m-%d} 11:04" > open311.ENDPOINT_CHANGESET
    AuditLog.create(action="org_region", obj_type="org", at=changed)
    assert as_json(client.get("/open311/discovery.json"))["changeset"] == f"{changed:%Y-%m-%d} 11:04"  # local, sortable
    assert AuditLog.select().where(AuditLog.action == "open311_discovery").count() == 3


# Every error the specification lists for each method, as (method, path under /open311/v2, form, status): the
# answer is that status with the error array, in XML and in JSON alike.
SPEC_ERRORS = [
    ("GET", "/services.{fmt}?jurisdiction_id=sfgov.org", None, 404),
    ("GET", "/services/NOPE.{fmt}", None, 404),
    ("GET", "/services/NOISE.{fmt}?jurisdiction_id=sfgov.org", None, 404),
    ("POST", "/requests.{fmt}", {"service_code": "NOISE", "address_string": "x"}, 403),
    ("POST", "/requests.{fmt}", {"api_key": "{key}", "service_code": "NOISE", "address_string": "x",
                                  "jurisdiction_id": "sfgov.org"}, 404),
    ("POST", "/requests.{fmt}", {"api_key": "{key}", "address_string": "x"}, 400),
    ("POST", "/requests.{fmt}", {"api_key": "{key}", "service_code": "NOPE", "address_string": "x"}, 404),
    ("POST", "/requests.{fmt}", {"api_key": "{key}", "service_code": "NOISE"}, 400),
    ("GET", "/requests.{fmt}?jurisdiction_id=sfgov.org", None, 404),
    ("GET", "/requests.{fmt}?api_key=o311_wrong", None, 403),
    ("GET", "/requests.{fmt}?status=pending", None, 400),
    ("GET", "/requests.{fmt}?start_date=yesterday", None, 400),
    ("GET", "/requests/{number}.{fmt}?jurisdiction_id=sfgov.org", None, 404),
    ("GET", "/requests/{number}.{fmt}", None, 404),  # not published, no key: as if unknown
    ("GET", "/requests/99999999.{fmt}", None, 404),
    ("GET", "/requests/abc.{fmt}", None, 404),
    ("GET", "/tokens/{token}.{fmt}?jurisdiction_id=sfgov.org", None, 404),
    ("GET", "/tokens/{zeros}.{fmt}", None, 404),
    ("GET", "/tokens/xyz.{fmt}", None, 404),
    ("GET", "/discovery.{fmt}?jurisdiction_id=sfgov.org", None, 404),
]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_every_method_answers_its_errors_in_both_formats(client, world, key, fmt):
    """Should answer each error the specification lists for discovery, services, service definitions, POST and
    GET requests, one request and tokens with its HTTP status and the error array (code = status, a
    description), in XML and in JSON, and then still serve the same call put right."""
    _c, batch_key = open311.issue_key("批量接入", mode="batch", by=world.admin)
    token = as_json(post(client, "json", api_key=batch_key, **SPEC_POST))[0]["token"]
    number = Open311Request.get(Open311Request.token == token).ticket.number
    values = {"fmt": fmt, "key": key, "token": token, "number": number, "zeros": "0" * 24}
    for method, path, form, status in SPEC_ERRORS:
        url = ("/open311" if path.startswith("/discovery") else BASE) + path.format(**values)
        form = {name: value.format(**values) for name, value in (form or {}).items()}
        response = client.post(url, data=form) if method == "POST" else client.get(url)
        found = errors(response, fmt)
        assert response.status_code == status, (url, form, found)
        assert [code for code, _d in found] == [status] * len(found) and all(d for _c, d in found), (url, found)
    for path in ("/services.{fmt}", "/services/NOISE.{fmt}", "/requests.{fmt}", "/tokens/{token}.{fmt}",
                 "/requests/{number}.{fmt}?api_key=" + batch_key):
        assert client.get(BASE + path.format(**values)).status_code == 200, path
    assert post(client, fmt, api_key=key, **SPEC_POST).status_code == 200


# ------------------------------------------------------------------------------------------ services
def test_service_list_in_xml_and_json_field_by_field(client, world):
    """Should list each active category as a service with exactly the specification's fields, in XML
    (<services><service>...) and JSON (an array), group being the top-level category."""
    child = org.create_category("NOISE_NIGHT", "夜间施工", world.noise)
    hidden = org.create_category("OLD", "停用分类")
    type(hidden).update(active=False).where(type(hidden).id == hidden.id).execute()
    root = xml(client.get(f"{BASE}/services.xml"))
    assert root.tag == "services"
    services_ = {s.findtext("service_code"): s for s in root}
    assert set(services_) == {"NOISE", "NOISE_NIGHT"}
    night = services_["NOISE_NIGHT"]
    assert [c.tag for c in night] == ["service_code", "service_name", "description", "metadata", "type",
                                      "keywords", "group"]
    assert (night.findtext("service_name"), night.findtext("metadata"), night.findtext("type"),
            night.findtext("group"), night.findtext("keywords")) == ("夜间施工", "true", "realtime", "噪音扰民",
                                                                      "噪音扰民, 夜间施工")
    rows = as_json(client.get(f"{BASE}/services.json"))
    assert isinstance(rows, list) and rows[1] == {
        "service_code": child.code, "service_name": "夜间施工", "description": "噪音扰民 > 夜间施工",
        "metadata": True, "type": "realtime", "keywords": "噪音扰民, 夜间施工", "group": "噪音扰民"}


def test_service_definition_field_by_field(client, world):
    """Should define the attributes of a service as the specification's example does (XML and JSON)."""
    org.create_region("R1", "东城区")
    root = xml(client.get(f"{BASE}/services/NOISE.xml"))
    assert root.tag == "service_definition" and [c.tag for c in root] == ["service_code", "attributes"]
    attribute = root.find("attributes").findall("attribute")[0]
    assert [c.tag for c in attribute] == ["variable", "code", "datatype", "required", "datatype_description",
                                          "order", "description", "values"]
    assert (attribute.findtext("variable"), attribute.findtext("code"), attribute.findtext("datatype"),
            attribute.findtext("required"), attribute.findtext("order")) == ("true", "type", "singlevaluelist",
                                                                              "false", "1")
    values = attribute.find("values").findall("value")
    assert [(v.findtext("key"), [c.tag for c in v]) for v in values][0] == ("complaint", ["key", "name"])
    body = as_json(client.get(f"{BASE}/services/NOISE.json"))
    assert body["service_code"] == "NOISE" and [a["code"] for a in body["attributes"]] == ["type", "region"]
    assert body["attributes"][0]["datatype_description"] is None
    assert {"key": "R1", "name": "东城区"} in body["attributes"][1]["values"]


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_unknown_service_code_is_a_404_array(client, world, fmt):
    """Should answer an unknown service code with 404 and the error array."""
    response = client.get(f"{BASE}/services/NOPE.{fmt}")
    assert response.status_code == 404 and errors(response, fmt)[0][0] == 404


# ------------------------------------------------------------------------------------------ POST
def test_post_the_specification_example_files_an_api_ticket(client, world, key, clock):
    """Should file the specification's example request as a ticket on channel api in the normal workflow,
    answer <service_requests><request> with service_request_id, service_notice and account_id, keep the
    location fields, and audit the call."""
    response = post(client, api_key=key, **SPEC_POST)
    assert response.status_code == 200, response.get_data(as_text=True)
    root = xml(response)
    assert root.tag == "service_requests"
    request_ = root.find("request")
    assert [c.tag for c in request_] == ["service_request_id", "service_notice", "account_id"]
    number = request_.findtext("service_request_id")
    assert request_.findtext("account_id") == "123456"
    ticket = Ticket.get(Ticket.number == number)
    assert (ticket.channel, ticket.status, ticket.type, ticket.category_id) == ("api", wf.RECORDED, "complaint",
                                                                                 world.noise.id)
    assert (ticket.citizen_name, ticket.citizen_phone, ticket.citizen_email, ticket.citizen_address) == (
        "john smith", "111111111", "smit333@sfgov.edu", "1234 5th street")
    assert ticket.content == "A large sinkhole is destroying the street" and ticket.reply_by == "email"
    row = Open311Request.get(Open311Request.ticket == ticket)
    assert (row.lat, row.long, row.device_id, row.media_url) == (37.76524078, -122.4212043, "tt222111",
                                                                 SPEC_POST["media_url"])
    note = TicketHistory.get((TicketHistory.ticket == ticket) & (TicketHistory.action == "create")).note
    assert "Open311 城市助手 App" in note and "media_url" in note
    assert AuditLog.select().where((AuditLog.action == "open311_post") & AuditLog.detail.contains(number)).exists()
    # The centre dispatches it like any ticket.
    services.dispatch(ticket, world.centre_user, world.east, clock=clock)
    body = as_json(post(client, "json", api_key=key, **{**SPEC_POST, "description": "second"}))
    assert list(body[0]) == ["service_request_id", "service_notice", "account_id"]


def test_batch_client_gets_a_token_and_the_token_gives_the_id(client, world, clock):
    """Should answer a batch client with a token (and no service_request_id) that tokens/{id} turns into
    the service_request_id, in XML and JSON."""
    _c, batch_key = open311.issue_key("批量接入", mode="batch", by=world.admin, clock=clock)
    body = as_json(post(client, "json", api_key=batch_key, **SPEC_POST))
    assert "service_request_id" not in body[0]
    token = body[0]["token"]
    number = Open311Request.get(Open311Request.token == token).ticket.number
    assert as_json(client.get(f"{BASE}/tokens/{token}.json")) == [{"service_request_id": number, "token": token}]
    request_ = xml(client.get(f"{BASE}/tokens/{token}.xml")).find("request")
    assert [c.tag for c in request_] == ["service_request_id", "token"] and request_.findtext("token") == token
    assert client.get(f"{BASE}/tokens/{'0' * 24}.xml").status_code == 404
    assert xml(client.get(f"{BASE}/services.xml?api_key={batch_key}")).find("service").findtext("type") == "batch"


@pytest.mark.parametrize("fmt", ["xml", "json"])
def test_bad_keys_are_403_with_the_error_array(client, world, key, clock, fmt):
    """Should refuse a POST without a key, with a wrong key and with a revoked key (403), filing nothing."""
    for sent in ({}, {"api_key": "xyz"}, {"api_key": key[:-2] + "zz"}):
        response = post(client, fmt, **SPEC_POST, **sent)
        assert response.status_code == 403 and errors(response, fmt)[0][0] == 403
    open311.revoke(ApiClient.get(), by=world.admin, clock=clock)
    assert post(client, fmt, api_key=key, **SPEC_POST).status_code == 403
    assert client.get(f"{BASE}/requests.{fmt}?api_key=wrong").status_code == 403
    assert Ticket.select().where(Ticket.channel == "api").count() == 0


@pytest.mark.parametrize("fmt", ["xml", "json"])
@pytest.mark.parametrize("change, status, words", [
    ({"service_code": ""}, 400, "service_code was not provided"),
    ({"service_code": "NOPE"}, 404, "not found"),
    ({"lat": "", "long": "", "address_string": ""}, 400, "location is required"),
    ({"long": ""}, 400, "lat and long must both be sent"),
    ({"lat": "91"}, 400, "lat must be"), ({"long": "abc"}, 400, "long must be"),
    ({"lat": "nan"}, 400, "lat must be"),
    ({"description": "坑" * 4001}, 400, "at most 4000 characters, it has 4001"),
    ({"email": "x@"}, 400, "email is malformed"), ({"phone": "call me"}, 400, "phone is malformed"),
    ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
    ({"attribute[type]": "harassment"}, 400, "is not one of its values"),
    ({"attribute[WHISPAWN]": "123456"}, 400, "is not defined for this service"),
    ({"jurisdiction_id": "sfgov.org"}, 404, "jurisdiction_id"),
    ({"first_name": "a\x01b"}, 400, "control characters"),
])
def test_bad_posts_are_refused_with_the_error_array(client, world, key, fmt, change, status, words):
    """Should refuse each bad argument with the specification's status and an error array saying why,
    filing nothing."""
    response = post(client, fmt, api_key=key, **{**SPEC_POST, **change})
    found = errors(response, fmt)
    assert response.status_code == status and any(words in d for _c, d in found), found
    assert Ticket.select().where(Ticket.channel == "api").count() == 0


def test_several_faults_come_back_together_and_address_alone_is_a_location(client, world, key):
    """Should list every fault of a POST in one array, and accept address_string or address_id alone."""
    found = errors(post(client, api_key=key, service_code="NOISE", email="x@", phone="no"), "xml")
    assert len(found) == 3
    for location in ({"address_string": "幸福路"}, {"address_id": "545483"}):
        assert post(client, api_key=key, service_code="NOISE", **location).status_code == 200
    ticket = Ticket.select().where(Ticket.channel == "api").order_by(Ticket.id.desc()).first()
    assert ticket.content == "噪音扰民（545483）" and ticket.anonymous and ticket.reply_by == "none"


def test_a_body_over_the_limit_is_refused(client, world, key):
    """Should refuse a POST body over 64 KB from its length with 413 and the error array."""
    response = post(client, api_key=key, **{**SPEC_POST, "description": "x" * 70_000})
    assert response.status_code == 413 and errors(response, "xml")[0][0] == 413


def test_script_in_every_field_stays_inert(client, world, key):
    """Should store script verbatim and send it back escaped in XML and as a JSON string, never as markup,
    with nosniff and a CSP that allows nothing."""
    script = "<script>alert(1)</script>"
    number = xml(post(client, api_key=key, **{**SPEC_POST, "description": script, "first_name": script,
                                               "device_id": script})).find("request").findtext("service_request_id")
    response = client.get(f"{BASE}/requests/{number}.xml?api_key={key}")
    assert b"<script>" not in response.get_data() and b"&lt;script&gt;" in response.get_data()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert as_json(client.get(f"{BASE}/requests/{number}.json?api_key={key}"))[0]["description"] == script


# ------------------------------------------------------------------------------------------ GET
def test_own_request_status_and_approved_reply_come_back_masked(client, world, key, clock):
    """Should show the filing client its request: open with the citizen words as status_notes, then the
    approved reply masked as service_notice, closed once closed; the fields in the specification's order
    and never the citizen's name, phone or e-mail."""
    number = xml(post(client, api_key=key, **{**SPEC_POST, "description": "我电话111111111，门口有坑"})).find(
        "request").findtext("service_request_id")
    fields = ["service_request_id", "status", "status_notes", "service_name", "service_code", "description",
              "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
              "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"]
    request_ = xml(client.get(f"{BASE}/requests/{number}.xml?api_key={key}")).find("request")
    assert [c.tag for c in request_] == fields
    assert (request_.findtext("status"), request_.findtext("status_notes"), request_.findtext("service_code"),
            request_.findtext("requested_datetime")) == ("open", "已受理 / accepted", "NOISE",
                                                         "2026-03-04T10:00:00+08:00")
    assert "111111111" not in request_.findtext("description") and request_.findtext("service_notice") == ""
    ticket = Ticket.get(Ticket.number == number)
    ticket = services.dispatch(ticket, world.centre_user, world.east, clock=clock)
    ticket = services.transition(ticket, "accept", world.east_user, clock=clock)
    ticket = services.transition(ticket, "reply", world.east_user, clock=clock, reply="已联系john smith（111111111）填平")
    assert as_json(client.get(f"{BASE}/requests/{number}.json?api_key={key}"))[0]["service_notice"] is None
    ticket = services.transition(ticket, "approve", world.centre_user, clock=clock)
    row = as_json(client.get(f"{BASE}/requests/{number}.json?api_key={key}"))[0]
    assert row["status"] == "open" and row["status_notes"] == "已答复 / answered"
    assert "填平" in row["service_notice"] and "111111111" not in row["service_notice"]
    assert row["agency_responsible"] == "东区" and row["lat"] == 37.76524078
    ticket = services.call_back(ticket, world.centre_user, "satisfied", clock=clock)
    services.transition(ticket, "close", world.centre_user, clock=clock)
    row = as_json(client.get(f"{BASE}/requests.json?api_key={key}&status=closed"))[0]
    assert (row["service_request_id"], row["status"], row["expected_datetime"]) == (number, "closed", None)
    body = client.get(f"{BASE}/requests.json?api_key={key}").get_data(as_text=True)
    for secret in ("smit333", "john smith", "111111111", "tt222111"):
        assert secret not in body, secret


def test_get_without_a_key_shows_only_published_cases(app, client, world, key, clock):
    """Should show, without a key, only cases the centre published with consent (masked, reply as
    service_notice), never an open, unconsented or undisclosed case nor another client's request."""
    published, _ = _closed_web_case(client, world, clock, content="公开的井盖问题", category=str(world.noise.id))
    hidden, _ = _closed_web_case(client, world, clock, publish=False, content="未公开的井盖问题")
    own = xml(post(client, api_key=key, **SPEC_POST)).find("request").findtext("service_request_id")
    anonymous = app.test_client()
    rows = as_json(anonymous.get(f"{BASE}/requests.json"))
    assert [r["service_request_id"] for r in rows] == [published.number]
    row = rows[0]
    assert row["status"] == "closed" and row["service_code"] == "NOISE" and "公开的井盖问题" in row["description"]
    assert "王小明" not in json.dumps(row, ensure_ascii=False) and "王**" in row["service_notice"]
    assert row["lat"] is None and row["media_url"] is None
    for number in (hidden.number, own, world.east_ticket.number):
        for fmt in ("xml", "json"):
            response = anonymous.get(f"{BASE}/requests/{number}.{fmt}")
            assert response.status_code == 404 and errors(response, fmt)[0][0] == 404
    _other, other_key = open311.issue_key("另一接入方", by=world.admin, clock=clock)
    assert anonymous.get(f"{BASE}/requests/{own}.json?api_key={other_key}").status_code == 404
    assert as_json(anonymous.get(f"{BASE}/requests.json?service_request_id={own},{hidden.number}")) == []


def test_a_list_shows_each_request_as_its_own_call_does(app, client, world, key, clock):
    """Should give every request of a list exactly the fields its single-request call gives (the list reads
    columns, the single call a ticket): a client's own open request, its own request merged into another (the
    master's status), a published case that is also its own, and without a key the published case alone."""
    own = xml(post(client, api_key=key, **SPEC_POST)).find("request").findtext("service_request_id")
    merged = xml(post(client, api_key=key, **{**SPEC_POST, "description": "重复：门口有坑"})).find(
        "request").findtext("service_request_id")
    services.transition(Ticket.get(Ticket.number == merged), "merge", world.centre_user, clock=clock,
                        master=Ticket.get(Ticket.number == own))
    published, _ = _closed_web_case(client, world, clock, content="公开的井盖问题", category=str(world.noise.id))
    Open311Request.create(ticket=published, client=ApiClient.get(ApiClient.name == "城市助手 App"),
                          token="t" * 24, service_code="NOISE", lat=30.1, long=120.2, created_at=published.created_at)
    for query in (f"api_key={key}", ""):
        listed = as_json(client.get(f"{BASE}/requests.json?{query}"))
        assert {r["service_request_id"] for r in listed} == ({own, merged, published.number} if query
                                                             else {published.number})
        for row in listed:
            one = as_json(client.get(f"{BASE}/requests/{row['service_request_id']}.json?{query}"))
            assert [row] == one, row["service_request_id"]
    by_number = {r["service_request_id"]: r for r in as_json(client.get(f"{BASE}/requests.json?api_key={key}"))}
    assert by_number[merged]["status_notes"] == by_number[own]["status_notes"] == "已受理 / accepted"
    assert by_number[published.number]["lat"] == 30.1 and "公开的井盖问题" in by_number[published.number]["description"]
    assert by_number[published.number]["service_notice"]


def test_get_filters(client, world, key, clock):
    """Should filter by service_request_id (overriding the rest), service_code, status and a date range of
    at most 90 days in w3c format; malformed values are 400 with the array."""
    a = xml(post(client, api_key=key, **SPEC_POST)).find("request").findtext("service_request_id")
    other = org.create_category("LIGHT", "路灯")
    b = xml(post(client, api_key=key, **{**SPEC_POST, "service_code": other.code})).find(
        "request").findtext("service_request_id")

    def ids(query):
        return [r["service_request_id"] for r in as_json(client.get(f"{BASE}/requests.json?api_key={key}&{query}"))]

    assert set(ids("")) == {a, b}
    assert ids("service_code=LIGHT") == [b] and set(ids("service_code=LIGHT,NOISE")) == {a, b}
    assert set(ids("status=open")) == {a, b} and ids("status=closed") == []
    assert ids(f"service_request_id={a}&status=closed") == [a]
    assert set(ids("start_date=2026-03-04T00:00:00Z&end_date=2026-03-05T00:00:00%2B08:00")) == {a, b}
    assert ids("start_date=2026-03-05T00:00:00Z") == [] and ids("end_date=2026-03-01T00:00:00Z") == []
    for query, words in (("start_date=2026-03-04", "w3c"), ("end_date=yesterday", "w3c"),
                         ("start_date=2026-02-30T00:00:00Z", "valid"),
                         ("start_date=2025-01-01T00:00:00Z&end_date=2026-03-04T00:00:00Z", "90 days"),
                         ("start_date=2026-03-05T00:00:00Z&end_date=2026-03-04T00:00:00Z", "after"),
                         ("status=pending", "open or closed"), ("service_request_id=abc", "8-digit")):
        response = client.get(f"{BASE}/requests.xml?{query}")
        found = errors(response, "xml")
        assert response.status_code == 400 and words in found[0][1], (query, found)


def test_jurisdiction_format_and_unknown_paths(client, world):
    """Should take the configured jurisdiction_id or none, answer another with 404, and answer unknown
    formats and paths under the endpoint with the 404 array."""
    assert client.get(f"{BASE}/services.xml?jurisdiction_id=12345").status_code == 200
    response = client.get(f"{BASE}/services.json?jurisdiction_id=sfgov.org")
    assert response.status_code == 404 and "jurisdiction_id" in errors(response, "json")[0][1]
    for path in ("/services.html", "/discovery.json", "/requests/12345678/notes.xml"):
        assert client.get(BASE + path).status_code == 404, path


def test_every_call_is_audited_and_limited_per_address_and_key(app, client, world, key):
    """Should audit each call with the address and client, and refuse calls over the per-address and
    per-key limits with 429 and the error array."""
    app.config["HOTLINE_OPEN311_PER_ADDRESS"] = 3
    for _ in range(3):
        assert client.get(f"{BASE}/services.json").status_code == 200
    response = client.get(f"{BASE}/services.json")
    assert response.status_code == 429 and errors(response, "json")[0][0] == 429
    assert AuditLog.select().where(AuditLog.action == "open311_services").count() == 3
    assert AuditLog.select().where(AuditLog.action == "open311_refused").count() == 1
    app.config["HOTLINE_OPEN311_PER_ADDRESS"] = 100
    app.config["HOTLINE_OPEN311_POSTS_PER_HOUR"] = 2
    for _ in range(2):
        assert post(client, api_key=key, **SPEC_POST).status_code == 200
    assert post(client, api_key=key, **SPEC_POST).status_code == 429
    client_id = str(ApiClient.get().id)
    assert AuditLog.select().where((AuditLog.action == "open311_post") & (AuditLog.obj_id == client_id)
                                   & (AuditLog.ip == "127.0.0.1")).count() == 2


# ------------------------------------------------------------------------------------------ keys
def test_administrator_issues_lists_and_revokes_keys(world, login):
    """Should let the administrator issue a key shown once (only its hash stored), list it without the
    key, and revoke it; both audited; other roles are refused."""
    admin = login(world.admin)
    page = admin.post_form("/admin/api-clients/", {"name": "城市助手", "mode": "realtime"}).get_data(as_text=True)
    import re

    key = re.search(r'data-testid="new-key">([^<]+)<', page).group(1)
    client = ApiClient.get()
    assert client.key_hash == open311.hash_key(key) and key not in client.key_hash and open311.client_for(key)
    listing = admin.get("/admin/api-clients/").get_data(as_text=True)
    assert "城市助手" in listing and key not in listing and client.prefix in listing
    assert AuditLog.select().where(AuditLog.action == "api_key_issue").exists()
    assert admin.post_form(f"/admin/api-clients/{client.id}/revoke", {}).status_code == 303
    assert open311.client_for(key) is None
    assert AuditLog.select().where(AuditLog.action == "api_key_revoke").exists()
    assert admin.post_form("/admin/api-clients/", {"name": "", "mode": "realtime"}).status_code == 303
    assert admin.post_form("/admin/api-clients/", {"name": "x", "mode": "sometimes"}).status_code == 303
    assert ApiClient.select().count() == 1
    for user in (world.centre_user, world.agent):
        assert login(user).get("/admin/api-clients/").status_code == 403
    assert login(world.agent).post_form(f"/admin/api-clients/{client.id}/revoke", {}).status_code == 403

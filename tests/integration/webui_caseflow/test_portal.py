"""The public website (issue 11): write in, follow, add information, rate, publication, its limits and
its security, through the Flask client on both databases."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import re
from urllib.parse import parse_qsl

import pytest

from caseflow import org, pins, portal, services
from caseflow import workflow as wf
from caseflow.models import Attachment, Notification, Ticket, TicketHistory, WebCase
from channels.models import Message
from channels.receipts import Receipts
from tests.pin_check import pin_in
from webui.models import AuditLog

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def known_captcha(monkeypatch):
    """Pictures of one letter, so a test can type the answer; the real check still runs."""
    import webui.blueprints.portal as portal_bp

    monkeypatch.setattr(portal_bp, "CAPTCHA_ALPHABET", "A")


def form(**overrides) -> dict:
    data = {"type": "complaint", "content": "幸福小区门口夜间施工噪音很大，影响休息。", "name": "王小明",
            "phone": "13700001111", "email": "", "reply_by": "phone", "address": "幸福路8号3栋", "consent": "1",
            "captcha": "AAAAA"}
    data.update(overrides)
    return data


def submit(client, url="/write", files=None, **overrides):
    """Fetch a picture (as a browser does) and post the form with the CSRF token."""
    client.get("/captcha.png")
    data = form(**overrides)
    for name, content in files or []:
        data.setdefault("files", []).append((io.BytesIO(content), name))
    return client.post(url, data={**data, "csrf_token": client.csrf_token()}, content_type="multipart/form-data")


def receipt(response) -> tuple[str, str]:
    page = response.get_data(as_text=True)
    number = re.search(r'data-testid="number">(\d{8})<', page).group(1)
    code = re.search(r'data-testid="code">([A-Z0-9]+)<', page).group(1)
    return number, code


def follow(client, number, code):
    return client.post("/follow", data={"number": number, "code": code, "csrf_token": client.csrf_token()})


# ----------------------------------------------------------------------------------------- frame
def test_root_is_the_public_site_and_staff_land_on_staff(app, client, world, login):
    """Should serve the public home page at / without a login (with its own strict CSP) and send staff from
    the login to /staff, which leads to their desk."""
    response = client.get("/")
    assert response.status_code == 200 and "我要写信" in response.get_data(as_text=True)
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self';" in csp and "unsafe-inline" not in csp
    staff = app.test_client()
    assert staff.login(world.centre_user.operator_no, "correct-horse-1").headers["Location"] == "/staff"
    assert staff.get("/staff").headers["Location"] == "/centre"


def test_english_on_request(client, db):
    """Should answer in Chinese by default and in English with ?lang=en or an English browser."""
    assert "我要写信" in client.get("/").get_data(as_text=True)
    assert "Write to us" in client.get("/?lang=en").get_data(as_text=True)
    assert "Write to us" in client.get("/write").get_data(as_text=True)  # kept for this browser
    other = client.application.test_client()
    assert "Write to us" in other.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)


def test_every_public_form_needs_the_csrf_token(client, world):
    """Should refuse every public form posted without the session's token."""
    for url in ("/write", "/mailbox", "/follow"):
        assert client.post(url, data=form()).status_code == 400, url
    assert Ticket.select().count() == 2


# ----------------------------------------------------------------------------------------- write in
def test_write_in_creates_a_web_ticket_with_files_and_shows_number_and_code_once(app, client, world, clock):
    """Should record a web ticket in the normal workflow with its checked attachments (sha256), show the
    8-digit number and the query code, store only the code's hash, and audit the submission."""
    response = submit(client, files=[("photo.png", PNG), ("letter.pdf", PDF)], category=str(world.noise.id))
    assert response.status_code == 200, response.get_data(as_text=True)
    number, code = receipt(response)
    ticket = Ticket.get(Ticket.number == number)
    assert (ticket.channel, ticket.status, ticket.type, ticket.category_id) == ("web", wf.RECORDED, "complaint",
                                                                                 world.noise.id)
    case = WebCase.get(WebCase.ticket == ticket)
    key = app.config["SECRET_KEY"].encode()
    assert case.consent and code not in case.code_hash and portal.code_matches(case.code_hash, code, key)
    files = list(Attachment.select().where(Attachment.ticket == ticket).order_by(Attachment.id))
    assert [(f.content_type, len(f.sha256)) for f in files] == [("image/png", 64), ("application/pdf", 64)]
    assert AuditLog.select().where((AuditLog.action == "portal_submit") & (AuditLog.obj_id == number)).exists()
    # The ticket is the centre's to dispatch like a phone ticket.
    services.dispatch(ticket, world.centre_user, world.east, clock=clock)


def test_mailbox_goes_to_the_centre_leaders(client, world):
    """Should file a 市长信箱 letter on the mailbox channel, tell each centre leader, and list it on the
    centre's 市长信箱 list."""
    number, _code = receipt(submit(client, "/mailbox", type="suggestion", content="建议增加公交线路"))
    ticket = Ticket.get(Ticket.number == number)
    assert ticket.channel == "mailbox"
    assert Notification.select().where((Notification.user == world.leader) & (Notification.ticket == ticket)
                                       & (Notification.kind == "mailbox")).exists()
    assert [t.number for t in services.centre_queue(world.centre_user, "mailbox")] == [number]


@pytest.mark.parametrize("overrides, field", [
    ({"type": "harassment"}, "type"), ({"content": ""}, "content"), ({"content": "字" * 3001}, "content"),
    ({"phone": "not-a-phone"}, "phone"), ({"phone": "", "reply_by": "phone"}, "phone"),
    ({"phone": "", "reply_by": "sms"}, "phone"), ({"reply_by": "email"}, "email"),
    ({"email": "x@"}, "email"), ({"name": ""}, "name"), ({"reply_by": "pigeon"}, "reply_by"),
    ({"category": "999999"}, "category"), ({"region": "abc"}, "region"), ({"address": "路" * 201}, "address"),
])
def test_bad_fields_are_refused_clearly_and_nothing_is_stored(client, world, overrides, field):
    """Should refuse each bad field with a message on the form (over-long text is refused, never cut)."""
    response = submit(client, **overrides)
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'data-testid="error"' in page
    assert f'name="{field}"' in page or field in ("type", "reply_by")
    assert WebCase.select().count() == 0
    if overrides.get("content", "").startswith("字"):
        assert "3000" in page and "3001" in page


def test_anonymous_needs_no_name_and_keeps_none(client, world):
    """Should accept an anonymous letter without a name and store no name even if one was typed."""
    number, _ = receipt(submit(client, anonymous="1", name="王小明"))
    ticket = Ticket.get(Ticket.number == number)
    assert ticket.anonymous and ticket.citizen_name == ""


def test_a_png_that_is_html_and_other_types_are_refused(app, client, world):
    """Should refuse a .png holding HTML, an .html file and an .svg, storing neither ticket nor file."""
    root = app.extensions["hotline"].config.attachments_dir
    for name, content in (("cat.png", b"<html><script>alert(1)</script></html>"), ("page.html", b"<p>x</p>"),
                          ("x.svg", b"<svg/>"), ("y.pdf", PNG)):
        response = submit(client, files=[(name, content)], content=f"文件测试 {name}")
        assert response.status_code == 400 and "files" in response.get_data(as_text=True), name
    assert WebCase.select().count() == 0 and Attachment.select().count() == 0
    assert not [p for p in root.rglob("*") if p.is_file()] if root.exists() else True


def test_a_50_mb_upload_is_refused_before_it_is_read(app, client, world):
    """Should answer 413 for a 50 MB body from its Content-Length, without reading the body."""
    read = []

    size = 50 * 1024 * 1024

    class Body(io.RawIOBase):
        """50 MB that fail the test if anyone reads them (seekable so the test client can measure it)."""
        position = 0

        def readable(self):
            return True

        def seekable(self):
            return True

        def tell(self):
            return self.position

        def seek(self, offset, whence=0):
            self.position = size + offset if whence == 2 else offset
            return self.position

        def readinto(self, buffer):
            read.append(len(buffer))
            raise AssertionError("the body was read")

    client.get("/captcha.png")
    response = client.post("/write", input_stream=Body(), content_length=size,
                           content_type="multipart/form-data; boundary=x")
    assert response.status_code == 413 and read == []
    assert "MB" in response.get_data(as_text=True)


def test_a_50_mb_pdf_sent_without_a_length_is_refused(app, world):
    """Should refuse a real 50 MB PDF (a browser's form with its token and picture code) streamed in chunks with
    no Content-Length through the product's own HTTP server: 413 with the size page once the body passes the
    limit, and no ticket or file stored."""
    import http.client

    import gevent

    from webui.server import HttpServer

    server = HttpServer(("127.0.0.1", 0), app)
    server.start()

    def browser():
        connection = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=60)
        connection.request("GET", "/write")
        answer = connection.getresponse()
        page = answer.read().decode()
        cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        connection.request("GET", "/captcha.png", headers={"Cookie": cookie})
        answer = connection.getresponse()
        answer.read()
        cookie = (answer.headers["Set-Cookie"] or cookie).split(";", 1)[0]

        def body():
            for name, value in {**form(), "csrf_token": token}.items():
                yield (f'--x\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode()
            yield (b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.pdf"\r\n'
                   b"Content-Type: application/pdf\r\n\r\n" + PDF)
            for _ in range(50):
                yield b"0" * (1024 * 1024)
            yield b"\r\n--x--\r\n"

        try:
            connection.request("POST", "/write", body=body(), encode_chunked=True,
                               headers={"Cookie": cookie, "Transfer-Encoding": "chunked",
                                        "Content-Type": "multipart/form-data; boundary=x"})
            answer = connection.getresponse()
            return answer.status, answer.read().decode()
        finally:
            connection.close()

    try:
        # A blocking client in a thread of the hub's pool (this process is not monkey-patched).
        status, page = gevent.get_hub().threadpool.spawn(browser).get(timeout=120)
    finally:
        server.stop()
    assert status == 413 and "MB" in page
    assert WebCase.select().count() == 0 and Attachment.select().count() == 0
    root = app.extensions["hotline"].config.attachments_dir
    assert not (root.exists() and [p for p in root.rglob("*") if p.is_file()])


def test_a_too_large_file_within_the_body_limit_is_refused(client, world):
    """Should refuse a single file above the per-file size."""
    response = submit(client, files=[("big.pdf", PDF + b"0" * portal.MAX_FILE_SIZE)])
    assert response.status_code == 400 and WebCase.select().count() == 0


def test_script_in_every_field_stays_inert(client, world, clock):
    """Should store script verbatim and show it escaped on the receipt, the citizen's page and the form."""
    response = submit(client, content=SCRIPT + "路灯坏了", name=SCRIPT, address=SCRIPT)
    number, code = receipt(response)
    follow(client, number, code)
    page = client.get(f"/follow/{number}").get_data(as_text=True)
    assert SCRIPT not in page and "&lt;script&gt;" in page
    refused = submit(client, content=SCRIPT, phone=SCRIPT).get_data(as_text=True)
    assert SCRIPT not in refused and "&lt;script&gt;" in refused


# ----------------------------------------------------------------------------------- verification
def test_wrong_missing_and_replayed_picture_codes_are_refused(client, world):
    """Should refuse a wrong or missing picture code, and a solved picture sent a second time."""
    assert submit(client, captcha="BBBBB").status_code == 400
    client.get("/captcha.png")
    assert client.post("/write", data={**form(), "csrf_token": client.csrf_token()}).status_code == 200
    # The same (solved) session again, as a robot replaying the request: the picture is spent.
    assert client.post("/write", data={**form(content="另一件事情"), "csrf_token": client.csrf_token()}
                       ).status_code == 400
    assert WebCase.select().count() == 1


def test_honeypot_filled_is_refused(client, world):
    """Should refuse a form whose hidden honeypot field was filled (robots fill every field)."""
    assert submit(client, website="http://spam.example").status_code == 400
    assert WebCase.select().count() == 0


def test_a_flood_from_one_address_is_refused(client, world):
    """Should accept five submissions from one address in an hour and refuse the sixth with 429."""
    for n in range(5):
        assert submit(client, content=f"第{n}件诉求内容", phone=f"1370000{n:04d}").status_code == 200
    response = submit(client, content="第六件诉求内容", phone="13799990000")
    assert response.status_code == 429 and WebCase.select().count() == 5


def test_per_phone_limit(app, client, world):
    """Should refuse more submissions for one phone number than the daily limit."""
    app.config["HOTLINE_PORTAL_PER_PHONE"] = 2
    app.config["HOTLINE_PORTAL_PER_ADDRESS"] = 100
    for n in range(2):
        assert submit(client, content=f"诉求{n}").status_code == 200
    assert submit(client, content="诉求3").status_code == 429


def test_the_same_text_within_minutes_is_a_duplicate(client, world, clock):
    """Should refuse the same text again within ten minutes (blanks and width ignored)."""
    assert submit(client).status_code == 200
    again = submit(client, content="幸福小区门口夜间施工噪音很大，  影响休息。", phone="13600000000")
    assert again.status_code == 409 and WebCase.select().count() == 1


# ---------------------------------------------------------------------------------------- follow
def test_follow_with_the_query_pin_of_any_receipt(app, client, world):
    """Should open a case with the query PIN the SMS/e-mail receipt and the phone give (any channel, the
    website's own cases too), and refuse a wrong PIN exactly like an unknown number."""
    pins.connect_receipt(Receipts())  # as the product connects them: the website's case gets its SMS receipt
    texted = services.create_ticket("小区路灯不亮", channel="sms", citizen_phone="13700002222")
    assert follow(client, texted.number, texted.plain_pin).headers["Location"] == f"/follow/{texted.number}"
    assert "已受理" in client.get(f"/follow/{texted.number}").get_data(as_text=True)
    number, _code = receipt(submit(client))
    written = Ticket.get(Ticket.number == number)
    pin = pin_in(Message.get((Message.ticket == written) & (Message.purpose == "receipt")).body, written)
    assert follow(client, number, pin).status_code == 303
    wrong = f"{(int(texted.plain_pin) + 1) % 1_000_000:06d}"
    assert follow(client, texted.number, wrong).status_code == 404
    assert follow(client, texted.number, "").status_code == 404


def test_the_case_page_reads_the_case_and_its_history_only(client, world, monkeypatch):
    """Should open a looked-up case page with two queries, the ticket and its history (its add-information form
    needs no category or region list: it read both tables on every page, 2 of 4 queries)."""
    from core.db import database

    number, code = receipt(submit(client))
    assert follow(client, number, code).status_code == 303
    seen: list[str] = []
    execute = database.obj.execute_sql

    def counted(sql, params=None, *args, **kwargs):
        seen.append(sql)
        return execute(sql, params, *args, **kwargs)

    monkeypatch.setattr(database.obj, "execute_sql", counted)
    page = client.get(f"/follow/{number}")
    assert page.status_code == 200 and "5" in page.get_data(as_text=True)  # the file limit still shown
    tables = [re.search(r'FROM "?(\w+)"?', sql).group(1) for sql in seen if sql.lstrip().upper().startswith("SELECT")]
    assert tables == ["ticket", "ticket_history"], seen


def test_follow_add_information_and_rate_once(app, client, world, clock):
    """Should show the citizen words and timeline, take 补充材料 into the history with a notice to the
    department, show the approved reply, take one rating counted as a call-back, and refuse a second."""
    number, code = receipt(submit(client))
    assert follow(client, number, code).headers["Location"] == f"/follow/{number}"
    page = client.get(f"/follow/{number}").get_data(as_text=True)
    assert "已受理" in page
    ticket = services.dispatch(Ticket.get(Ticket.number == number), world.centre_user, world.east, clock=clock)
    response = client.post(f"/follow/{number}/add", data={"text": "补充：晚上十点后仍在施工",
                                                          "files": [(io.BytesIO(PNG), "more.png")],
                                                          "csrf_token": client.csrf_token()},
                           content_type="multipart/form-data")
    assert response.status_code == 200 and "正在办理" in response.get_data(as_text=True)
    row = TicketHistory.get((TicketHistory.ticket == ticket) & (TicketHistory.action == "supplement"))
    assert "十点" in row.note
    assert Notification.select().where((Notification.department == world.east) & (Notification.kind == "supplement")).exists()
    # Not answered yet: no rating.
    assert client.post(f"/follow/{number}/rate", data={"satisfaction": "satisfied",
                                                       "csrf_token": client.csrf_token()}).status_code == 409
    ticket = services.transition(ticket, "accept", world.east_user, clock=clock)
    ticket = services.transition(ticket, "reply", world.east_user, reply="已责令施工单位夜间停工。", clock=clock)
    services.transition(ticket, "approve", world.centre_user, clock=clock)
    page = client.get(f"/follow/{number}").get_data(as_text=True)
    assert "已答复" in page and "已责令施工单位夜间停工" in page
    rated = client.post(f"/follow/{number}/rate", data={"satisfaction": "basic", "comment": "还行",
                                                        "csrf_token": client.csrf_token()})
    assert rated.status_code == 200
    ticket = Ticket.get_by_id(ticket.id)
    assert (ticket.status, ticket.satisfaction) == (wf.CALLED_BACK, "basic")
    # Counted exactly as a phone call-back rating (the statistics' rating events).
    from stats.queries import RATING_EVENTS
    assert TicketHistory.select().where((TicketHistory.ticket == ticket)
                                        & TicketHistory.action.in_(RATING_EVENTS)).count() == 1
    again = client.post(f"/follow/{number}/rate", data={"satisfaction": "unsatisfied",
                                                        "csrf_token": client.csrf_token()})
    assert again.status_code == 409 and Ticket.get_by_id(ticket.id).satisfaction == "basic"
    for action in ("portal_lookup", "portal_supplement", "portal_rate"):
        assert AuditLog.select().where((AuditLog.action == action) & (AuditLog.obj_id == number)).exists(), action


def test_unsatisfied_online_rating_goes_to_the_leaders(client, world, clock):
    """Should treat an online 不满意 like a phone one: the ticket awaits the reopen decision."""
    number, code = receipt(submit(client))
    ticket = services.dispatch(Ticket.get(Ticket.number == number), world.centre_user, world.east, clock=clock)
    ticket = services.transition(ticket, "accept", world.east_user, clock=clock)
    ticket = services.transition(ticket, "reply", world.east_user, reply="已处理", clock=clock)
    services.transition(ticket, "approve", world.centre_user, clock=clock)
    follow(client, number, code)
    client.post(f"/follow/{number}/rate", data={"satisfaction": "unsatisfied", "csrf_token": client.csrf_token()})
    assert Ticket.get_by_id(ticket.id).status == wf.UNSATISFIED
    assert Notification.select().where((Notification.user == world.leader)
                                       & (Notification.kind == "unsatisfied")).exists()


def test_wrong_code_ten_times_locks_the_number(app, client, world):
    """Should lock a number after ten wrong codes (even the right code is refused then), per address too."""
    number, code = receipt(submit(client))
    for _ in range(10):
        assert follow(client, number, "WRONGCODE").status_code == 404
    response = follow(client, number, code)
    assert response.status_code == 429 and "分钟" in response.get_data(as_text=True)
    assert AuditLog.select().where(AuditLog.action == "portal_lookup_throttled").exists()
    # Another number from the same address is locked too (per-address count).
    assert follow(client, "12345678", "ANY").status_code == 429


def test_a_process_without_a_pin_key_answers_a_pin_look_up_with_a_clear_page(app, client, world, caplog,
                                                                             monkeypatch):
    """Should answer each look-up that needs the query PIN's key, in a process whose start installed none
    (caseflow.pins.PinKeyError), with the follow page saying the look-up is unavailable (503, no stack, not
    counted as a wrong code towards the lock) and an audit row; log the configuration error at ERROR once per
    process, saying what to configure, and the next look-ups at DEBUG (a public page: no log flood); the
    website's own query code still opens its case."""
    import webui.blueprints.portal as portal_bp

    monkeypatch.setattr(portal_bp, "_no_pin_key_seen", itertools.count())  # a fresh process
    number, code = receipt(submit(client))
    pins.install(None)
    with caplog.at_level("DEBUG", logger="webui.blueprints.portal"):
        responses = [follow(client, world.east_ticket.number, world.east_pin) for _ in range(3)]
    for response in responses:
        page = response.get_data(as_text=True)
        assert response.status_code == 503 and 'data-testid="error"' in page and "Traceback" not in page
        assert "暂时无法" in page and world.east_pin not in page
    told = [r for r in caplog.records if "cannot check query PINs" in r.getMessage()]
    assert [r.levelname for r in told] == ["ERROR", "DEBUG", "DEBUG"]
    assert "HOTLINE_SECRET_KEY" in told[0].getMessage() and "caseflow.pins.install" in told[0].getMessage()
    assert not AuditLog.select().where(AuditLog.action == "portal_lookup_failed").exists()
    assert AuditLog.select().where(AuditLog.action == "portal_lookup_unavailable").count() == 3
    assert follow(client, number, code).status_code == 303  # the site's own code needs no PIN key


@pytest.mark.parametrize("number", ["", "1234567", "123456789", "abcdefgh", "01234567", "1234 567x", "１２３４５６７８"])
def test_malformed_and_unknown_numbers(client, world, number):
    """Should answer a malformed acceptance number with a clear 400 and an unknown one like a wrong code."""
    response = follow(client, number, "ABC")
    assert response.status_code in (400, 404) and 'data-testid="error"' in response.get_data(as_text=True)
    assert follow(client, "87654321", "ABCDEFGHJK").status_code == 404


def test_a_case_page_needs_the_lookup(client, world):
    """Should not show a case to a browser that has not given its code (phone tickets included: their code is
    the query PIN of their receipt)."""
    assert client.get(f"/follow/{world.east_ticket.number}").status_code == 404
    number, code = receipt(submit(client))
    other = client.application.test_client()
    assert other.get(f"/follow/{number}").status_code == 404
    assert other.post(f"/follow/{number}/add", data={"text": "x", "csrf_token": other.csrf_token()}).status_code == 404
    # A phone ticket opens only in the browser that gave its query code (the PIN its receipt carries).
    assert follow(other, world.east_ticket.number, world.east_pin).status_code == 303
    assert client.get(f"/follow/{world.east_ticket.number}").status_code == 404


# ------------------------------------------------------------------------------------ publication
def _closed_web_case(client, world, clock, consent=True, publish=True, **overrides):
    number, code = receipt(submit(client, consent="1" if consent else "", **overrides))
    ticket = services.dispatch(Ticket.get(Ticket.number == number), world.centre_user, world.east, clock=clock)
    ticket = services.transition(ticket, "accept", world.east_user, clock=clock)
    ticket = services.transition(ticket, "reply", world.east_user, clock=clock,
                                 reply="经核实，已联系王小明（13700001111）处理幸福路8号3栋的问题。")
    ticket = services.transition(ticket, "approve", world.centre_user, clock=clock)
    ticket = services.call_back(ticket, world.centre_user, "satisfied", clock=clock)
    ticket = services.transition(ticket, "close", world.centre_user, clock=clock)
    if publish:
        ticket = services.transition(ticket, "disclose", world.centre_user, public=True, clock=clock)
    return ticket, code


def test_published_case_is_masked(client, world, clock):
    """Should list and show a consented, approved case with the request and reply masked: no name,
    phone, address detail, file or note."""
    ticket, _ = _closed_web_case(client, world, clock, files=[("p.png", PNG)],
                                 content="我是王小明，电话13700001111，幸福路8号3栋门口垃圾堆积", region="")
    services.add_note(ticket, "内部备注：勿外传", actor=world.centre_user, clock=clock)
    listing = client.get("/cases").get_data(as_text=True)
    assert ticket.number in listing
    page = client.get(f"/cases/{ticket.number}").get_data(as_text=True)
    assert "垃圾堆积" in page and "王**" in page and "137****1111" in page
    for secret in ("王小明", "13700001111", "幸福路8号3栋", "p.png", "内部备注", "/files/"):
        assert secret not in page, secret


def test_publication_needs_consent_and_approval_and_can_be_withdrawn(app, client, world, clock, login):
    """Should publish only with both the citizen's consent and the centre's disclosure, and withdraw it
    (audited) when the centre takes the disclosure back."""
    no_consent, _ = _closed_web_case(client, world, clock, consent=False, content="未同意公开的诉求")
    not_disclosed, _ = _closed_web_case(client, world, clock, publish=False, content="未审核公开的诉求")
    published, _ = _closed_web_case(client, world, clock, content="同意并公开的诉求")
    listing = client.get("/cases").get_data(as_text=True)
    assert published.number in listing
    for hidden in (no_consent, not_disclosed):
        assert hidden.number not in listing and client.get(f"/cases/{hidden.number}").status_code == 404
    centre = login(world.centre_user)
    response = centre.post_form(f"/tickets/{published.number}/act", {"event": "disclose"})
    assert response.status_code == 303 and not Ticket.get_by_id(published.id).public
    assert client.get(f"/cases/{published.number}").status_code == 404
    assert AuditLog.select().where((AuditLog.action == "withdraw") & (AuditLog.obj_id == published.number)).exists()
    centre.post_form(f"/tickets/{published.number}/act", {"event": "disclose", "public": "1"})
    assert AuditLog.select().where((AuditLog.action == "publish") & (AuditLog.obj_id == published.number)).exists()


def test_published_list_filters_and_search(client, world, clock):
    """Should filter by type, category (with its subtree), region (with its streets) and month, and find
    text only in what the public page shows."""
    district = org.create_region("R1", "东城区")
    street = org.create_region("R11", "东城街道", district)
    a, _ = _closed_web_case(client, world, clock, content="路灯不亮已经一周", type="help", region=str(street.id),
                            category=str(world.noise.id))
    b, _ = _closed_web_case(client, world, clock, content="表扬环卫工人", type="praise")

    def numbers(query):
        return set(re.findall(r'/cases/(\d{8})"', client.get("/cases" + query).get_data(as_text=True)))

    assert numbers("") == {a.number, b.number}
    assert numbers("?type=praise") == {b.number}
    assert numbers(f"?category={world.noise.id}") == {a.number}
    assert numbers(f"?region={district.id}") == {a.number}
    assert numbers("?month=2026-03") == {a.number, b.number} and numbers("?month=2026-02") == set()
    assert numbers("?q=路灯") == {a.number}
    # The address is indexed for staff search but is not public text: no match through it.
    assert numbers("?q=幸福路8号") == set()
    for bad in ("?month=2026-13", "?type=harassment", "?category=x", "?q=" + "长" * 80):
        assert client.get("/cases" + bad).status_code == 400, bad


def test_every_published_list_follows_the_one_rule(client, world, clock, monkeypatch):
    """Should take what is published from one rule (caseflow.portal.disclosed and consented) in the list, a
    month's page, the text search and a case's page: the rule narrowed there narrows every one of them."""
    a, _ = _closed_web_case(client, world, clock, content="路灯不亮已经一周", type="help")
    b, _ = _closed_web_case(client, world, clock, content="路灯不亮已经两周", type="praise")
    rule = portal.disclosed
    monkeypatch.setattr(portal, "disclosed", lambda ticket=Ticket: rule(ticket) & (ticket.type == "help"))

    def numbers(query):
        return set(re.findall(r'/cases/(\d{8})"', client.get("/cases" + query).get_data(as_text=True)))

    for query in ("", "?month=2026-03", "?q=路灯", "?month=2026-03&region=&q=不亮"):
        assert numbers(query) == {a.number}, query
    assert client.get(f"/cases/{b.number}").status_code == 404
    assert client.get(f"/cases/{a.number}").status_code == 200


def test_monthly_figures(client, world, clock):
    """Should show received, closed, on-time rate and satisfaction for a month from the statistics queries."""
    _closed_web_case(client, world, clock)
    page = client.get("/figures?month=2026-03").get_data(as_text=True)
    figures = re.findall(r"<dd>([^<]*)</dd>", page)
    assert figures[:2] == ["3", "1"] and figures[3] == "100.0%"  # 2 phone + 1 web received; 1 closed
    assert client.get("/figures?month=1999-01").status_code == 404


def test_monthly_figures_are_counted_once_per_window(client, world, clock, monkeypatch):
    """Should count a month's figures once and show the same numbers until FIGURES_KEPT_SECONDS have passed
    (a month of a million tickets is read once, not per visitor), then count again."""
    import webui.blueprints.portal as portal_bp

    def received():
        return re.findall(r"<dd>([^<]*)</dd>", client.get("/figures?month=2026-03").get_data(as_text=True))[0]

    assert received() == "2"
    services.create_ticket("三月又一件", citizen_phone="13900001234", clock=clock)
    assert received() == "2"
    monkeypatch.setattr(portal_bp, "FIGURES_KEPT_SECONDS", 0)
    client.application.extensions["page_cache"].clear()  # the rendered page is kept a few seconds as well
    assert received() == "3"


def test_no_public_url_reveals_unpublished_data(app, client, world, clock):
    """Should find none of the unpublished data on any public URL (every public GET route, including the
    case pages with every ticket number) while open, unconsented and undisclosed cases, an API request, internal
    guides, unpublished notices and other citizens' chats exist."""
    from webui import security

    from tests.integration.webui.test_security import concrete_urls

    secret_words = ["未公开甲", "未公开乙", "未公开丙"]
    open_number, _ = receipt(submit(client, content=secret_words[0] + "仍在办理"))
    hidden_a, _ = _closed_web_case(client, world, clock, consent=False, content=secret_words[1])
    hidden_b, _ = _closed_web_case(client, world, clock, publish=False, content=secret_words[2])
    published, _ = _closed_web_case(client, world, clock, content="公开的那件")
    numbers = [open_number, hidden_a.number, hidden_b.number, world.east_ticket.number, world.west_ticket.number]
    secrets_ = secret_words + numbers + ["张三丰", "13812345678", "王小明", "13700001111", "幸福路8号3栋",
                                         "东区某小区夜间施工", "西区路灯不亮"]
    anonymous = app.test_client()
    urls = set()
    for endpoint, method, url in concrete_urls(app):
        view = app.view_functions[endpoint]
        access = security.access_of(view)
        if method == "GET" and access is not None and access.kind == "public" and endpoint != "static":
            urls.add(url)
    urls |= {f"/cases/{n}" for n in numbers} | {f"/follow/{n}" for n in numbers}
    urls |= {"/cases?q=" + w for w in secret_words} | {"/cases?q=13812345678", "/cases?q=张三丰", "/?lang=en"}
    # Open311: a request filed through the API stays with its client; GET without a key shows published cases.
    from channels import open311

    _client, key = open311.issue_key("walk", clock=clock)
    api = client.post("/open311/v2/requests.json", data={"api_key": key, "service_code": world.noise.code,
                                                          "address_string": "未公开丁路", "description": "未公开丁"})
    api_number = api.get_json()[0]["service_request_id"]
    numbers.append(api_number)
    secrets_ += ["未公开丁", api_number]
    # Guides and notices: an internal (or unreviewed) knowledge item and an unpublished notice stay off the site.
    from caseflow import knowledge, public_notices

    internal = knowledge.create_item("未公开戊", "未公开戊的口径", review_state="approved")
    unreviewed = knowledge.create_item("未公开庚", "未公开庚", review_state="pending")
    knowledge.set_public(unreviewed, True)
    draft = public_notices.create("未公开己", "未公开己的正文", world.centre_user)
    in_review = public_notices.move(public_notices.create("未公开辛", "未公开辛", world.centre_user), "submit",
                                    world.centre_user)
    secrets_ += ["未公开戊", "未公开庚", "未公开己", "未公开辛"]
    urls |= {f"/guides/{i.id}" for i in (internal, unreviewed)} | {f"/notices/{n.id}" for n in (draft, in_review)}
    urls |= {"/guides?q=未公开戊", "/guides?q=未公开庚", "/guides", "/notices", "/poll"}
    # Online chat: another citizen's chat in progress and one that became a ticket when its citizen left; a
    # browser holding no chat reaches neither (the chat's id and token live only in its own session).
    from acd import chat

    topic = chat.create_queue("walk-chat", "consult", display_name="咨询")
    waiting, _token = chat.start(topic.id, name="张未公开", phone="13600006666", clock=clock)
    chat.post(waiting, "citizen", "未公开壬在排队", clock=clock)
    left, _token = chat.start(topic.id, phone="13600007777", clock=clock)
    chat.post(left, "citizen", "未公开癸已离开", clock=clock)
    chat_ticket = chat.close(left, "citizen", clock).ticket
    numbers.append(chat_ticket.number)
    secrets_ += ["未公开壬", "未公开癸", "张未公开", "13600006666", "13600007777", chat_ticket.number]
    urls |= {"/chat/", "/chat/room", "/chat/events?max_seconds=0&after=0", f"/cases/{chat_ticket.number}",
             f"/follow/{chat_ticket.number}"}
    for fmt in ("xml", "json"):
        urls |= {f"/open311/v2/requests/{n}.{fmt}" for n in numbers}
        urls |= {f"/open311/v2/{path}.{fmt}" for path in ("services", "requests", f"services/{world.noise.code}")}
        urls |= {f"/open311/v2/requests.{fmt}?service_request_id=" + ",".join(numbers),
                 f"/open311/v2/requests.{fmt}?status=open", f"/open311/v2/requests.{fmt}?status=closed"}
    assert "/cases" in urls and "/figures" in urls
    for url in sorted(urls):
        response = anonymous.get(url)
        body = response.get_data(as_text=True) if response.mimetype.startswith(("text/", "application/json")) else ""
        # The page's own address and the words searched for, echoed back, are no leak.
        for echoed in [url.split("?")[0], *(v for _k, v in parse_qsl(url.partition("?")[2]))]:
            body = body.replace(echoed, "")
        for secret in secrets_:
            assert secret not in body, (url, secret)
    assert published.number in anonymous.get("/cases").get_data(as_text=True)
    assert [r["service_request_id"] for r in anonymous.get("/open311/v2/requests.json").get_json()] == [
        published.number]


ATTRIBUTE = '" onmouseover="alert(2)'  # breaks out of an attribute if one is not escaped


def test_script_in_every_field_stays_inert_on_the_published_pages(client, world, clock):
    """Should show script typed into every field of the form (content, address, name, e-mail), written into the
    department's reply and into the names of the category and region as text on every page a published case
    appears on: the home page, the list (with and without a search), the case page, and Open311's answers."""
    category = org.create_category("XSS", SCRIPT + "分类" + ATTRIBUTE)
    region = org.create_region("RX", SCRIPT + "地区" + ATTRIBUTE)
    # One payload a field (the name and address are masked wherever they reappear in the published text).
    number, _code = receipt(submit(client, content=f"{SCRIPT}{ATTRIBUTE}路灯坏了", address="<svg onload=alert(4)>",
                                  name="<img src=x onerror=alert(3)>", email="a@example.com",
                                  category=str(category.id), region=str(region.id)))
    ticket = services.dispatch(Ticket.get(Ticket.number == number), world.centre_user, world.east, clock=clock)
    ticket = services.transition(ticket, "accept", world.east_user, clock=clock)
    ticket = services.transition(ticket, "reply", world.east_user, clock=clock, reply=f"{SCRIPT}{ATTRIBUTE}已修复")
    ticket = services.transition(ticket, "approve", world.centre_user, clock=clock)
    ticket = services.call_back(ticket, world.centre_user, "satisfied", clock=clock)
    ticket = services.transition(ticket, "close", world.centre_user, clock=clock)
    services.transition(ticket, "disclose", world.centre_user, public=True, clock=clock)
    anonymous = client.application.test_client()
    pages = {url: anonymous.get(url) for url in ("/", "/cases", "/cases?q=路灯", f"/cases?category={category.id}",
                                                  f"/cases?region={region.id}", f"/cases/{number}", "/figures")}
    for url, response in pages.items():
        body = response.get_data(as_text=True)
        assert response.status_code == 200, url
        for markup in ("<script>", ATTRIBUTE, "<svg", "<img src=x"):
            assert markup not in body.replace('<script src="', ""), (url, markup)
    case_page = pages[f"/cases/{number}"].get_data(as_text=True)
    assert case_page.count("&lt;script&gt;") >= 2 and "路灯坏了" in case_page and "已修复" in case_page
    assert number in pages["/"].get_data(as_text=True) and number in pages["/cases?q=路灯"].get_data(as_text=True)
    for fmt in ("xml", "json"):
        for url in (f"/open311/v2/requests/{number}.{fmt}", f"/open311/v2/requests.{fmt}",
                    f"/open311/v2/services.{fmt}"):
            response = anonymous.get(url)
            assert response.status_code == 200 and response.headers["X-Content-Type-Options"] == "nosniff", url
            if fmt == "xml":
                assert b"<script>" not in response.get_data() and b"&lt;script&gt;" in response.get_data(), url
    shown = anonymous.get(f"/open311/v2/requests/{number}.json").get_json()[0]
    assert shown["description"].startswith(SCRIPT + ATTRIBUTE) and shown["service_notice"].startswith(SCRIPT)


def test_language_on_published_page(client, world, clock):
    """Should show labels in English on request, the masked text unchanged."""
    ticket, _ = _closed_web_case(client, world, clock)
    page = client.get(f"/cases/{ticket.number}?lang=en").get_data(as_text=True)
    assert "Complaint" in page and "Answer" in page


KEY, OTHER_KEY = b"k" * 40, b"j" * 40


def unkeyed_hash(code: str, salt: str = "0123456789abcdef") -> str:
    """A query code as stored before the keyed form: salt$sha256(salt + code)."""
    return f"{salt}${hashlib.sha256((salt + code).encode()).hexdigest()}"


def test_query_code_hash():
    """Should store a new code as h1$salt$HMAC under the secret key, salted anew each time, and accept the
    code however it is typed back and refuse another."""
    code = portal.new_code()
    stored = portal.hash_code(code, KEY)
    form, salt, mac = stored.split("$")
    assert form == "h1" and len(salt) == 16 and len(mac) == 64 and portal.hash_code(code, KEY) != stored
    assert portal.code_matches(stored, code.lower(), KEY)
    assert portal.code_matches(stored, f" {code[:5]}-{code[5:]} ", KEY)
    assert not portal.code_matches(stored, "A" * 10, KEY) and not portal.code_matches(stored, "", KEY)
    assert not portal.code_matches("", code, KEY) and not portal.code_matches("h1$$" + mac, code, KEY)
    assert len(code) == portal.CODE_LENGTH and set(code) <= set(portal.CODE_ALPHABET)


def test_a_stored_code_cannot_be_checked_without_the_key():
    """Should not match the code under another key, nor be the unkeyed hash of the same salt and code: a copy
    of the database without the product's secret key tests no guess."""
    code = portal.new_code()
    stored = portal.hash_code(code, KEY)
    _form, salt, mac = stored.split("$")
    assert portal.code_matches(stored, code, KEY) and not portal.code_matches(stored, code, OTHER_KEY)
    assert mac != unkeyed_hash(code, salt).partition("$")[2]
    with pytest.raises(ValueError):
        portal.hash_code(code, b"")


def test_an_older_unkeyed_code_still_opens_its_case(app, client, world):
    """Should still accept the code of a case stored in the salt$sha256 form (any key: it has none) and
    refuse a wrong one, on the website's follow page too."""
    code = portal.new_code()
    old = unkeyed_hash(code)
    assert portal.code_matches(old, code.lower(), KEY) and portal.code_matches(old, code, OTHER_KEY)
    assert not portal.code_matches(old, "A" * 10, KEY) and not portal.code_matches(old, "", KEY)
    number, _code = receipt(submit(client))
    WebCase.update(code_hash=old).where(WebCase.ticket == Ticket.get(Ticket.number == number)).execute()
    assert follow(client, number, "A" * 10).status_code == 404
    assert follow(client, number, code).headers["Location"] == f"/follow/{number}"


def test_a_code_under_a_rotated_key_opens_its_case_and_is_hashed_again(app, client, world):
    """Should open a case whose code was hashed under a key HOTLINE_SECRET_KEY was rotated from once that key
    is listed in HOTLINE_SECRET_KEY_PREVIOUS (rotating it made every such code unverifiable), and then store
    the code under the current key; so too a code in the old unkeyed form. A wrong code changes nothing."""
    state = app.extensions["hotline"]
    current = app.config["SECRET_KEY"].encode()
    number, code = receipt(submit(client))
    ticket = Ticket.get(Ticket.number == number)
    under_old = portal.hash_code(code, KEY)  # filed before the rotation from KEY

    def stored():
        return WebCase.get(WebCase.ticket == ticket).code_hash

    WebCase.update(code_hash=under_old).where(WebCase.ticket == ticket).execute()
    assert follow(client, number, code).status_code == 404  # KEY not listed: the code is lost
    rotated_from = f" {OTHER_KEY.decode()}, {KEY.decode()} "  # as written in the setting
    state.config = state.config.replace(extra={**state.config.extra, "HOTLINE_SECRET_KEY_PREVIOUS": rotated_from})
    assert follow(client, number, "A" * 10).status_code == 404 and stored() == under_old
    assert follow(client, number, code).headers["Location"] == f"/follow/{number}"
    assert portal.code_matches(stored(), code, current) and not portal.code_matches(stored(), code, KEY)
    WebCase.update(code_hash=unkeyed_hash(code)).where(WebCase.ticket == ticket).execute()
    assert follow(client, number, code).headers["Location"] == f"/follow/{number}"
    assert stored().startswith("h1$") and portal.code_matches(stored(), code, current)


def test_a_pin_under_the_rotated_from_key_opens_on_the_follow_page_by_the_installed_keys(app, client, world):
    """Should open a case on /follow by a ticket PIN hashed under the key HOTLINE_SECRET_KEY was rotated from when
    the process's installed PIN keys list it (caseflow.pins, as the phone's status query), hash it again under
    the current key, refuse a wrong PIN without touching the row; the website's HOTLINE_SECRET_KEY_PREVIOUS (the
    web codes' keys) is no source of PIN keys."""
    state = app.extensions["hotline"]
    current = app.config["SECRET_KEY"].encode()
    pins.install(pins.PinKeys(KEY))
    ticket = services.create_ticket("路灯不亮", citizen_phone="13700001111")
    under_old = Ticket.get_by_id(ticket.id).query_pin
    pins.install(pins.PinKeys(current))
    state.config = state.config.replace(extra={**state.config.extra, "HOTLINE_SECRET_KEY_PREVIOUS": KEY.decode()})
    assert follow(client, ticket.number, ticket.plain_pin).status_code == 404  # the web setting is no PIN key
    pins.install(pins.PinKeys(current, (KEY,)))
    wrong = f"{(int(ticket.plain_pin) + 1) % 1_000_000:06d}"
    assert follow(client, ticket.number, wrong).status_code == 404
    assert Ticket.get_by_id(ticket.id).query_pin == under_old
    assert follow(client, ticket.number, ticket.plain_pin).headers["Location"] == f"/follow/{ticket.number}"
    stored = Ticket.get_by_id(ticket.id).query_pin
    assert stored != under_old and pins.match(stored, ticket.plain_pin, pins.PinKeys(current)) == "current"


def test_warm_up_compiles_the_portal_templates_and_draws_a_picture_before_the_first_visitor(app, client):
    """A serving process warms the portal up at its start (hotline.worker / hotline.product): its first write
    form, picture code and answer then compile no template (bench/portal.py --trace: 20-37 ms runs each)."""
    import webui.blueprints.portal as portal_bp

    compiled: list[str] = []
    real_compile = app.jinja_env.compile

    def counting(source, name=None, *args, **kwargs):
        compiled.append(name)
        return real_compile(source, name, *args, **kwargs)

    app.jinja_env.cache.clear()
    app.jinja_env.compile = counting
    portal_bp.warm_up(app)
    assert {"portal/write.html", "portal/done.html", "portal/base.html", "portal/cases.html"} <= set(compiled)
    assert not [name for name in compiled if not name.startswith("portal/")]
    compiled.clear()
    assert client.get("/captcha.png").mimetype == "image/png"
    assert submit(client).status_code == 200
    assert [name for name in compiled if name.startswith("portal/")] == []


def test_the_picture_is_drawn_in_a_native_thread_not_in_the_serving_greenlet(client, monkeypatch):
    """Should draw a picture code in a native thread (its 4-7 ms of CPU held the serving hub, every other
    request of the process waiting), as a PNG of the portal's size the answer's MAC is kept for."""
    import threading

    from PIL import Image

    import webui.blueprints.portal as portal_bp
    from webui import picture_codes

    drawn_in: list[int] = []
    draw = picture_codes.draw
    monkeypatch.setattr(picture_codes, "draw", lambda answer: drawn_in.append(threading.get_ident()) or draw(answer))
    response = client.get("/captcha.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert Image.open(io.BytesIO(response.data)).size == picture_codes.PICTURE_SIZE
    assert len(drawn_in) == 1 and drawn_in[0] != threading.get_ident()
    with client.session_transaction() as held:
        assert held[portal_bp.CAPTCHA_KEY]["mac"]


def test_pictures_being_drawn_leave_the_shared_thread_pool_free(monkeypatch):
    """Should draw pictures in a thread of their own: while more pictures are drawn and waiting than the hub's
    shared pool has threads, core.offload.in_thread (argon2 at log-in, TTS) still runs its work at once."""
    import threading

    import gevent

    from core.offload import in_thread
    from webui import picture_codes
    from tests.waiting import wait_until

    started, release = [], threading.Event()
    draw = picture_codes.draw

    def held_draw(answer):
        started.append(answer)
        release.wait(30)
        return draw(answer)

    monkeypatch.setattr(picture_codes, "draw", held_draw)
    burst = gevent.get_hub().threadpool.maxsize + 2
    pictures = [gevent.spawn(picture_codes.picture, "AB%03d" % n) for n in range(burst)]
    try:
        wait_until(lambda: started, 10, "a picture being drawn")
        with gevent.Timeout(10, AssertionError("in_thread waited behind the pictures")):
            assert in_thread(lambda: "ran") == "ran"
        assert len(started) == 1  # one at a time, the others waiting in the pictures' own queue
    finally:
        release.set()
        gevent.joinall(pictures, timeout=30)
    assert [picture.value[:4] for picture in pictures] == [b"\x89PNG"] * burst

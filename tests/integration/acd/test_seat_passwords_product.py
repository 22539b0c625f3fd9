"""Each seat's own SIP password through the whole product on the fake FreeSWITCH (acd.seats, switch.directory,
webui.blueprints.admin_seats): at its start the product gives every seat of the directory a password, writes
them into the folder FreeSWITCH includes and has the switch reload; the desk gets only the signed-in agent's
own; an administrator's reset (audited, shown once) changes that seat's password alone, in the directory, at
the switch and on the desk; nobody else may reset."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from core.db import database
from tests.conftest import HotlineClient

DEMO_PASSWORD = "demo1234"


@pytest.fixture
def product(make_product):
    return make_product(softphone_wss="wss://127.0.0.1:7443")


def _client(product):
    from flask.testing import FlaskClient

    app = product.parts["web_app"]
    app.test_client_class = type("Client", (HotlineClient, FlaskClient), {})
    return app.test_client()


def _directory(product) -> dict[str, str]:
    root = ET.parse(product.config.seats_dir / "seats.xml").getroot()
    return {u.get("id"): u.find("params/param[@name='password']").get("value") for u in root.iter("user")}


def _desk_password(client, operator_no: str) -> dict:
    client.login(operator_no, DEMO_PASSWORD)
    token = re.search(r'data-token="([^"]+)"', client.get("/desk/").get_data(as_text=True)).group(1)
    reply = client.post_form("/desk/softphone/credentials", {"desk": token})
    client.logout()
    return reply.get_json()


def test_each_seat_has_its_own_password_in_the_directory_and_on_its_desk(product):
    """Should write a user for each seat 1000-1019 with a password of its own, have the switch reload, and hand
    agent 1001 (seat 1000) that seat's password and agent 1002 (seat 1001) theirs."""
    seats = _directory(product)
    assert sorted(seats) == [str(n) for n in range(1000, 1020)]
    assert len(set(seats.values())) == 20 and all(len(p) == 20 for p in seats.values())
    assert "reloadxml" in product.fs.api_log
    client = _client(product)
    first, second = _desk_password(client, "1001"), _desk_password(client, "1002")
    assert (first["user"], first["password"]) == ("1000", seats["1000"])
    assert (second["user"], second["password"]) == ("1001", seats["1001"])
    from acd.models import SeatSecret

    with database.connection_context():
        stored = {row.extension: row.salt for row in SeatSecret.select()}
    assert not set(seats.values()) & set(stored.values())  # the database holds salts, not passwords


def test_an_administrator_resets_one_seat_audited_and_shown_once(product):
    """Should give seat 1000 a new password on the administrator's reset: in the directory, reloaded at the
    switch, on its agent's desk; shown on the answer and not on the page after; audited; the other seats
    keep theirs."""
    before = _directory(product)
    reloads = product.fs.api_log.count("reloadxml")
    client = _client(product)
    client.login("0001", DEMO_PASSWORD)
    page = client.get("/admin/seats/").get_data(as_text=True)
    assert 'data-seat="1000"' in page and "王晓燕" in page and "重置密码" in page
    assert not any(password in page for password in before.values())
    reply = client.post_form("/admin/seats/1000/reset")
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
    after = _directory(product)
    assert after["1000"] != before["1000"] and {k: v for k, v in after.items() if k != "1000"} == \
        {k: v for k, v in before.items() if k != "1000"}
    shown = re.search(r'<code data-seat="1000">([^<]+)</code>', reply.get_data(as_text=True)).group(1)
    assert shown == after["1000"]
    assert product.fs.api_log.count("reloadxml") == reloads + 1
    again = client.get("/admin/seats/").get_data(as_text=True)
    assert after["1000"] not in again and re.search(r'data-seat="1000">.*?<td>0001</td>', again, re.S)
    from webui.models import AuditLog

    with database.connection_context():
        (row,) = AuditLog.select().where(AuditLog.action == "seat_password_reset")
        assert (row.operator_no, row.obj_type, row.obj_id) == ("0001", "seat", "1000")
        assert after["1000"] not in (row.detail or "")
    client.logout()
    assert _desk_password(client, "1001")["password"] == after["1000"]


def test_only_an_administrator_resets_and_only_a_seat(product):
    """Should refuse the page and the reset to an agent and a team lead, and a reset of what is no seat."""
    before = _directory(product)
    client = _client(product)
    for operator_no in ("1001", "8001"):
        client.login(operator_no, DEMO_PASSWORD)
        assert client.get("/admin/seats/").status_code == 403
        assert client.post_form("/admin/seats/1000/reset").status_code == 403
        client.logout()
    client.login("0001", DEMO_PASSWORD)
    assert client.post_form("/admin/seats/1020/reset").status_code == 404
    assert client.post_form("/admin/seats/..%2Fx/reset").status_code == 404
    assert client.post("/admin/seats/1000/reset").status_code == 400  # no CSRF token
    assert _directory(product) == before


def test_a_reset_not_written_for_kamailio_says_so_and_still_shows_the_password(product):
    """Should, when Kamailio's credentials table cannot be written, still show the new password (the switches
    have it) with an error saying the old one works at Kamailio, answer 502, and audit the reset as such."""
    def refuse(passwords):
        raise OSError("Kamailio's database away")

    product.parts["seats"].subscribers = refuse
    client = _client(product)
    client.login("0001", DEMO_PASSWORD)
    reply = client.post_form("/admin/seats/1000/reset")
    page = reply.get_data(as_text=True)
    assert reply.status_code == 502 and "未能写入 Kamailio" in page
    shown = re.search(r'<code data-seat="1000">([^<]+)</code>', page).group(1)
    assert shown == _directory(product)["1000"]
    from webui.models import AuditLog

    with database.connection_context():
        (row,) = AuditLog.select().where(AuditLog.action == "seat_password_reset")
        assert (row.obj_id, row.detail) == ("1000", "not written for Kamailio")


def test_the_product_starts_with_kamailio_s_database_away_and_catches_up(make_product):
    """Should start (the calls go on) when Kamailio's credentials table cannot be written, mark the seats behind
    and run the catch-up job every minute."""
    product = make_product(kamailio="127.0.0.1:5999", kamailio_db="postgresql://postgres@127.0.0.1:1/nowhere")
    seats = product.parts["seats"]
    assert seats.subscribers is not None and seats.subscribers_behind
    job = product.parts["scheduler"].get_job("seat-credentials-catch-up")
    assert job is not None and job.trigger.interval.total_seconds() == 60

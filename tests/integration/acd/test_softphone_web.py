"""The desk's browser phone over HTTP (Flask test client, the ACD on the in-process doubles): the seat's own SIP
credentials (acd.seats) go to the signed-in agent's own desk window only, never into the page, never to other
roles, never another seat's; the desk page may open a WebSocket to the phone server and nowhere else. The ACD
keeps a seat offerable while another of its phones stays registered."""
from __future__ import annotations

import re

import pytest

from acd.dispatcher import Acd, AcdSettings, create_agent, create_queue
from acd.seats import SeatPasswords
from caseflow.accounts import create_user
from switch import events as sw
from tests.integration.acd.conftest import wait_for
from tests.integration.acd.doubles import Conn, Pool, World

PASSWORD = "agent-pass-123"
SHARED_SECRET = "seat-secret-4711-xyz"
WSS = ("wss://127.0.0.1:7443", "wss://fs2.example:7443")


@pytest.fixture
def desk(app, client, prompts):
    world = World()
    create_queue("consult", "consult", wrap_up_seconds=30, announce_interval=0)
    agent = create_agent(create_user("8001", "张三", PASSWORD, roles="agent", extension="1001"), {"consult": 5})
    lead = create_agent(create_user("9001", "班长", PASSWORD, roles="team_lead", extension="1900"), {"consult": 5})
    create_user("8002", "没有座席", PASSWORD, roles="agent")        # an agent role without a seat
    create_user("7001", "派单员", PASSWORD, roles="centre")
    create_user("0001", "管理员", PASSWORD, roles="admin")
    world.add_phone("1001")
    world.add_phone("1900")
    acd = Acd(Pool(Conn(world)), settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    acd.start()
    state = app.extensions["hotline"]
    state.services.acd = acd
    state.config = state.config.replace(softphone_wss=WSS)
    seats = SeatPasswords(state.config.secret_key, lambda: ("1001", "1002", "1900"), state.config.seats_dir)
    seats.ensure()
    yield acd, world, agent, lead
    acd.stop()


@pytest.fixture
def seat_secrets(app, desk):
    """Every seat's own password (the product made them in the fixture)."""
    from acd.seats import password_for

    key = app.extensions["hotline"].config.secret_key
    return {seat: password_for(key, seat) for seat in ("1001", "1002", "1900")}


def _token(page: str) -> str:
    return re.search(r'data-token="([^"]+)"', page).group(1)


def test_agent_gets_their_own_seat_in_their_desk_window_only(desk, client, seat_secrets):
    """Should render the phone in the desk without the password, with the library from npm and a policy that
    lets the page reach the phone servers; then hand the agent's own seat and its own password to the window
    holding the desk, not cached; a request without the CSRF token, a GET, or another window's claim get
    nothing."""
    SEAT_SECRET = seat_secrets["1001"]
    assert len(set(seat_secrets.values())) == 3 and all(len(v) == 20 for v in seat_secrets.values())
    client.login("8001", PASSWORD)
    reply = client.get("/desk/")
    page = reply.get_data(as_text=True)
    assert 'data-testid="softphone"' in page and "/vendor/jssip.min.js" in page and "softphone.js" in page
    assert SEAT_SECRET not in page and "使用浏览器话机" in page
    assert re.search(r'data-testid="sp-answer"[^>]*>接听</button>', page)  # not 答案 (another page's "Answer")
    assert "connect-src 'self' wss://127.0.0.1:7443 wss://fs2.example:7443" in reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in reply.headers["Content-Security-Policy"]
    refused = client.post_form("/desk/ticket", {"content": "", "citizen_phone": "1391"})  # the desk again
    assert refused.status_code == 400 and 'data-testid="softphone"' in refused.get_data(as_text=True)
    assert "connect-src 'self' wss://127.0.0.1:7443" in refused.headers["Content-Security-Policy"]
    assert "connect-src" not in client.get("/desk/pop").headers["Content-Security-Policy"]  # JSON: no need
    token = _token(client.get("/desk/").get_data(as_text=True))
    reply = client.post_form("/desk/softphone/credentials", {"desk": token})
    assert reply.status_code == 200 and reply.headers["Cache-Control"] == "no-store"
    assert reply.get_json() == {"ok": True, "uri": "sip:1001@127.0.0.1", "user": "1001", "password": SEAT_SECRET,
                                "sockets": list(WSS), "display_name": "8001"}
    assert client.post("/desk/softphone/credentials", data={"desk": token}).status_code == 400  # no CSRF token
    assert client.get("/desk/softphone/credentials").status_code == 405
    # Another window opens the desk: this one's claim no longer gets the seat.
    newer = _token(client.get("/desk/").get_data(as_text=True))
    reply = client.post_form("/desk/softphone/credentials", {"desk": token})
    assert reply.status_code == 409 and reply.get_json()["superseded"] is True
    assert SEAT_SECRET not in reply.get_data(as_text=True)
    assert reply.get_json()["error"] == "工作台已在另一个窗口打开，浏览器话机已转到该窗口。"
    assert client.post_form("/desk/softphone/credentials", {"desk": newer}).get_json()["user"] == "1001"


def test_a_team_lead_with_a_seat_gets_that_seat(desk, client, seat_secrets):
    """Should give a team lead (a desk role) their own seat and its password, not anyone else's."""
    client.login("9001", PASSWORD)
    token = _token(client.get("/desk/").get_data(as_text=True))
    seat = client.post_form("/desk/softphone/credentials", {"desk": token}).get_json()
    assert (seat["user"], seat["uri"], seat["password"]) == ("1900", "sip:1900@127.0.0.1", seat_secrets["1900"])
    assert seat["password"] != seat_secrets["1001"]


@pytest.mark.parametrize("operator_no", ["7001", "0001"])
def test_other_roles_get_no_credentials(desk, client, operator_no, seat_secrets):
    """Should refuse users without a desk role (dispatcher, administrator) before anything else."""
    client.login(operator_no, PASSWORD)
    reply = client.post_form("/desk/softphone/credentials", {"desk": "x"}, headers={"Accept": "application/json"})
    assert reply.status_code == 403
    assert not any(secret in reply.get_data(as_text=True) for secret in seat_secrets.values())


def test_signed_out_gets_nothing(desk, client, seat_secrets):
    reply = client.post_form("/desk/softphone/credentials", {"desk": "x"})
    assert reply.status_code in (302, 401, 403)
    assert not any(secret in reply.get_data(as_text=True) for secret in seat_secrets.values())


def test_a_seat_without_a_password_yet_gets_none(desk, client, app):
    """Should tell an agent whose seat the product has not given a password yet (a seat added since its start)
    so, in words, and give no other seat's."""
    from acd.models import SeatSecret

    SeatSecret.delete().where(SeatSecret.extension == "1001").execute()
    client.login("8001", PASSWORD)
    token = _token(client.get("/desk/").get_data(as_text=True))
    reply = client.post_form("/desk/softphone/credentials", {"desk": token})
    assert reply.status_code == 404 and reply.get_json() == {"ok": False, "error": "您的座席尚无话机密码，请联系管理员。"}


def test_one_shared_password_when_the_switch_has_one(desk, client, app):
    """Should, with HOTLINE_FS_SEAT_PASSWORDS=shared (development, the live switch), hand the one
    HOTLINE_FS_AGENT_PASSWORD to the agent's seat."""
    state = app.extensions["hotline"]
    state.config = state.config.replace(seat_passwords="shared", agent_sip_password=SHARED_SECRET)
    client.login("8001", PASSWORD)
    token = _token(client.get("/desk/").get_data(as_text=True))
    seat = client.post_form("/desk/softphone/credentials", {"desk": token}).get_json()
    assert (seat["user"], seat["password"]) == ("1001", SHARED_SECRET)


def test_an_agent_without_a_seat_is_told_so(desk, client):
    """Should answer 404 in words to an agent with no seat (no Agent row, no extension)."""
    client.login("8002", PASSWORD)
    reply = client.post_form("/desk/softphone/credentials", {"desk": "x"})
    assert reply.status_code == 404 and reply.get_json() == {"ok": False, "error": "您尚未配置为话务员。"}


def test_not_configured_shows_no_phone_and_gives_nothing(desk, client, app):
    """Should leave the phone out of the desk and its policy when the server has no browser phone, and say so
    in the user's language when asked anyway."""
    state = app.extensions["hotline"]
    state.config = state.config.replace(softphone_wss=())
    client.login("8001", PASSWORD)
    reply = client.get("/desk/")
    assert 'data-testid="softphone"' not in reply.get_data(as_text=True)
    assert "connect-src" not in reply.headers["Content-Security-Policy"]
    client.post_form("/language", {"lang": "en"})
    reply = client.post_form("/desk/softphone/credentials", {"desk": "x"})
    assert reply.status_code == 404
    assert reply.get_json()["error"] == "The browser phone is not set up on this server."


def test_desk_page_in_english_has_english_phone_words(desk, client):
    """Should show the phone's words in English only when English is chosen."""
    client.login("8001", PASSWORD)
    client.post_form("/language", {"lang": "en"})
    page = client.get("/desk/").get_data(as_text=True)
    assert "Use the browser phone" in page and "Registered: calls ring in this browser." in page
    assert "浏览器话机" not in page and "已注册" not in page


def test_seat_stays_offerable_while_another_phone_is_registered(desk):
    """Should, when one phone of a seat unregisters (the browser closed) while the switch still lists another
    (the desk phone), keep the seat registered; with none left it is unregistered."""
    acd, world, agent, _ = desk
    wait_for(lambda: acd.agents[agent.id].registered, what="the desk phone seen at reconciliation")
    world.emit(sw.Unregistered(server=world.server, user="1001", domain="127.0.0.1",
                               contact="sip:abc@x.invalid;transport=ws"))
    wait_for(lambda: acd.agents[agent.id].registered, what="the seat registered again")

    def rechecks():
        return sum(c.startswith("sofia status profile internal reg 1001") for c in world.commands)

    assert rechecks() == 1
    world.phones["1001"].registered = False
    world.emit(sw.Unregistered(server=world.server, user="1001", domain="127.0.0.1"))
    wait_for(lambda: rechecks() == 2, what="the seat's phones read again")  # not a sleep that may end first
    assert not acd.agents[agent.id].registered

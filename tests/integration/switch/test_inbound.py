"""InboundConnection and SwitchPool against a scripted event-socket peer speaking transcript bytes."""
from __future__ import annotations

import gevent
import pytest

from core.config import EslEndpoint
from switch.errors import CommandFailed, SwitchDisconnected, SwitchTimeout
from switch.events import ChannelHangup, DtmfReceived, JobDone
from switch.inbound import CONNECTED, DISCONNECTED, InboundConnection, SwitchPool
from tests.waiting import wait_until

from .peer import GOODBYE, INVALID, PeerListener, handshake, swap, transcript

INBOUND = "inbound_plain_and_json.txt"


@pytest.fixture
def listener():
    peer_listener = PeerListener()
    yield peer_listener
    peer_listener.stop()


@pytest.fixture
def connect(listener, inbound_to):
    return lambda password="ClueCon", **kw: inbound_to(listener.host, listener.port, password, **kw)


def server_frames(name, predicate):
    return [l.data for l in transcript(name) if l.direction == "S->C" and predicate(l.data)]


def test_auth_api_and_subscription(listener, connect):
    """Should authenticate, subscribe with `event plain`, and return an api body."""
    conn = connect()
    peer = listener.next_peer()
    subscribe = handshake(peer)
    assert subscribe.line.startswith("event plain ") and "BACKGROUND_JOB" in subscribe.line
    assert conn.wait_connected(5) and conn.state == CONNECTED
    version = server_frames(INBOUND, lambda d: b"FreeSWITCH Version" in d and b"api/response" in d)[0]
    call = gevent.spawn(conn.api, "version")
    assert peer.expect("api version")
    peer.send(version)
    assert call.get(timeout=5).startswith("FreeSWITCH Version 1.11")


def test_bgapi_jobs_are_matched_by_job_uuid(listener, connect):
    """Should send our own Job-UUID and hand each BACKGROUND_JOB to its own caller, in any order."""
    conn = connect()
    peer = listener.next_peer()
    handshake(peer)
    assert conn.wait_connected(5)
    recorded_ok = server_frames(INBOUND, lambda d: b"Job-UUID: 868d8c33-f46a-452f-94f5-1e197e80a545\nJob-Command" in d)[0]
    recorded_err = server_frames(INBOUND, lambda d: b"-ERR NORMAL_CLEARING" in d and b"event-plain" in d)[0]
    err_uuid = b"d85dc6c8-0172-4f93-9234-e053414f48d6"
    first = gevent.spawn(conn.bgapi, "uptime")
    c1 = peer.expect("bgapi uptime")
    second = gevent.spawn(conn.bgapi, "originate loopback/no_such_ext_8888/default &park")
    c2 = peer.expect("bgapi originate")
    j1, j2 = c1.headers["Job-UUID"], c2.headers["Job-UUID"]
    assert j1 != j2
    peer.reply(f"+OK Job-UUID: {j1}")
    peer.reply(f"+OK Job-UUID: {j2}")
    peer.send(swap(recorded_err, [(err_uuid, j2.encode())]))          # the second job finishes first
    peer.send(swap(recorded_ok, [(b"868d8c33-f46a-452f-94f5-1e197e80a545", j1.encode())]))
    ok, failed = first.get(timeout=5), second.get(timeout=5)
    assert ok.ok and ok.body == "265\n" and ok.job_uuid == j1
    assert not failed.ok and failed.body.startswith("-ERR NORMAL_CLEARING")


def test_bgapi_refused_and_api_check(listener, connect):
    """Should raise CommandFailed for a -ERR bgapi reply and for a -ERR api body when check=True."""
    conn = connect()
    peer = listener.next_peer()
    handshake(peer)
    assert conn.wait_connected(5)
    call = gevent.spawn(conn.bgapi, "nonsense")
    peer.expect("bgapi nonsense")
    peer.reply("-ERR no such command")
    with pytest.raises(CommandFailed):
        call.get(timeout=5)
    call = gevent.spawn(conn.api, "no_such_command foo", check=True)
    peer.expect("api no_such_command")
    peer.send(server_frames(INBOUND, lambda d: b"-ERR no_such_command" in d)[0])
    with pytest.raises(CommandFailed, match="Command not found"):
        call.get(timeout=5)


def _connected_with_events(listener, connect):
    """(connection, the domain events it delivers as they come, the peer): connected and subscribed."""
    conn = connect()
    got = []
    conn.subscribe(got.append)
    peer = listener.next_peer()
    handshake(peer)
    assert conn.wait_connected(5)
    return conn, got, peer


def test_events_reach_subscribers_as_domain_events(listener, connect):
    """Should deliver recorded DTMF and hangup events to subscribers as domain events."""
    conn, got, peer = _connected_with_events(listener, connect)
    peer.send(*server_frames(INBOUND, lambda d: b"event-plain" in d))
    wait_until(lambda: any(isinstance(e, ChannelHangup) and e.complete for e in got))
    assert any(isinstance(e, DtmfReceived) for e in got)
    assert all(e.server == conn.name for e in got)


def test_json_format(listener, connect):
    """Should subscribe with `event json` and decode JSON events (body from _body)."""
    conn = connect(event_format="json")
    got = []
    conn.subscribe(got.append)
    peer = listener.next_peer()
    assert handshake(peer).line.startswith("event json ")
    peer.send(*server_frames(INBOUND, lambda d: b"text/event-json" in d))
    wait_until(lambda: any(isinstance(e, JobDone) for e in got))
    assert [e for e in got if isinstance(e, JobDone)][0].body


def test_wrong_password_is_a_clear_error_and_retried(listener, connect):
    """Should report a refused password in last_error, stay disconnected and keep retrying with backoff."""
    conn = connect(password="wrong")
    for _ in range(2):
        peer = listener.next_peer()
        peer.send(b"Content-Type: auth/request\n\n")
        assert peer.expect("auth ").line == "auth wrong"
        peer.send(INVALID, GOODBYE)
        peer.close()
    wait_until(lambda: "password refused" in conn.last_error)
    assert conn.state != CONNECTED
    with pytest.raises(SwitchDisconnected):
        conn.api("status")


def test_rude_rejection(listener, connect):
    """Should report an access-list rejection clearly."""
    conn = connect()
    peer = listener.next_peer()
    peer.send(b"Content-Type: text/rude-rejection\nContent-Length: 24\n\nAccess Denied, go away.\n")
    peer.close()
    wait_until(lambda: "access list" in conn.last_error)


def test_reconnects_and_resubscribes_after_the_switch_drops(listener, connect):
    """Should reconnect with the same subscription, call on_connected again and keep delivering events."""
    conn = connect()
    reconnected = []
    conn.on_connected(lambda: reconnected.append(conn.state))
    got = []
    conn.subscribe(got.append)
    first = listener.next_peer()
    sub1 = handshake(first)
    assert conn.wait_connected(5)
    pending = gevent.spawn(conn.bgapi, "uptime")
    first.expect("bgapi uptime")
    first.close()                                            # FreeSWITCH restarts
    with pytest.raises(SwitchDisconnected):
        pending.get(timeout=5)
    second = listener.next_peer()
    assert handshake(second).line == sub1.line
    wait_until(lambda: len(reconnected) == 2)
    assert reconnected == [CONNECTED, CONNECTED] and conn.connects == 2
    second.send(*server_frames(INBOUND, lambda d: b"Event-Name: DTMF" in d))
    wait_until(lambda: any(isinstance(e, DtmfReceived) for e in got))


@pytest.mark.parametrize("bad", [
    b"Content-Type: api/response\nContent-Length: 10\n\nabc",          # closed mid-frame
    b"\x00\x01garbage without framing\n\n",                             # not ESL
    b"Content-Type: api/response\nContent-Length: 99999999999\n\n",    # beyond the cap
])
def test_bad_input_drops_and_reconnects(listener, connect, bad):
    """Should drop a connection that sends broken framing, fail the waiting api, and reconnect."""
    conn = connect()
    first = listener.next_peer()
    handshake(first)
    assert conn.wait_connected(5)
    call = gevent.spawn(conn.api, "status")
    first.expect("api status")
    first.send(bad)
    first.close()
    with pytest.raises(SwitchDisconnected):
        call.get(timeout=5)
    second = listener.next_peer()
    handshake(second)
    assert conn.wait_connected(5)


def test_undecodable_event_is_skipped_and_the_connection_stays(listener, connect):
    """Should skip an event whose body is not UTF-8 and keep the connection and later events."""
    conn, got, peer = _connected_with_events(listener, connect)
    peer.send(b"Content-Length: 4\nContent-Type: text/event-plain\n\n\xb2\xe2\xca\xd4")
    peer.send(*server_frames(INBOUND, lambda d: b"Event-Name: DTMF" in d))
    wait_until(lambda: any(isinstance(e, DtmfReceived) for e in got))
    assert conn.connects == 1 and conn.connected


def test_api_timeout_keeps_replies_aligned(listener, connect):
    """Should time out an api whose reply is late, and give the next api its own reply, not the late one."""
    conn = connect()
    peer = listener.next_peer()
    handshake(peer)
    assert conn.wait_connected(5)
    with pytest.raises(SwitchTimeout):
        conn.api("slow", timeout=0.1)
    peer.expect("api slow")
    call = gevent.spawn(conn.api, "fast")
    peer.expect("api fast")
    peer.send(b"Content-Type: api/response\nContent-Length: 4\n\nslow")
    peer.send(b"Content-Type: api/response\nContent-Length: 4\n\nfast")
    assert call.get(timeout=5) == "fast"


def test_blocking_subscriber_does_not_block_api(listener, connect):
    """Should let a subscriber call api() from its callback (callbacks run outside the reader)."""
    conn = connect()
    answers = []
    conn.subscribe(lambda e: answers.append(conn.api("status")) if isinstance(e, DtmfReceived) else None)
    peer = listener.next_peer()
    handshake(peer)
    assert conn.wait_connected(5)
    peer.send(server_frames(INBOUND, lambda d: b"Event-Name: DTMF" in d)[0])
    peer.expect("api status")
    peer.send(b"Content-Type: api/response\nContent-Length: 2\n\nUP")
    wait_until(lambda: answers == ["UP"])


def test_pool_status_and_lookup(listener):
    """Should keep one connection per server, report each one's state, and find one by name or host."""
    dead = EslEndpoint("127.0.0.1", 9, "ClueCon")              # nothing listens on the discard port
    live = EslEndpoint(listener.host, listener.port, "ClueCon")
    pool = SwitchPool([live, dead], backoff_initial=0.05, backoff_max=0.1, connect_timeout=1)
    pool.start()
    try:
        handshake(listener.next_peer())
        assert pool.get(live.name).wait_connected(5)
        wait_until(lambda: pool.get(dead.name).last_error)
        status = pool.status()
        assert status[live.name]["state"] == CONNECTED and status[dead.name]["state"] != CONNECTED
        assert pool.connected and len(pool.all()) == 2
        with pytest.raises(KeyError):
            pool.get("nowhere:1")
        with pytest.raises(KeyError):                      # two servers on that host: ambiguous
            pool.for_host("127.0.0.1")
        single = SwitchPool([live])
        assert single.for_host("10.1.2.3") is single.get(live.name)   # the only one
        with pytest.raises(ValueError):
            SwitchPool([live, live])
    finally:
        pool.stop()
    assert all(c.state == DISCONNECTED for c in pool.all())


def test_event_names_are_validated():
    """Should refuse an event name that would inject a command into the subscription line."""
    with pytest.raises(ValueError, match="single words"):
        InboundConnection(EslEndpoint("127.0.0.1", 1, "x"), events=["CHANNEL_CREATE\n\napi shutdown"])


def test_unanswered_commands_are_bounded(listener, connect, monkeypatch):
    """Should drop a connection whose peer stopped answering instead of queueing waiters forever."""
    import switch.protocol

    monkeypatch.setattr(switch.protocol, "MAX_UNANSWERED", 3)
    conn = connect()
    peer = listener.next_peer()
    handshake(peer)
    assert conn.wait_connected(5)
    for _ in range(3):
        with pytest.raises(SwitchTimeout):
            conn.api("hang", timeout=0.05)
    with pytest.raises(SwitchDisconnected, match="without a reply"):
        conn.api("hang", timeout=0.05)
    handshake(listener.next_peer())
    assert conn.wait_connected(5)


def test_core_uuid_tells_servers_on_one_host_apart(listener):
    """Should learn each server's Core-UUID at connect and map a call to its server by it."""
    from types import SimpleNamespace

    other = PeerListener()
    try:
        first = EslEndpoint(listener.host, listener.port, "ClueCon")
        second = EslEndpoint(other.host, other.port, "ClueCon")
        pool = SwitchPool([first, second], backoff_initial=0.05)
        pool.start()
        handshake(listener.next_peer(), core_uuid="11111111-1111-4111-8111-111111111111")
        handshake(other.next_peer(), core_uuid="22222222-2222-4222-8222-222222222222")
        assert all(c.wait_connected(5) for c in pool.all())
        call = SimpleNamespace(channel_data={"Core-UUID": "22222222-2222-4222-8222-222222222222"},
                               peer=("127.0.0.1", 40000), server="127.0.0.1:40000")
        assert pool.for_call(call) is pool.get(second.name)
        assert pool.status()[first.name]["core_uuid"].startswith("1111")
        with pytest.raises(KeyError):                     # unknown server and an ambiguous host
            pool.for_call(SimpleNamespace(channel_data={}, peer=("127.0.0.1", 1), server="127.0.0.1:1"))
    finally:
        pool.stop()
        other.stop()

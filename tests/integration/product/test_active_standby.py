"""The app as an active/standby pair on PostgreSQL (core.leader, run.py): one process holds the active lock and
drives the switch; the other waits, connected to no switch, and takes over when the active goes.

The lock itself is tested in this process (core.leader.Leadership, two holders on one schema); the pair as
run.py runs it in two processes on the fake FreeSWITCH: the standby serves the next call after the active is
killed, and an active whose lock connection is terminated (pg_terminate_backend) stops acting before the
standby starts (no moment with two apps on the switch or two taking calls). PostgreSQL only: with SQLite one
process runs alone."""
from __future__ import annotations

import time

import gevent
import gevent.event
import pytest

from core.leader import Leadership, LeadershipError, PairSettings
from tests.fakeswitch import FakeSwitch, WaitFor
from tests.integration.product.app_process import (AppProcess, PgSchema, app_env, free_port, reachable_pg,
                                                   wait_until_serving)
from tests.ports import retry_in_use
from tests.waiting import wait_until

PG = reachable_pg()
needs_pg = pytest.mark.skipif(PG is None, reason="PostgreSQL is not reachable (HOTLINE_TEST_PG)")
# The lock checks' answer time (the product's default): at 1 s a loaded machine made a check, or the watch greenlet
# of a hub busy building a product, late enough to end a term nobody had cut.
CHECK_TIMEOUT = 2.0


@pytest.fixture
def schema():
    schema = PgSchema(PG, "lock")
    yield schema
    schema.drop()


# ------------------------------------------------------------------------------------------- the lock alone

def test_settings_refuse_bad_values():
    """Should read HOTLINE_PAIR_* and refuse what is not a setting, naming it."""
    settings = PairSettings.from_extra({"HOTLINE_PAIR_CHECK_INTERVAL": "0.5", "HOTLINE_NODE": "app-1"})
    assert (settings.enabled, settings.check_interval, settings.check_timeout, settings.node) == (True, 0.5, 2.0,
                                                                                                  "app-1")
    assert PairSettings.from_extra({"HOTLINE_PAIR": "off"}).enabled is False
    for extra, named in (({"HOTLINE_PAIR": "maybe"}, "HOTLINE_PAIR"),
                         ({"HOTLINE_PAIR_CHECK_INTERVAL": "soon"}, "HOTLINE_PAIR_CHECK_INTERVAL"),
                         ({"HOTLINE_PAIR_CHECK_TIMEOUT": "0"}, "HOTLINE_PAIR_CHECK_TIMEOUT"),
                         ({"HOTLINE_PAIR_CHECK_TIMEOUT": "nan"}, "HOTLINE_PAIR_CHECK_TIMEOUT"),
                         ({"HOTLINE_NODE": "a b;drop"}, "HOTLINE_NODE")):
        with pytest.raises(LeadershipError, match=named):
            PairSettings.from_extra(extra)
    with pytest.raises(LeadershipError, match="PostgreSQL"):
        Leadership("sqlite:///x.sqlite3", "a")


@needs_pg
def test_one_holder_at_a_time_and_the_fence(schema):
    """Should give the lock to one holder; the other takes it only when the first releases it, and acts
    only after the fence."""
    first = Leadership(schema.url, "first", check_interval=0.2, check_timeout=CHECK_TIMEOUT)
    second = Leadership(schema.url, "second", check_interval=0.2, check_timeout=CHECK_TIMEOUT)
    try:
        assert first.acquire()
        assert first.held and first.fence == pytest.approx(0.2 + CHECK_TIMEOUT + 0.5)
        waiter = gevent.spawn(second.acquire)
        gevent.sleep(1.0)
        assert not waiter.ready() and not second.held
        released = time.monotonic()
        first.release()
        assert waiter.get(timeout=10) is True
        assert second.held and second.acquired_at >= released
        assert time.monotonic() - released >= second.fence
    finally:
        first.release()
        second.release()


@needs_pg
def test_terminated_connection_ends_the_term_before_the_other_acts(schema):
    """Should call on_lost after pg_terminate_backend and before the standby (which gets the lock at once)
    passes its fence (check_interval + check_timeout + a margin)."""
    lost_at = []
    active = Leadership(schema.url, "active", check_interval=0.3, check_timeout=CHECK_TIMEOUT,
                        on_lost=lambda: lost_at.append(time.monotonic()))
    standby = Leadership(schema.url, "standby", check_interval=0.3, check_timeout=CHECK_TIMEOUT)
    try:
        assert active.acquire()
        waiter = gevent.spawn(standby.acquire)
        gevent.sleep(0.5)
        (pid,) = [pid for pid, name in schema.lock_backends() if name.endswith(" active")]
        terminated = time.monotonic()
        schema.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert waiter.get(timeout=15) is True
        acted = time.monotonic()
        assert lost_at, "the active never noticed"
        assert terminated < lost_at[0] < standby.acquired_at + standby.fence <= acted
        assert not active.held and active.lost.is_set()
    finally:
        active.release()
        standby.release()


# --------------------------------------------------------------------------- the schema under the active lock

@pytest.fixture
def standby_product(schema, tmp_path, rendered_sounds):
    """Factory: a Product (hotline.product) on ``schema`` as run.py makes it, not built, with quick checks."""
    from core import db as core_db
    from core.config import load_config
    from hotline.product import Product

    made = []

    def make(**settings) -> Product:
        config = load_config({
            "database_url": schema.url, "var_dir": str(tmp_path / f"var-{len(made)}"),
            "sounds_dir": str(rendered_sounds), "esl": f"127.0.0.1:{free_port()}:ClueCon", "outbound": "127.0.0.1:0",
            "http": "127.0.0.1:0", "mode": "test", "secret_key": "s" * 40, "load_demo": False,
            "HOTLINE_PAIR_CHECK_INTERVAL": "0.2", "HOTLINE_PAIR_CHECK_TIMEOUT": str(CHECK_TIMEOUT),
            "HOTLINE_NODE": f"n{len(made)}",
            **settings})
        made.append(Product(config))
        return made[-1]

    yield make
    if core_db.database.obj is not None and not core_db.database.is_closed():
        core_db.database.close()


@needs_pg
def test_standby_of_a_new_version_migrates_only_once_active(schema, standby_product, monkeypatch):
    """Should leave a new version's migration step alone while another app holds the active lock (nothing of
    the standby built meanwhile), and apply it, then build, only once this process holds the lock."""
    import hotline.migrations
    from core.migrations import SchemaMigration, Step

    standby_product().prepare_schema()  # the schema of the version the running active has
    active = Leadership(schema.url, "old active", check_interval=0.2, check_timeout=CHECK_TIMEOUT)
    applied: list[float] = []
    step = Step("9999_next_version", lambda migrator, db: applied.append(time.monotonic()) or [])
    monkeypatch.setattr(hotline.migrations, "STEPS", [*hotline.migrations.STEPS, step])
    product = standby_product()
    leadership = product.leadership()
    try:
        assert active.acquire()
        waiter = gevent.spawn(product.stand_by, leadership, gevent.event.Event())
        gevent.sleep(1.5)
        assert not waiter.ready() and not applied and not product.parts
        assert not SchemaMigration.select().where(SchemaMigration.name == step.name).exists()
        active.release()
        assert waiter.get(timeout=60) is True
        assert leadership.held and len(applied) == 1 and applied[0] >= leadership.acquired_at + leadership.fence
        assert leadership.last_confirmed > applied[0]  # the lock confirmed after the change, before acting
        assert SchemaMigration.select().where(SchemaMigration.name == step.name).exists()
        assert "pool" in product.parts and "web_app" in product.parts
    finally:
        leadership.release()
        active.release()


@needs_pg
def test_standby_of_the_same_version_waits_built_and_touches_no_schema(schema, standby_product, monkeypatch):
    """Should build a standby whose version finds every table and step in place while it waits (a takeover
    only starts it), without running the schema's creation under the running active nor at the takeover."""
    from hotline import product as product_module

    standby_product().prepare_schema()
    active = Leadership(schema.url, "active", check_interval=0.2, check_timeout=CHECK_TIMEOUT)
    product = standby_product()
    leadership = product.leadership()
    prepared: list[tuple[float, bool]] = []
    original = product_module.Product.prepare_schema
    monkeypatch.setattr(product_module.Product, "prepare_schema",
                        lambda self, tables=True: prepared.append((time.monotonic(), tables)) or original(self, tables))
    try:
        assert active.acquire()
        waiter = gevent.spawn(product.stand_by, leadership, gevent.event.Event())
        wait_until(lambda: "web_app" in product.parts, 60, "the standby built while waiting")
        assert not waiter.ready() and prepared == []
        active.release()
        assert waiter.get(timeout=30) is True
        # Once active: the search and statistics structures only, not the tables' "create if missing" (quick).
        assert len(prepared) == 1 and prepared[0][0] >= leadership.acquired_at + leadership.fence
        assert prepared[0][1] is False
    finally:
        leadership.release()
        active.release()


@needs_pg
def test_standby_writes_no_demo_data_nor_menu_tree_until_active(schema, standby_product):
    """Should leave the demo data set and the shipped default menu tree unwritten while another app holds the
    active lock (the standby built all the same), and write them once this process holds it."""
    from caseflow.models import User
    from core.db import database
    from ivr.models import IvrTreeVersion

    standby_product().prepare_schema()  # every table and step: the standby builds while it waits
    active = Leadership(schema.url, "active", check_interval=0.2, check_timeout=CHECK_TIMEOUT)
    product = standby_product(load_demo=True)
    leadership = product.leadership()

    def written() -> tuple[int, int]:
        with database.connection_context():
            return User.select().count(), IvrTreeVersion.select().count()
    try:
        assert active.acquire()
        waiter = gevent.spawn(product.stand_by, leadership, gevent.event.Event())
        wait_until(lambda: "web_app" in product.parts, 60, "the standby built while waiting")
        assert not waiter.ready() and written() == (0, 0) and product.demo_accounts == []
        active.release()
        assert waiter.get(timeout=60) is True
        users, trees = written()
        assert users > 0 and trees == 1 and product.demo_accounts
        with database.connection_context():
            assert product.parts["trees"].active("default") is not None
    finally:
        leadership.release()
        active.release()


# ------------------------------------------------------------------------------------- the pair as processes

@pytest.fixture
def pair(tmp_path, rendered_sounds):
    """Factory: start(node) -> an app process (run.py) on the fake switch ``pair.fs`` and a schema of its own;
    start_active(node) the same, returned once it serves."""
    schema = PgSchema(PG, "pair")
    fs = FakeSwitch(password="ClueCon", record_dir=tmp_path / "fs")
    fs.start()
    processes: list[AppProcess] = []

    class Pair:
        pass

    box = Pair()
    box.fs, box.schema, box.ports = fs, schema, {}

    def start(node: str, **extra: str) -> AppProcess:
        port = box.ports[node] = free_port()
        env = app_env(schema.url, tmp_path / f"var-{node}", rendered_sounds, esl=f"127.0.0.1:{fs.esl_port}:ClueCon",
                      outbound_port=port, http_port=free_port(), node=node, HOTLINE_LOAD_DEMO="false",
                      HOTLINE_PAIR_CHECK_INTERVAL="0.5", HOTLINE_PAIR_CHECK_TIMEOUT=str(CHECK_TIMEOUT), **extra)
        process = AppProcess(node, ["run.py"], env, tmp_path)
        processes.append(process)
        return process

    def start_active(node: str) -> AppProcess:
        """start(node) as the first of the pair, waited for until it serves; started again on other free ports
        when one was taken before it bound it (tests.ports.retry_in_use). Not a standby: it binds its ports only
        when it takes over, long after its start, with its address already in the calls' dialplan."""
        def attempt() -> AppProcess:
            process = start(node)
            try:
                wait_until_serving(process, fs, 120)  # its log's "Address already in use" is in the error
            except Exception:
                process.stop()
                processes.remove(process)
                raise
            return process

        return retry_in_use(attempt)

    box.start, box.start_active = start, start_active
    yield box
    for process in processes:
        process.stop()
    fs.stop()
    schema.drop()


def _authed_sessions(fs) -> int:
    return sum(1 for session in fs.inbound_sessions if session.authed and not session.closed)


def _place(fs, pair, caller: str):
    """A call through the dialplan's two socket actions: the usual active's address, then the other."""
    return fs.place_call(("127.0.0.1", pair.ports["a"]), standby=("127.0.0.1", pair.ports["b"]), caller=caller,
                         script=[WaitFor("playback", "welcome")])


def _served(call, timeout: float = 10.0) -> bool:
    try:
        call.wait_for_app("playback", timeout=timeout)
    except TimeoutError:
        return False
    return any("welcome" in path for path in call.played)


@needs_pg
def test_standby_serves_the_next_call_after_the_active_is_killed(pair):
    """Should keep the standby off the switch while the active runs, and serve a call at the standby's
    address after kill -9 of the active (the dialplan's second socket action)."""
    a = pair.start_active("a")
    pair.fs.wait_for(lambda: _authed_sessions(pair.fs) == 1, 20, "the active's event socket")
    b = pair.start("b")
    b.wait_log("standby: another app process is active", 120)
    gevent.sleep(1.0)
    assert _authed_sessions(pair.fs) == 1, "the standby connected to the switch"
    first = _place(pair.fs, pair, "13800000001")
    assert _served(first) and first.app_address == ("127.0.0.1", pair.ports["a"])

    killed = a.kill()
    assert a.exited(10) is not None
    b.wait_log("active: this process drives the switches", 30, after=killed)
    b.wait_log("outbound socket server on", 30, after=killed)
    pair.fs.wait_for(lambda: _authed_sessions(pair.fs) == 1, 20, "the new active's event socket")
    second = _place(pair.fs, pair, "13800000002")
    assert _served(second), second.executed
    assert second.app_address == ("127.0.0.1", pair.ports["b"])
    assert ("socket", f"127.0.0.1:{pair.ports['b']} async full") in second.channel.executed


@needs_pg
def test_active_cut_from_the_database_stops_before_the_standby_acts(pair):
    """Split brain: terminate the active's lock connection (pg_terminate_backend). The active must stop (exit
    75, its event socket and outbound port closed) before the standby acts; sampled every 20 ms, never two
    apps on the switch nor two ports taking calls."""
    a = pair.start_active("a")
    pair.fs.wait_for(lambda: _authed_sessions(pair.fs) == 1, 20, "the active's event socket")
    b = pair.start("b")
    b.wait_log("standby: another app process is active", 120)

    def accepting(node: str) -> bool:
        import socket

        try:
            socket.create_connection(("127.0.0.1", pair.ports[node]), timeout=0.2).close()
            return True
        except OSError:
            return False

    (pid,) = [pid for pid, name in pair.schema.lock_backends() if name.startswith("hotline active lock a ")]
    samples = []
    terminated = time.monotonic()
    pair.schema.execute("SELECT pg_terminate_backend(%s)", (pid,))
    a_exit = None
    deadline = terminated + 30
    while time.monotonic() < deadline:
        now = time.monotonic()
        if a_exit is None and a.proc.poll() is not None:
            a_exit = now
        samples.append((now, _authed_sessions(pair.fs), accepting("a"), accepting("b")))
        if samples[-1][3] and samples[-1][1] == 1:
            break
        gevent.sleep(0.02)
    assert a.proc.poll() == 75, a.tail()
    assert any(line for _, line in a.lines if "active lock lost" in line)
    b_active = b.wait_log("active: this process drives the switches", 30, after=terminated)
    assert a_exit is not None and a_exit < b_active, (a_exit, b_active)
    assert all(sessions <= 1 for _, sessions, _, _ in samples)
    assert not any(on_a and on_b for _, _, on_a, on_b in samples)
    first_b = min(at for at, _, _, on_b in samples if on_b)
    last_a = max((at for at, _, on_a, _ in samples if on_a), default=terminated)
    assert last_a < first_b
    call = _place(pair.fs, pair, "13800000003")
    assert _served(call) and call.app_address == ("127.0.0.1", pair.ports["b"])


# ---------------------------------------------------------------- what callers live through at the takeover

@pytest.fixture
def queue_general(pair):
    """The schema built and a queue 'general' in it before the apps start (no demo data: it takes a
    minute), so the menu's default route holds callers there while nobody is ready."""
    from acd.admin import create_queue
    from core.db import bind_database, database
    from hotline.schema import create_schema

    bind_database(pair.schema.url)
    with database.connection_context():
        create_schema()
        create_queue("general", "general", announce_interval=0, max_wait=0, wrap_up_seconds=0)
    yield
    if not database.is_closed():
        database.close()


def _start_pair(pair):
    a = pair.start_active("a")
    pair.fs.wait_for(lambda: _authed_sessions(pair.fs) == 1, 20, "the active's event socket")
    b = pair.start("b")
    b.wait_log("standby: another app process is active", 120)
    return a, b


@needs_pg
def test_caller_in_the_menu_when_the_active_dies_starts_again_at_the_standby(pair):
    """Should, as the pair dialplan does, let the menu in progress play out, try the standby (not acting
    yet: refused), wait hotline_failover_wait, try both again and reach the new active: the caller hears the
    welcome again, on the same channel, never hung up."""
    a, b = _start_pair(pair)
    call = pair.fs.place_call(("127.0.0.1", pair.ports["a"]), standby=("127.0.0.1", pair.ports["b"]),
                              caller="13800000004", script=[])
    call.wait_for_app("play_and_get_digits", timeout=20)
    killed = a.kill()
    b.wait_log("active: this process drives the switches", 30, after=killed)

    def welcomed_twice():
        return sum("welcome" in path for path in call.played) >= 2
    pair.fs.wait_for(welcomed_twice, 30, "the welcome from the new active")
    assert not call.channel.hung_up
    assert [s for s in call.sessions][-1] is call.session and len(call.sessions) == 2
    assert call.app_address == ("127.0.0.1", pair.ports["b"])
    assert ("execute_extension", "hotline-failover XML default") in call.channel.executed
    call.hangup()


@needs_pg
def test_caller_waiting_in_a_queue_is_put_back_in_it_by_the_new_active(pair, queue_general):
    """Should find the caller an earlier run left in the hold music (which plays on with nobody in control),
    send them back into the app marked for their queue, and keep their wait: the first entry ends as moved
    at the takeover, the second starts at the first one's entry time."""
    a, b = _start_pair(pair)
    call = pair.fs.place_call(("127.0.0.1", pair.ports["a"]), standby=("127.0.0.1", pair.ports["b"]),
                              caller="13800000005", script=[])
    call.wait_for_app("playback", timeout=30)
    pair.fs.wait_for(lambda: any("local_stream" in arg for app, arg in call.executed if app == "playback"), 60,
                     "the caller in the hold music")
    killed = a.kill()
    b.wait_log("active: this process drives the switches", 30, after=killed)
    b.wait_log(f"caller {call.uuid} left waiting in general by an earlier run", 30, after=killed)

    def entries():
        rows = pair.schema.execute(
            f'SELECT state, end_reason, entered_at FROM "{pair.schema.name}".queue_entry WHERE call_uuid = %s'
            " ORDER BY id", (call.uuid,))
        return rows if len(rows) == 2 else None
    first, second = pair.fs.wait_for(entries, 30, "the caller's second queue entry")
    assert first[:2] == ("overflowed", "takeover:general")
    assert second[0] == "waiting" and abs((second[2] - first[2]).total_seconds()) < 1.0
    assert call.app_address == ("127.0.0.1", pair.ports["b"]) and not call.channel.hung_up
    call.hangup()

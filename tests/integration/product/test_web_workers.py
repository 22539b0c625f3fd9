"""The web UI as separate worker processes (python run.py --web-worker, hotline.worker) beside the call process,
on PostgreSQL: a browser logged in through one worker is known to the other and to a restarted one (signed
cookie + the session version in the database); a screen pop the call process publishes (LISTEN/NOTIFY,
core.pubsub, webui.desk_feed) reaches the agent's event stream open on the other worker; the desk's
buttons and pages go through a worker to the call process (webui.forward)."""
from __future__ import annotations

import json
import re
import threading

import pytest

from core.db import database
from tests.integration.product.app_process import AppProcess, Browser, PgSchema, free_port, reachable_pg
from tests.integration.recorder.test_product_calls import OfficeHoursClock
from tests.ports import retry_in_use

PG = reachable_pg()
pytestmark = pytest.mark.skipif(PG is None, reason="PostgreSQL is not reachable (HOTLINE_TEST_PG)")
SECRET = "w" * 40


@pytest.fixture
def call_process(tmp_path, rendered_sounds):
    """The call process (hotline.product.Product, here in the test process) on a schema of its own, with the
    demo queues and agents, on the fake switch."""
    from core.config import load_config
    from hotline.product import Product
    from tests.fakeswitch import FakeSwitch

    schema = PgSchema(PG, "web")
    fs = FakeSwitch(password="ClueCon", record_dir=tmp_path / "fs")
    fs.start()
    config = load_config({
        "database_url": schema.url, "var_dir": str(tmp_path / "var"), "sounds_dir": str(rendered_sounds),
        "esl": f"127.0.0.1:{fs.esl_port}:ClueCon", "outbound": "127.0.0.1:0", "http": "127.0.0.1:0",
        "mode": "test", "secret_key": SECRET, "load_demo": True,
    })
    product = Product(config, clock=OfficeHoursClock()).build()
    product.start()
    product.fs, product.schema = fs, schema
    fs.wait_for(lambda: product.parts["pool"].connected, 10.0, "the ESL connection")
    yield product
    product.stop(drain_timeout=5)
    fs.stop()
    if database.obj is not None and not database.is_closed():
        database.close()
    schema.drop()


@pytest.fixture
def workers(call_process, tmp_path):
    """Factory: start(name) -> (process, base URL) of a web worker on the call process's database."""
    started = []

    def start(name: str, port: int | None = None):
        if port is None:  # a free port, another if it was taken before the worker bound it
            return retry_in_use(lambda: start(name, free_port()))
        env = {"HOTLINE_DATABASE_URL": call_process.schema.url, "HOTLINE_HTTP": f"127.0.0.1:{port}",
               "HOTLINE_CALL_PROCESS": f"http://127.0.0.1:{call_process.parts['web'].server_port}",
               "HOTLINE_SECRET_KEY": SECRET, "HOTLINE_MODE": "test", "HOTLINE_VAR_DIR": str(tmp_path / name),
               "HOTLINE_CONFIG": str(tmp_path / "none.toml"), "HOTLINE_LOAD_DEMO": "false"}
        process = AppProcess(name, ["run.py", "--web-worker"], env, tmp_path)
        started.append(process)
        process.wait_log("web worker on http://", 120)
        return process, f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        process.stop()


def _demo_agent():
    from acd.models import Agent, AgentSkill
    from caseflow.models import User

    with database.connection_context():
        agent = (Agent.select(Agent, User).join(User).join_from(Agent, AgentSkill)
                 .where(AgentSkill.skill == "general").order_by(Agent.id).first())
        return agent.id, agent.user.operator_no, agent.extension


def test_screen_pop_reaches_the_stream_on_the_other_worker(call_process, workers):
    """Should deliver the call process's screen pop (answered, with the caller's number unmasked and the
    controls of a call) to the agent's event stream open on worker 2, while the agent logged in and took
    the desk through worker 1; the desk's ready button goes through worker 1 to the call process."""
    fs, acd = call_process.fs, call_process.parts["acd"]
    (_w1, one), (_w2, two) = workers("w1"), workers("w2")
    agent_id, operator_no, extension = _demo_agent()
    fs.add_agent(extension, answer_delay=0.3, talk_seconds=20)
    browser = Browser()
    browser.login(one, operator_no, "demo1234")
    status, desk = browser.request(f"{one}/desk/")  # forwarded: the call process renders it and takes the desk
    assert status == 200, desk[:300]
    token = re.search(r'data-token="([^"]+)"', desk).group(1)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"', desk)
    csrf = next(group for group in csrf.groups() if group)
    lines: list[str] = []
    stop = threading.Event()
    browser.stream(f"{two}/desk/events?desk={token}&max_seconds=40", lines, stop)
    fs.wait_for(lambda: "retry: 2000" in lines, 10, "the stream on worker 2")
    status, answer = browser.request(f"{one}/desk/action", {"action": "ready", "desk": token, "csrf_token": csrf})
    assert status == 200 and json.loads(answer)["ok"], answer
    fs.wait_for(lambda: acd.agents[agent_id].status == "available", 10, "the agent ready in the call process")
    call = fs.place_call(call_process.parts["outbound"].address, caller="13912345678", destination="12345",
                         script=[])

    def popped():
        for i, line in enumerate(lines):
            if line == "event: answered" and i + 1 < len(lines) and lines[i + 1].startswith("data: "):
                return json.loads(lines[i + 1][6:])
        return None
    pop = fs.wait_for(popped, 30, "the screen pop on worker 2")
    stop.set()
    assert pop["number"] == "13912345678" and pop["masked"] is False and pop["call_uuid"] == call.uuid
    assert "hangup" in pop["enabled"] and pop["since"].endswith("Z")
    assert any(line == "event: agent" for line in lines)  # the state changes came the same way
    assert "desk" not in pop and "skill" not in pop
    call.hangup()


def test_session_survives_a_worker_restart_and_works_on_any_worker(call_process, workers):
    """Should know a browser logged in through worker 1 on worker 2, and on worker 1 started again."""
    (w1, one), (_w2, two) = workers("w1"), workers("w2")
    _agent_id, operator_no, _extension = _demo_agent()
    browser = Browser()
    browser.login(one, operator_no, "demo1234")
    status, page = browser.request(f"{two}/agent/tickets")
    assert status == 200 and "/login" not in page[:2000] and operator_no in page
    port = int(one.rsplit(":", 1)[1])
    w1.stop()
    _again, one = workers("w1-again", port)
    status, page = browser.request(f"{one}/agent/tickets")
    assert status == 200 and operator_no in page


def test_desk_claim_taken_through_one_worker_ends_the_stream_on_the_other(call_process, workers):
    """Should tell the stream of a window on worker 2 that another window took the desk (page load through
    worker 1, in the call process): the claim travels on the bus."""
    (_w1, one), (_w2, two) = workers("w1"), workers("w2")
    _agent_id, operator_no, _extension = _demo_agent()
    browser = Browser()
    browser.login(one, operator_no, "demo1234")
    first = re.search(r'data-token="([^"]+)"', browser.request(f"{one}/desk/")[1]).group(1)
    lines: list[str] = []
    stop = threading.Event()
    browser.stream(f"{two}/desk/events?desk={first}&max_seconds=30", lines, stop)
    call_process.fs.wait_for(lambda: "retry: 2000" in lines, 10, "the stream on worker 2")
    second = re.search(r'data-token="([^"]+)"', browser.request(f"{one}/desk/")[1]).group(1)
    assert second != first
    call_process.fs.wait_for(lambda: "event: superseded" in lines, 10, "the superseded event on worker 2")
    stop.set()


def test_worker_without_a_call_process_says_so(call_process, tmp_path):
    """Should answer a forwarded page with 503 and a clear text when no call process answers."""
    port = free_port()
    env = {"HOTLINE_DATABASE_URL": call_process.schema.url, "HOTLINE_HTTP": f"127.0.0.1:{port}",
           "HOTLINE_CALL_PROCESS": f"http://127.0.0.1:{free_port()}", "HOTLINE_SECRET_KEY": SECRET,
           "HOTLINE_MODE": "test", "HOTLINE_VAR_DIR": str(tmp_path / "lone"), "HOTLINE_CONFIG": str(tmp_path / "x")}
    lone = AppProcess("lone", ["run.py", "--web-worker"], env, tmp_path)
    try:
        lone.wait_log("web worker on http://", 120)
        status, text = Browser().request(f"http://127.0.0.1:{port}/supervisor/")
        assert status == 503 and "call process is not reachable" in text
        status, _ = Browser().request(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
    finally:
        lone.stop()


def test_worker_refuses_a_bad_call_process_setting(tmp_path):
    """Should exit 2 naming HOTLINE_CALL_PROCESS when it is not http://host:port."""
    env = {"HOTLINE_DATABASE_URL": PG, "HOTLINE_HTTP": f"127.0.0.1:{free_port()}", "HOTLINE_SECRET_KEY": SECRET,
           "HOTLINE_CALL_PROCESS": "ftp://somewhere/path", "HOTLINE_MODE": "test",
           "HOTLINE_VAR_DIR": str(tmp_path / "bad"), "HOTLINE_CONFIG": str(tmp_path / "x")}
    bad = AppProcess("bad", ["run.py", "--web-worker"], env, tmp_path)
    try:
        assert bad.exited(60) == 2
        assert any("HOTLINE_CALL_PROCESS" in line for _, line in bad.lines)
    finally:
        bad.stop()


def test_worker_refuses_a_shared_path_the_call_process_never_wrote(call_process, tmp_path):
    """Should exit 2 when HOTLINE_SHARED_DIR on the worker is not the call process's storage (no marker):
    it would serve no recording and store attachments nobody else sees."""
    local = tmp_path / "local-disk"
    local.mkdir()
    env = {"HOTLINE_DATABASE_URL": call_process.schema.url, "HOTLINE_HTTP": f"127.0.0.1:{free_port()}",
           "HOTLINE_CALL_PROCESS": "http://127.0.0.1:1", "HOTLINE_SECRET_KEY": SECRET, "HOTLINE_MODE": "test",
           "HOTLINE_VAR_DIR": str(tmp_path / "v"), "HOTLINE_CONFIG": str(tmp_path / "x"),
           "HOTLINE_SHARED_DIR": str(local)}
    worker = AppProcess("local", ["run.py", "--web-worker"], env, tmp_path)
    try:
        assert worker.exited(90) == 2
        assert any(".hotline-storage" in line for _, line in worker.lines), worker.tail()
    finally:
        worker.stop()


def test_console_stream_goes_through_a_worker(call_process, workers):
    """Should stream the team-lead console through a web worker (forwarded to the call process, which holds
    the ACD): the whole board at once, then an agent's new state as a change."""
    fs, acd = call_process.fs, call_process.parts["acd"]
    _w1, one = workers("w1")
    agent_id, _operator_no, _extension = _demo_agent()
    browser = Browser()
    browser.login(one, "8001", "demo1234")  # the demo team lead
    lines: list[str] = []
    stop = threading.Event()
    browser.stream(f"{one}/supervisor/stream?max_seconds=30", lines, stop)
    fs.wait_for(lambda: "event: board" in lines, 20, "the console's board through the worker")
    acd.transition(agent_id, "login")
    acd.transition(agent_id, "ready")

    def changed():
        for i, line in enumerate(lines):
            if line == "event: changes" and i + 1 < len(lines) and lines[i + 1].startswith("data: "):
                rows = json.loads(lines[i + 1][6:])["agent_rows"]
                if any(row["agent_id"] == agent_id and row["state"] == "idle" for row in rows):
                    return True
        return False
    fs.wait_for(changed, 20, "the agent's new state on the console's stream")
    stop.set()
    assert not any(line.startswith("!error") for line in lines), lines[-3:]

"""The analysis process (stats.analysis_process): keyword extraction, the hotspot scan and the dispatch
suggestions run there, never in the call process; the product keeps it running, and the dispatch form says
so instead of waiting when it is down (both databases; the first test on a fresh interpreter)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import gevent

ROOT = Path(__file__).resolve().parents[3]


def test_call_process_never_loads_jieba_or_sklearn(db_url, tmp_path, rendered_sounds):
    """Should train the model and run the product's hotspot scan in the analysis process, show the water
    company first of three on a 停水 ticket's dispatch form, and leave jieba and scikit-learn out of the
    call process's modules."""
    done = subprocess.run([sys.executable, "-m", "tests.integration.product.analysis_driver", db_url,
                           str(tmp_path / "var"), str(rendered_sounds)], cwd=ROOT, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"trained": 0, "raised": 0, "choices": 3, "water_first": True, "jieba": False,
                      "sklearn": False}, done.stderr[-3000:]


def _dispatch_form(product, number: str) -> str:
    client = product.parts["web_app"].test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"operator_no": "9001", "password": "demo1234", "csrf_token": token})
    return client.get(f"/tickets/{number}").get_data(as_text=True)


def _wait(predicate, timeout: float, what: str):
    with gevent.Timeout(timeout, AssertionError(f"no {what} within {timeout} s")):
        while not predicate():
            gevent.sleep(0.05)


def test_killed_analysis_process_is_restarted_and_the_form_degrades(make_product):
    """Should start the analysis process again after kill -9, the dispatch form saying the suggestion
    service is not answering meanwhile (at once, not after a wait), and answering again once it is back;
    stopping the product ends it."""
    from caseflow import services
    from caseflow.models import User
    from core.db import database

    product = make_product()
    kept, client = product.parts["analysis"], product.parts["analysis_client"]
    first = client.request("ping", timeout=5, ready_wait=30)["pid"]
    with database.connection_context():
        ticket = services.create_ticket("小区停水了", created_by=User.get(User.operator_no == "1001"),
                                        clock=product.clock)
    assert "智能派单服务暂无响应" not in _dispatch_form(product, ticket.number)
    kept.restart_delay = 3.0  # room to look at the form while it is down
    os.kill(first, signal.SIGKILL)
    _wait(lambda: kept.process is None or kept.process.pid != first, 10, "exit noticed")
    started = gevent.get_hub().loop.now()
    html = _dispatch_form(product, ticket.number)
    assert "智能派单服务暂无响应" in html and 'data-testid="learned-none"' in html
    assert gevent.get_hub().loop.now() - started < 2.0
    second = client.request("ping", timeout=5, ready_wait=30)["pid"]
    assert second != first and kept.restarts == 1
    assert "智能派单服务暂无响应" not in _dispatch_form(product, ticket.number)
    product.parts["analysis"].stop()
    _wait(lambda: not Path(f"/proc/{second}").exists() or "Z" in _state(second), 10, "analysis process end")


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"

"""Benchmark: the agent desk's screen pop and the team-lead console's update delay, in Chromium (issue 13).

The product's parts run as in production, in one gevent hub: the ACD on an inbound ESL pool to the protocol-level
fake FreeSWITCH (tests/fakeswitch), the outbound socket server taking the callers into the queue, and the web app
(webui) on gevent's WSGI server, all on a throw-away SQLite database. Debian's Chromium, driven by Playwright from
the main thread as the browser tests drive it, is the agent's and the team lead's browser.

- Screen pop: one agent logged in on /desk/ and ready; ``--calls`` callers (default 100), each with a name and an
  earlier ticket, call one after the other. Measured per call: from the ACD's "answered" notice (the agent
  picked up: the caller is answered) to the moment the page shows the whole pop (the caller's number, name and
  earlier ticket), both read on the machine's clock (the page's performance.timeOrigin + performance.now()).
  Aim: under 300 ms (p50 and p99 printed).
- Console: ``--agents`` agents (default 500) and a team lead on /supervisor/. In ``--rounds`` rounds (default 4)
  every agent changes state at once (log in, then ready / not ready in turn), each change timed when the ACD
  made it; the page's rows are watched and the delay is how long each agent's new state took to show (the
  page is kept live by the console's event stream, /supervisor/stream). Aim: under 1 s. The page's polls of
  /supervisor/stats are counted too (its fallback while the stream is down: none expected).

Asserts nothing: the table shows each figure beside its aim.

    .venv/bin/python bench/desk.py [--calls 100] [--agents 500] [--rounds 4] [--skip-pop] [--skip-console]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import pct  # noqa: E402

POP_AIM_MS = 300.0
CONSOLE_AIM_MS = 1000.0
PASSWORD = "bench-desk-1234"
CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--headless"]
DESK_AGENT_EXTENSION = "1001"


def make_stack(config, folder: Path):
    """The browser tests' phone stack (tests/browser/telephony.py) with the desk agent's phone, noting when the
    ACD says each call was answered (``stack.answered``: call uuid -> time.time())."""
    from tests.browser.telephony import Telephony

    answered: dict[str, float] = {}

    def on_notice(notice):
        if notice.get("type") == "answered" and notice.get("call_uuid"):
            answered[notice["call_uuid"]] = time.time()

    stack = Telephony(config, folder, extensions=(DESK_AGENT_EXTENSION,), call_seconds=120, on_notice=on_notice,
                      hub_timeout=60.0, name="bench-desk")
    stack.answered = answered
    return stack


def build(folder: Path, callers: int, agents: int):
    """The database (queue, desk agent, console agents, team lead, callers with earlier tickets) and config."""
    from acd.admin import create_agent, create_queue
    from caseflow import services as case_services
    from caseflow.accounts import create_user, hash_password
    from caseflow.models import User
    from tests.browser.telephony import fresh_database

    database, config = fresh_database(folder, "desk.sqlite3", "bench-desk-secret-" + "b" * 32)
    with database.connection_context():
        create_queue("consult", "consult", wrap_up_seconds=0, announce_interval=0)
        create_agent(create_user("8001", "王芳", PASSWORD, roles="agent", extension=DESK_AGENT_EXTENSION),
                     {"consult": 5})
        create_user("9001", "陈班长", PASSWORD, roles="team_lead")
        hashed = hash_password(PASSWORD)
        with database.atomic():
            for i in range(agents):  # console agents: no phone of their own, never offered a call
                user = User.create(operator_no=f"7{i:04d}", name=f"坐席{i:03d}", password_hash=hashed,
                                   roles="agent", extension=f"6{i:04d}")
                create_agent(user, {"other": 1})
            for i in range(callers):
                case_services.create_ticket(f"第{i}号来电的早先诉求：小区路灯不亮", citizen_phone=caller(i),
                                            citizen_name=f"市民{i:03d}", title=f"路灯不亮 {i}")
    return database, config


def caller(i: int) -> str:
    return f"1390000{i:04d}"


# The page side of the screen pop: resolves to the epoch time (ms) the pop is whole for ``number``.
POP_WAITER = """
(number) => {
  window.__popAt = null;
  const whole = () => {
    const shown = document.querySelector('[data-testid="pop-number"]');
    const who = document.querySelector('[data-testid="pop-citizen"]');
    const tickets = document.querySelector('[data-testid="pop-tickets"]');
    return shown && shown.textContent.trim() === number && who && who.textContent.trim() !== ""
      && tickets && tickets.children.length > 0;
  };
  const watch = new MutationObserver(() => {
    if (window.__popAt === null && whole()) { window.__popAt = performance.timeOrigin + performance.now(); watch.disconnect(); }
  });
  watch.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}
"""

# The console side: every change of an agent row's state badge, with the epoch time (ms) it showed.
CONSOLE_WATCH = """
() => {
  window.__changes = [];
  const last = {};
  const look = () => {
    const now = performance.timeOrigin + performance.now();
    for (const row of document.querySelectorAll('#agent-rows tr[data-agent]')) {
      const badge = row.querySelector('[data-testid="agent-state"]');
      const shown = badge ? badge.className + '|' + badge.textContent : '';
      if (last[row.dataset.agent] !== shown) { last[row.dataset.agent] = shown; window.__changes.push([row.dataset.agent, now, shown]); }
    }
  };
  look();
  new MutationObserver(look).observe(document.getElementById('agent-rows'), {subtree: true, childList: true, characterData: true});
}
"""


def wait_until(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.01)


def log_in(page, url: str, operator_no: str) -> None:
    page.goto(url + "/login")
    page.fill("#operator_no", operator_no)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit].primary")


def bench_pop(stack, browser, calls: int) -> list[float]:
    """Milliseconds from the answer to the whole pop, per call."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1366, "height": 768})
    page = context.new_page()
    log_in(page, stack.url, "8001")
    page.goto(stack.url + "/desk/")
    page.click("button[data-act=ready]")
    agent_id = next(a.id for a in stack.acd.agents.values() if a.extension == DESK_AGENT_EXTENSION)

    def free() -> bool:
        agent = stack.acd.agents[agent_id]
        return agent.status == "available" and agent.state == "idle" and not agent.call_uuid

    wait_until(free, "the desk agent ready")
    page.wait_for_timeout(500)  # the page's event stream is open
    out = []
    for i in range(calls):
        number = caller(i)
        page.evaluate(POP_WAITER, number)
        call = stack.run_in_hub(lambda n=number: stack.fs.place_call(stack.outbound.address, caller=n,
                                                                   destination="12345"))
        page.wait_for_function("() => window.__popAt !== null", timeout=15000)
        shown = page.evaluate("() => window.__popAt")
        wait_until(lambda: call.uuid in stack.answered, "the answered notice")
        out.append(shown - stack.answered[call.uuid] * 1000)
        stack.run_in_hub(call.hangup)
        try:
            wait_until(free, "the agent free again")
        except TimeoutError:
            agent = stack.acd.agents[agent_id]
            raise TimeoutError(f"the agent is not free again: {agent.status} {agent.state} {agent.call_uuid!r}")
        print(f"\r  screen pop: {i + 1}/{calls} calls", end="", flush=True)
    print()
    context.close()
    return out


def bench_console(stack, browser, agents: int, rounds: int) -> tuple[list[float], int, float]:
    """(delays in ms from each agent's change to its row showing it, polls of /supervisor/stats, burst s)."""
    ids = sorted(a.id for a in stack.acd.agents.values() if a.extension != DESK_AGENT_EXTENSION)[:agents]
    context = browser.new_context(locale="zh-CN", viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    log_in(page, stack.url, "9001")
    page.goto(stack.url + "/supervisor/")
    page.wait_for_function(f"() => document.querySelectorAll('#agent-rows tr[data-agent]').length >= {len(ids)}",
                           timeout=60000)
    page.evaluate(CONSOLE_WATCH)
    changed: list[tuple[str, float]] = []
    bursts = []
    for r in range(rounds):
        event = "login" if r == 0 else ("ready" if r % 2 else "not_ready")

        def burst(event=event):
            made = []
            for agent_id in ids:
                # Timed as the change begins: the ACD holds the new state from there on while it writes it
                # down, and a look of the console's stream in between may show it before transition() returns.
                made.append((str(agent_id), time.time() * 1000))
                stack.acd.transition(agent_id, event)
            return made

        started = time.monotonic()
        changed += stack.run_in_hub(burst, timeout=300)
        bursts.append(time.monotonic() - started)
        page.wait_for_timeout(4500)  # well past the aim, so every change can show
        print(f"\r  console: {r + 1}/{rounds} rounds of {len(ids)} state changes", end="", flush=True)
    print()
    seen = page.evaluate("() => window.__changes")
    polls = page.evaluate("() => performance.getEntriesByType('resource')"
                          ".filter(e => e.name.includes('/supervisor/stats')).length")
    context.close()
    by_agent: dict[str, list[float]] = {}
    for agent_id, at, _shown in seen:
        by_agent.setdefault(agent_id, []).append(at)
    delays = []
    for agent_id, at in changed:
        later = [t for t in by_agent.get(agent_id, []) if t >= at]
        delays.append(min(later) - at if later else float("inf"))
    return delays, polls, sum(bursts) / len(bursts)


def row(name: str, values: list[float], aim: float | None) -> str:
    finite = [v for v in values if v != float("inf")]
    missing = len(values) - len(finite)
    p50, p99 = pct(finite, 50), pct(finite, 99)
    verdict = "" if aim is None else ("yes" if finite and p99 <= aim and not missing else "NO")
    aim_text = "-" if aim is None else f"< {aim:.0f}"
    extra = f" ({missing} never shown)" if missing else ""
    return (f"| {name:<58} | {len(values):>5} | {p50:>8.1f} | {p99:>8.1f} | {max(finite or [0]):>8.1f} | "
            f"{aim_text:>7} | {verdict:>4} |{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--skip-pop", action="store_true")
    parser.add_argument("--skip-console", action="store_true")
    args = parser.parse_args()
    if not (shutil.which(CHROMIUM) or os.path.exists(CHROMIUM)):
        print(f"bench/desk.py skipped: Chromium not found at {CHROMIUM} (HOTLINE_CHROMIUM names another; "
              "scripts/setup-system.sh installs Debian's chromium)")
        return
    import logging

    logging.basicConfig(level=logging.WARNING)
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    print(f"building: {args.agents} console agents, {args.calls} callers with an earlier ticket ...", flush=True)
    database, config = build(folder, args.calls, args.agents)
    stack = make_stack(config, folder)
    stack.start()
    if not stack.ready.wait(30) or stack.error is not None:
        sys.exit(f"the stack did not start: {stack.error}")
    lines = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            if not args.skip_pop:
                pops = bench_pop(stack, browser, args.calls)
                lines.append(row("screen pop: answer -> whole pop in the page (ms)", pops, POP_AIM_MS))
            if not args.skip_console:
                delays, polls, burst = bench_console(stack, browser, args.agents, args.rounds)
                lines.append(row(f"console: state change -> row shows it, {args.agents} agents (ms)", delays,
                                 CONSOLE_AIM_MS))
                lines.append(f"(a round of {args.agents} state changes took {burst * 1000:.0f} ms in the ACD; "
                             f"the console polled /supervisor/stats {polls} times)")
            browser.close()
    finally:
        stack.stop()
        database.close()
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print(f"| {'measure':<58} | {'n':>5} | {'p50':>8} | {'p99':>8} | {'max':>8} | {'aim':>7} | {'met':>4} |")
    print(f"|{'-' * 60}|{'-' * 7}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 9}|{'-' * 6}|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()

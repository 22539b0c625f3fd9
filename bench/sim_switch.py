"""One fake FreeSWITCH of bench/simulation.py, in a process of its own: every seat's phone, callers walking the
IVR to the queues and to the complaint recording, held at a level the orchestrator sets.

The seats: every extension has a scripted phone on every switch, registered (sofia::register) on its home switch
only (extension index modulo the number of switches), as desk phones spread over the servers. A caller on
another switch reaches it as a gateway leg (``sofia/gateway/frontdoor/<ext>``, the app's HOTLINE_CROSS_SERVER_DIAL
for that switch): the SIP front door of issue 15 item 1 stood in for, so any switch rings any seat. Talk times and
the phones' answer delays are drawn per call (lognormal talk, uniform ring).

The callers (one scripted caller per call, in simulated seconds like everything in the fake):
  * to a person (``--person-share``): 1 at the main menu, then 1, 2 or 3 (consult, complaint, convenience queue)
    or nothing (the menu's timeout: the general queue); they stay until the agent hangs up;
  * a complaint recording (the rest): 2, 2, talk for a drawn time, #, 1 to confirm; they hang up at the menu
    after it (the ticket is filed and its number read before that menu).

Control: one JSON line per command on stdin, answers on stdout. ``{"cmd": "level", "calls": N, "app": [h, p],
"cps": R}`` keeps N callers on the line (each caller that ends is replaced), new ones started at most R a
second; ``{"cmd": "drain", "timeout": s}`` stops replacing, waits for every call to end (hangs up the rest after
``timeout`` wall seconds) and answers with how every placed call ended; ``{"cmd": "stop"}``.
"""
from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GATEWAY = "frontdoor"
EXTENSION_BASE = 20000
SCRIPT_TIMEOUT = 1800.0  # wall seconds a caller waits for a menu or the recording before it hangs up
RECORD_CAP = 30.0  # simulated seconds of audio at most in a file the fake writes (the disk: see cap_recordings)


class Distributions:
    """Per-call random draws in simulated seconds (seeded: a run is repeatable)."""

    def __init__(self, seed: int, talk_mean: float, talk_sigma: float, speak_mean: float):
        self.rng = random.Random(seed)
        self.talk_mean, self.talk_sigma, self.speak_mean = talk_mean, talk_sigma, speak_mean

    def lognormal(self, mean: float, sigma: float, low: float, high: float) -> float:
        import math

        mu = math.log(mean) - sigma * sigma / 2  # so that the mean is ``mean``
        return min(high, max(low, self.rng.lognormvariate(mu, sigma)))

    def talk(self) -> float:
        return self.lognormal(self.talk_mean, self.talk_sigma, 20.0, 1800.0)

    def speak(self) -> float:
        return self.lognormal(self.speak_mean, 0.5, 3.0, 120.0)

    def ring(self) -> float:
        return self.rng.uniform(1.5, 6.0)


def drawn_phone(agent_class, draws: Distributions):
    """A phone class whose answer delay and talk time are drawn afresh for every call it answers."""

    class DrawnPhone(agent_class):
        talk_seconds = property(lambda self: draws.talk(), lambda self, value: None)
        answer_delay = property(lambda self: draws.ring(), lambda self, value: None)

    return DrawnPhone


def cap_recordings() -> None:
    """Files the fake writes (complaints, every bridged conversation's uuid_record) hold at most RECORD_CAP
    seconds: 3,000 calls of three minutes would write about 3 MB each, tens of GB in a run. The app's work on a
    file (hash, index, conversion) is then that of a shorter one; the calls themselves last their full time."""
    from tests.fakeswitch import audio

    write = audio.write_wav

    def capped(path, seconds, speech=None):
        spans = [(a, min(b, RECORD_CAP)) for a, b in (speech or []) if a < RECORD_CAP]
        return write(path, min(seconds, RECORD_CAP), spans)

    audio.write_wav = capped


def caller_script(draws: Distributions, person_share: float):
    """(kind, steps) of one caller."""
    from tests.fakeswitch import Hangup, Press, Speak, WaitFor

    if draws.rng.random() < person_share:
        key = draws.rng.choice(["1", "2", "3", ""])  # "": no key, the general queue after the menu's timeout
        steps = [Press("1", timeout=SCRIPT_TIMEOUT)] + ([Press(key, timeout=SCRIPT_TIMEOUT)] if key else [])
        return "person", steps
    return "complaint", [Press("2", timeout=SCRIPT_TIMEOUT), Press("2", timeout=SCRIPT_TIMEOUT),
                         Speak(draws.speak(), timeout=SCRIPT_TIMEOUT), Press("#", timeout=SCRIPT_TIMEOUT),
                         Press("1", timeout=SCRIPT_TIMEOUT),
                         WaitFor("play_and_get_digits", "after_service", timeout=SCRIPT_TIMEOUT), Hangup()]


def serve(index: int, switches: int, agents: int, scale: float, person_share: float, talk_mean: float,
          seed: int) -> int:
    import gevent
    from gevent.fileobject import FileObjectThread

    from tests.fakeswitch import FakeSwitch
    from tests.fakeswitch.sofia import Agent

    from bench.ivr import _raise_fd_limit

    _raise_fd_limit()
    cap_recordings()
    draws = Distributions(seed * 100 + index, talk_mean, 0.6, 25.0)
    fs = FakeSwitch(password="ClueCon", record_dir=Path(tempfile.mkdtemp(prefix=f"sim-fs{index}-")),
                    time_scale=scale, keep_frames=False, heartbeat_seconds=20.0 / scale)  # 20 wall s, as FreeSWITCH
    fs.start()
    phone = drawn_phone(Agent, draws)
    for i in range(agents):
        home = i % switches == index
        seat = fs.add_agent(str(EXTENSION_BASE + i), registered=home)
        seat.__class__ = phone
    out = sys.stdout
    placed: list[tuple[str, object]] = []
    state = {"level": 0, "app": None, "cps": 30.0, "replacing": True, "next": 0}
    live = {"count": 0}

    def say(**message) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    def one_caller() -> None:
        number = f"13{index:01d}{state['next']:08d}"
        state["next"] += 1
        kind, steps = caller_script(draws, person_share)
        call = fs.place_call(tuple(state["app"]), caller=number, destination="12345", script=steps,
                             connect_timeout=60)
        placed.append((kind, call))
        live["count"] += 1
        try:
            call.wait_ended(timeout=24 * 3600)
        except TimeoutError:
            pass
        finally:
            live["count"] -= 1

    def keep_level() -> None:
        """Start callers (at most cps a second) while fewer than the level are on the line."""
        while True:
            if state["replacing"] and state["app"] and live["count"] < state["level"]:
                gevent.spawn(one_caller)
                gevent.sleep(1.0 / state["cps"])
            else:
                gevent.sleep(0.05)

    def drain(timeout: float) -> None:
        """Stop replacing callers; after ``timeout`` the callers still on the line hang up (counted apart)."""
        state["replacing"] = False
        deadline = time.monotonic() + timeout
        while live["count"] and time.monotonic() < deadline:
            gevent.sleep(0.2)
        cut = {id(call) for _, call in placed if call.hangup_cause is None}
        for _, call in placed:
            if id(call) in cut:
                call.hangup()
        deadline = time.monotonic() + 60
        while live["count"] and time.monotonic() < deadline:
            gevent.sleep(0.2)
        outcome: dict[str, dict[str, int]] = {}
        errors: dict[str, int] = {}
        for kind, call in placed:
            if call.hangup_cause is None:
                key = "not ended"
            elif id(call) in cut:
                key = "hung up by the caller at the end of the run"
            else:
                key = f"{call.hangup_cause} by {call.hangup_by}"
            causes = outcome.setdefault(kind, {})
            causes[key] = causes.get(key, 0) + 1
            if call.script_error is not None and id(call) not in cut:
                reason = str(call.script_error)[:80]
                errors[reason] = errors.get(reason, 0) + 1
        say(event="drained", placed=len(placed), kinds={k: sum(v.values()) for k, v in outcome.items()},
            outcome=outcome, not_ended=sum(1 for _, c in placed if c.hangup_cause is None), cut=len(cut),
            script_errors=errors, connect_errors=sum(1 for _, c in placed if c.connect_error is not None),
            bridged=sum(1 for k, c in placed if k == "person" and c.bridged_to))

    gevent.spawn(keep_level)
    say(event="ready", port=fs.esl_port)
    for line in FileObjectThread(sys.stdin):
        command = json.loads(line)
        if command["cmd"] == "level":
            state.update(level=command["calls"], app=command["app"], cps=command["cps"], replacing=True)
            say(event="level", calls=command["calls"])
        elif command["cmd"] == "live":
            say(event="live", calls=live["count"], placed=len(placed))
        elif command["cmd"] == "drain":
            drain(command["timeout"])
        elif command["cmd"] == "stop":
            break
    fs.stop()
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, kind in (("--index", int), ("--switches", int), ("--agents", int), ("--scale", float),
                       ("--person-share", float), ("--talk-mean", float), ("--seed", int)):
        parser.add_argument(name, type=kind, required=True)
    a = parser.parse_args()
    sys.exit(serve(a.index, a.switches, a.agents, a.scale, a.person_share, a.talk_mean, a.seed))

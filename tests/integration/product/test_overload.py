"""Overload shed at the door (issue 16's faults list), through the whole product on the fake FreeSWITCH: when
the switch's replies slow down (a saturated FreeSWITCH) or the app's own loop falls behind, new calls are
refused (503, or the short busy prompt) while every call already accepted completes with its ticket, and the
door opens again once the figures are back down."""
from __future__ import annotations

import time

import gevent
import pytest

from caseflow.models import Ticket
from core.db import database
from ops.models import SystemAlarm
from switch.admission import REPLY_LATENCY, RESUME
from tests.fakeswitch import Press, Speak, WaitFor
from tests.integration.recorder.test_product_calls import SECRET, OfficeHoursClock

COMPLAINT = [Press("2"), Press("2"), Speak(3), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")]


@pytest.fixture(autouse=True)
def short_window():
    """The reply figures look back 2 s here (10 s in the product) and are forgotten after the test: they are
    the process's, and other tests must not start with this one's slow replies."""
    window = REPLY_LATENCY.window
    REPLY_LATENCY.window = 2.0
    REPLY_LATENCY.clear()
    yield
    REPLY_LATENCY.window = window
    REPLY_LATENCY.clear()


def _tickets(callers):
    """This test's tickets of ``callers`` (on PostgreSQL the product tests share the schema: earlier runs'
    tickets of the same numbers are older than this test's clock)."""
    with database.connection_context():
        return Ticket.select().where(Ticket.citizen_phone.in_(list(callers))
                                     & (Ticket.id > _tickets.before)).count()


def _from_now_on():
    with database.connection_context():
        _tickets.before = Ticket.select(Ticket.id).order_by(Ticket.id.desc()).scalar() or 0


def _overload_alarm():
    with database.connection_context():
        return SystemAlarm.get_or_none(SystemAlarm.kind == "overload")


@pytest.mark.parametrize("refuse", ["503", "busy"])
def test_a_slow_switch_sheds_new_calls_and_serves_the_accepted(make_product, refuse):
    """Should, once the switch answers the app's commands slowly (0.4 s each, limit 0.2 s): refuse new calls
    with a 503 (NORMAL_CIRCUIT_CONGESTION, unanswered) or the busy prompt in early media (then USER_BUSY),
    raise the overload alarm once, let every accepted caller finish the complaint with a ticket, and admit
    calls again when the replies are fast."""
    product = make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False,
                           HOTLINE_OVERLOAD_REPLY_SECONDS="0.2", HOTLINE_OVERLOAD_REFUSE=refuse)
    fs, address = product.fs, product.parts["outbound"].address
    _from_now_on()
    alarms_before = getattr(_overload_alarm(), "count", 0)  # PostgreSQL: an earlier test's alarm may be open
    accepted = [fs.place_call(address, caller=f"1391111{i:04d}", destination="12345", script=COMPLAINT)
                for i in range(4)]
    for call in accepted:
        call.wait_for_app("play_and_get_digits", timeout=30)
    fs.reply_delay = 0.4
    fs.wait_for(lambda: REPLY_LATENCY.level() > 0.2, 30.0, "slow replies measured")
    refused = [fs.place_call(address, caller=f"1392222{i:04d}", destination="12345", script=COMPLAINT)
               for i in range(6)]
    for call in refused:
        call.wait_ended(timeout=60)
    for call in accepted:
        call.wait_ended(timeout=120)
    fs.reply_delay = 0.0
    door = product.parts["outbound"].admission
    seen = ([c.hangup_cause for c in accepted], [c.hangup_cause for c in refused], door.status())
    if refuse == "503":
        assert {c.hangup_cause for c in refused} == {"NORMAL_CIRCUIT_CONGESTION"}, seen
        assert not any(c.channel.answered for c in refused)
    else:
        assert {c.hangup_cause for c in refused} == {"USER_BUSY"}, seen
        assert all(c.played and c.played[-1].endswith("/zh/lines_busy.wav") for c in refused)
        assert not any(c.channel.answered for c in refused)
    assert _tickets(c.caller for c in accepted) == len(accepted), seen
    assert _tickets(c.caller for c in refused) == 0, seen
    assert door.refused["slow_switch"] == len(refused), seen
    alarm = _overload_alarm()
    assert alarm is not None and alarm.count == alarms_before + 1 and "slow_switch" in alarm.text
    # Fast replies again (the sessions' queued commands answered): once the slow ones left the window the
    # door opens.
    fs.wait_for(lambda: REPLY_LATENCY.level() < 0.1, 30.0, "the slow replies out of the window")
    again = fs.place_call(address, caller="13933330000", destination="12345", script=COMPLAINT)
    again.wait_ended(timeout=60)
    assert _tickets(["13933330000"]) == 1, (again.hangup_cause, door.status())
    assert door.shedding == ""
    print(f"\nFIGURE slow switch ({refuse}): {len(accepted)} accepted, {len(accepted)} tickets; "
          f"{len(refused)} refused ({refused[0].hangup_cause}); door open again after the window")


def test_an_overloaded_app_sheds_new_calls(make_product):
    """Should refuse new calls right after the app's own loop stood still for 3 s (a blocking job in the
    hub), with the overload alarm, and admit them again once that left the window."""
    product = make_product(clock=OfficeHoursClock(), secret_key=SECRET, demo_queues=False,
                           HOTLINE_OVERLOAD_LAG_SECONDS="0.1")
    fs, address = product.fs, product.parts["outbound"].address
    _from_now_on()
    door = product.parts["outbound"].admission
    door.lag.figures.window = 2.0

    gevent.sleep(0.5)
    time.sleep(3.0)   # a job blocking the process's loop (not gevent's sleep): everything stands still
    refused = fs.place_call(address, caller="13944440000", destination="12345", script=COMPLAINT)
    refused.wait_ended(timeout=60)
    assert refused.hangup_cause == "NORMAL_CIRCUIT_CONGESTION" and door.refused["overloaded"] >= 1
    assert "overloaded" in _overload_alarm().text
    # The door opens once the blocked loop left the window (and a busy machine's own lag, measured as well,
    # is under the resume level): awaited, not a sleep of one window that such lag could outlast.
    fs.wait_for(lambda: door.lag.figures.level() < 0.1 * RESUME, 30.0, "the blocked loop out of the window")
    served = fs.place_call(address, caller="13944440001", destination="12345", script=COMPLAINT)
    served.wait_ended(timeout=60)
    assert _tickets(["13944440001"]) == 1 and door.shedding == ""

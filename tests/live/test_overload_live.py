"""Refused at the door on a real FreeSWITCH (issue 16's overload): the whole product with HOTLINE_MAX_CALLS=1,
one caller in the menu, a second one refused the way the setting says: a 503 (the call fails unanswered with
NORMAL_CIRCUIT_CONGESTION, which the carrier takes as "try the other route"), or the short busy prompt played
in early media and then busy. The decision on slow replies and loop lag is proved on the fake switch
(tests/integration/product/test_overload.py); here, what the switch does with the refusal. Skipped unless
HOTLINE_TEST_ESL names a switch."""
from __future__ import annotations

import uuid as uuidlib

import pytest

from tests.live.product import AppLeg, in_thread, start_product, stop_product

pytestmark = pytest.mark.live


def _caller() -> str:
    return "1392%07d" % (uuidlib.uuid4().int % 10_000_000)


@pytest.mark.parametrize("refuse", ["503", "busy"])
def test_second_caller_refused_at_the_door_live(esl_endpoint, db, db_url, tmp_path, rendered_sounds, place_call,
                                                 esl_events, refuse):
    """Should keep the first caller in the menu and refuse the second: unanswered with
    NORMAL_CIRCUIT_CONGESTION (503), or, busy, the lines_busy prompt in early media then USER_BUSY."""
    product = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds,
                            settings={"max_calls": 1, "HOTLINE_OVERLOAD_REFUSE": refuse})
    try:
        assert all(conn.wait_connected(10) for conn in product.parts["pool"].all())
        host, port = product.parts["outbound"].address
        first_caller = _caller()
        first = place_call(caller=first_caller, outbound=f"{host}:{port}")
        AppLeg(esl_events, first, first_caller).wait_menu("main_menu")

        second_caller = _caller()
        second = place_call(caller=second_caller, outbound=f"{host}:{port}")
        leg = AppLeg(esl_events, second, second_caller)
        hangup = leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_HANGUP", "the refusal", timeout=60)
        cause = hangup.get("Hangup-Cause")
        if refuse == "503":
            assert cause == "NORMAL_CIRCUIT_CONGESTION", hangup
            assert not hangup.get("Caller-Channel-Answered-Time", "0").strip("0")
        else:
            assert cause == "USER_BUSY", hangup
            played = [ev.get("Application-Data", "") for ev in esl_events.events if leg.matches(ev)
                      and ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "playback"]
            assert any(p.endswith("/zh/lines_busy.wav") for p in played), played
            assert not hangup.get("Caller-Channel-Answered-Time", "0").strip("0")
        assert first.exists(), "the caller already accepted lost the call"
        door = product.parts["outbound"].admission
        assert door.refused["full"] >= 1
    finally:
        stop_product(product)

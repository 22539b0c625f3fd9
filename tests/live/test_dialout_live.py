"""External destinations through the dial-out policy to the carrier gateway, on a real FreeSWITCH (issue 16
items 6 and 11; skipped unless HOTLINE_TEST_ESL is set, or without sipp).

"The carrier" is a sipp UAS on 127.0.0.1:<free port> (sipp/answer_rtp.xml: answers with A-law and talks);
a gateway named ``carrier`` pointing at it is added to the running switch's external profile through a file
in sip_profiles/external/ (ignored by git: *.xml there is a site's enabled gateway) and taken away after
(``sofia profile external killgw carrier``, the file removed, ``reloadxml``). A switch that already has a
``carrier`` gateway (a site's real trunk) is left alone: the tests skip.

The app side is the LiveLine of test_acd_live.py (SwitchPool, Acd with the shipped dial-out policy,
OutboundServer queueing every call). Checked on the switch: the carrier got the INVITE for the number (its
sipp message log), the caller's channel is bridged to a leg of the ``carrier`` gateway; an international
number is refused before anything is dialled (the desk's message, the refusal logged, no INVITE).

Extensions used: 1019 (shared with other modules: run the live suite one test at a time, -p no:xdist).
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from acd.agent_controls import AgentControls, ControlRefused
from acd.dispatcher import create_queue
from acd.models import SupervisorAction
from recorder.models import DialOutLog
from tests.live.product import in_thread, wait_until
from tests.live.sipphone import AgentPhone
from tests.live.test_acd_controls_live import _bridged_call, _event, _exists, _partners
from tests.live.test_acd_live import LiveLine

pytestmark = pytest.mark.live

GATEWAY_FILE = "live-test-carrier.xml"
INTERNATIONAL = "+442079460000"


def _gateway_xml(port: int) -> str:
    # No OPTIONS ping and no REGISTER: the sipp UAS answers exactly the calls the test expects.
    return f"""<include>
  <gateway name="carrier">
    <param name="proxy" value="127.0.0.1:{port}"/>
    <param name="realm" value="127.0.0.1:{port}"/>
    <param name="username" value="hotline-live-test"/>
    <param name="password" value="unused"/>
    <param name="register" value="false"/>
    <param name="caller-id-in-from" value="true"/>
  </gateway>
</include>
"""


@contextlib.contextmanager
def _carrier(esl, sipp, tmp_path: Path, calls: int = 1):
    """A sipp UAS answering ``calls`` calls, reachable from the switch as gateway ``carrier``; yields the
    phone (its message log names what it received once it exited)."""
    if "Invalid Gateway" not in esl.api("sofia status gateway carrier"):
        pytest.skip("the switch already has a gateway named carrier (a site's trunk): not replaced by a test")
    conf_dir = Path(esl.api("global_getvar conf_dir").strip())
    folder = conf_dir / "sip_profiles" / "external"
    if not folder.is_dir():
        pytest.skip(f"the switch's configuration has no {folder}")
    path = folder / GATEWAY_FILE
    carrier = AgentPhone(sipp, tmp_path, 0, "carrier", "", calls=calls, scenario="answer_rtp.xml")
    try:
        path.write_text(_gateway_xml(carrier.port))
        esl.api("reloadxml")
        esl.api("sofia profile external rescan")
        wait_until(lambda: f"127.0.0.1:{carrier.port}" in esl.api("sofia status gateway carrier"), 20,
                   "the carrier gateway on the external profile")
        yield carrier
    finally:
        path.unlink(missing_ok=True)
        esl.api("sofia profile external killgw carrier")
        esl.api("reloadxml")
        wait_until(lambda: "Invalid Gateway" in esl.api("sofia status gateway carrier"), 20,
                   "the carrier gateway removed")
        if carrier.process.poll() is None:
            carrier.process.kill()
            carrier.process.communicate(timeout=10)


def _invites(carrier: AgentPhone) -> list[str]:
    """Request-URI users of the INVITEs the carrier received (its sipp message log, read once it exited)."""
    log = carrier.workdir / "phone-carrier-messages.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return re.findall(r"^INVITE sip:([^@;> ]+)@", text, flags=re.M)


def _to_carrier(esl, esl_events, is_call, not_leg: str = "") -> tuple[str, str]:
    """The caller's channel (``is_call(event)``) bridged to a leg of the carrier gateway: (call, that leg)."""
    bridged = _event(esl_events, lambda ev: ev.get("Event-Name") == "CHANNEL_BRIDGE" and is_call(ev)
                     and ev.get("Other-Leg-Unique-ID") not in ("", not_leg), 40, "the caller bridged to the carrier")
    leg = bridged["Other-Leg-Unique-ID"]
    assert esl.api(f"uuid_getvar {leg} sip_gateway_name").strip() == "carrier"
    return bridged["Unique-ID"], leg


def test_blind_transfer_to_a_number_reaches_the_carrier_and_international_is_refused(
        db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should refuse a blind transfer to an international number with the desk's message (logged, nothing
    dialled, the caller still with the agent), then bridge the caller to the carrier gateway for a domestic
    number: the carrier gets the INVITE for that number and the agent's leg is released."""
    with _carrier(esl, sipp, tmp_path) as carrier, \
            _bridged_call(esl_endpoint, esl, esl_events, sipp, place_call, tmp_path, extension="1019",
                          seat="8221", caller="13933330021") as c:
        line, agent_id = c["line"], c["agent"].id
        controls = AgentControls(line.acd)
        with pytest.raises(ControlRefused, match="不允许拨打国际号码 00442079460000"):
            controls.blind_transfer(agent_id, c["call"], "number", INTERNATIONAL)
        refused = DialOutLog.get()
        assert (refused.purpose, refused.number_class, refused.allowed, refused.user_id) == \
            ("transfer", "international", False, c["agent"].user_id)
        assert _partners(esl, c["call"], c["leg"]) and line.acd.agents[agent_id].state == "in_call"

        controls.blind_transfer(agent_id, c["call"], "number", "02087654321")
        _, far = _to_carrier(esl, esl_events, lambda ev: ev.get("Unique-ID") == c["call"], not_leg=c["leg"])
        wait_until(lambda: not _exists(esl, c["leg"]), 20, "the agent's leg released")
        wait_until(lambda: line.acd.agents[agent_id].state == "idle", 20, "the agent free")
        assert _exists(esl, c["call"]) and _partners(esl, c["call"], far)
        assert [(a.action, a.ok) for a in SupervisorAction.select().order_by(SupervisorAction.id)] == \
            [("transfer_refused", False), ("blind_transfer", True)]
        esl.api(f"uuid_kill {far}")
        status, output = in_thread(carrier.finished, 20)
        assert status == 0, output[-2000:]
        assert _invites(carrier) == ["02087654321"]


def test_queue_overflow_to_a_number_reaches_the_carrier_and_international_is_refused(
        db, esl_endpoint, esl, esl_events, sipp, place_call, tmp_path):
    """Should bridge a caller who waited out the queue's maximum wait to the overflow number through the
    carrier gateway (the INVITE for that number at the carrier); a queue overflowing to an international
    number refuses it (busy, logged) and dials nothing."""
    create_queue("dialout_ok", "dialout_ok", max_wait=2, announce_interval=0, overflow_kind="number",
                 overflow_target="02087654322")
    create_queue("dialout_intl", "dialout_intl", max_wait=2, announce_interval=0, overflow_kind="number",
                 overflow_target=INTERNATIONAL)
    with _carrier(esl, sipp, tmp_path) as carrier:
        line = LiveLine(esl_endpoint, "dialout_intl")
        try:
            place_call(caller="13933330022", outbound=line.address)
            wait_until(lambda: line.outcomes, 40, "the refused overflow")
            outcome = next(iter(line.outcomes.values()))
            assert (outcome.outcome, outcome.target) == ("busy", INTERNATIONAL)
            row = DialOutLog.get()
            assert (row.purpose, row.number_class, row.allowed, row.actor) == \
                ("overflow", "international", False, "system")

            line.skill = "dialout_ok"
            citizen = place_call(caller="13933330023", outbound=line.address)
            call, far = _to_carrier(esl, esl_events, lambda ev: ev.get("Caller-Caller-ID-Number") == "13933330023"
                                    and ev.get("Unique-ID") != citizen.uuid)
            assert _partners(esl, call, far)
            esl.api(f"uuid_kill {far}")   # the far end hangs up; the app had waited for the caller's channel to go
            wait_until(lambda: call in line.outcomes, 20, "the overflow outcome")
            assert (line.outcomes[call].outcome, line.outcomes[call].target) == ("transferred", "02087654322")
        finally:
            line.close()
        status, output = in_thread(carrier.finished, 20)
        assert status == 0, output[-2000:]
        assert _invites(carrier) == ["02087654322"]

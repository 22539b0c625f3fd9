"""Live: the recordings' disk full under a real FreeSWITCH and a real SIP caller (issue 16's faults list):
the call goes on, the recording fails loudly with the recording_storage alarm, no caller or ticket is lost.

The recordings and attachments live on a 2 MB tmpfs the test mounts (root) and fills to its last block.
The caller is sipp on the carrier trunk (as test_carrier_live.py: the switch's hotline_outbound pointed at the
product, keys cued by SIP INFO). Skipped without the switch (HOTLINE_TEST_ESL), without root or sipp.

Callers 1397xxxxxxx (random), no SIP extension registered.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from caseflow.models import Ticket
from core.db import database
from ops.models import SystemAlarm
from recorder.models import CallRecord, MissedCall, Recording
from tests.integration.recorder.test_disk_full import _fill, small_disk  # noqa: F401 - a fixture
from tests.live.product import in_thread, start_product, stop_product, wait_until
from tests.live.sipphone import CarrierCaller, Key
from tests.live.test_carrier_live import CarrierLeg, _number, carrier_port, carrier_route  # noqa: F401 - fixtures

pytestmark = pytest.mark.live


@pytest.fixture
def live_product(esl_endpoint, db, db_url, tmp_path, rendered_sounds, small_disk):
    """The product on the live switch with its recordings and attachments on the 2 MB tmpfs filled to its last
    block (the name carrier_route asks for)."""
    small_disk.chmod(0o777)  # FreeSWITCH may run as its own user
    for name in ("recordings", "attachments"):
        (small_disk / name).mkdir()
        (small_disk / name).chmod(0o777)
    _fill(small_disk)
    running = start_product(esl_endpoint, db_url, tmp_path, rendered_sounds, settings={
        "recordings_dir": str(small_disk / "recordings"), "attachments_dir": str(small_disk / "attachments"),
        "HOTLINE_RECORDING_MIN_FREE_MB": "1"})
    assert all(conn.wait_connected(10) for conn in running.parts["pool"].all())
    yield running
    stop_product(running)


def test_a_caller_choosing_to_record_on_a_full_disk_goes_on_live(
        live_product, carrier_route, carrier_port, sipp, esl, esl_events, tmp_path, small_disk):
    """Should, with the recordings' disk full, take a carrier caller who chooses to record a complaint (2, 2)
    on past the refused recording (the call stays up, no RECORD_START), raise the recording_storage alarm
    (critical) on the consoles, write nothing to the disk, and once the call ends (the final route's goodbye,
    or the line cut while it waits for a person) finalise its record with the caller on the missed-call list
    unless a person answered: nobody lost, no ticket lost."""
    with database.connection_context():
        tickets_before = Ticket.select().count()
    number = _number("1397")
    caller = CarrierCaller(sipp, tmp_path, carrier_port, number, [Key("2", ("info",)), Key("2", ("info",))],
                           telephone_event=False, timeout_s=300)
    try:
        leg = CarrierLeg(esl, esl_events, number)
        leg.answer_menus("main_menu", "self_menu")

        def alarmed():
            with database.connection_context():
                return SystemAlarm.get_or_none(SystemAlarm.kind == "recording_storage")
        wait_until(alarmed, 30, "the recording_storage alarm")
        # The call goes on after the refusal: the IVR tells the caller and takes the node's final route (a
        # person; out of hours a goodbye), which ends the call (sipp takes the switch's BYE).
        leg.wait(lambda ev: ev.get("Event-Name") == "CHANNEL_EXECUTE" and ev.get("Application") == "playback",
                 "the call going on after the refused recording", timeout=30)
        try:
            status, output = in_thread(caller.finished, 40)
        except subprocess.TimeoutExpired:  # still up (waiting for a person): the line is cut there
            assert in_thread(esl.api, f"uuid_exists {leg.uuid}").strip() == "true"
            in_thread(esl.api, f"uuid_kill {leg.uuid}")
            status, output = in_thread(caller.finished, 30)
        assert status == 0, output
        assert not [ev for ev in esl_events.events if ev.get("Unique-ID") == leg.uuid
                    and ev.get("Event-Name") == "RECORD_START"]
    finally:
        caller.close()

    def closed():
        with database.connection_context():
            return CallRecord.get_or_none((CallRecord.call_uuid == leg.uuid) & (CallRecord.finalised == True))  # noqa: E712
    wait_until(lambda: closed() is not None, 30, "the call record finalised")
    record = closed()
    with database.connection_context():
        alarm = SystemAlarm.get(SystemAlarm.kind == "recording_storage")
        assert alarm.severity == "critical" and alarm.acknowledged_at is None and "disk" in alarm.text.lower()
        assert not Recording.select().where((Recording.call_uuid == leg.uuid) & (Recording.status == "ok")).exists()
        # Listed: not_stored (the final route ended the call), abandoned (it waited for a person in a queue).
        served = record.disposition == "answered" or MissedCall.select().where(MissedCall.caller == number).exists()
        assert served, f"the caller was lost ({record.disposition}, {record.hangup_side}, {record.ivr_path})"
        assert Ticket.select().count() == tickets_before
        assert CallRecord.select().where(CallRecord.finalised == False).count() == 0  # noqa: E712
    written = [p for p in (small_disk / "recordings").rglob("*") if p.is_file() and p.stat().st_size > 0]
    assert written == [], written
    reason = MissedCall.get_or_none(MissedCall.caller == number)
    print(f"\nFIGURE live disk full: carrier caller chose to record; call went on ({record.disposition}, "
          f"listed {reason.reason if reason else '-'}, "
          f"IVR path {[n['node'] for n in json.loads(record.ivr_path)][-5:]}); recording_storage alarm x{alarm.count}: {alarm.text[:120]}")

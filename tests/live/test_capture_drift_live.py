"""The fake switch against today's real one: record the channel-state scenario (tests/live/capture_states.py)
on the live FreeSWITCH and replay it against the fake, header by header and in order, as
tests/unit/fakeswitch/test_capture_headers.py does with the stored capture. A FreeSWITCH upgrade or a
configuration change that moves the real switch away from the fake (and so from the stored captures) fails
here first. Skipped without HOTLINE_TEST_ESL.

The fake is deterministic; the real switch is not quite, and on a loaded machine (load 10 on 2 cores) most
fresh recordings differed from the fake somewhere, each time elsewhere:
- the originate: a loopback A leg is answered by its B leg's thread (the inline dialplan's `answer`) while its
  own thread walks CS_INIT, CS_ROUTING, CS_CONSUME_MEDIA, so the answer, the caller-id flip and the call
  states fall anywhere in that walk. This scenario is about park and bridge states, and the stored capture
  checks the originate frames header by header (tests/unit/fakeswitch): here each A leg's frames until it
  parks are left out;
- the bridge's end: after uuid_park of a bridged leg, its CHANNEL_PARK usually carries
  variable_last_bridge_hangup_cause, which the other leg's thread sets on it as that leg hangs up; in half the
  recordings not yet. That variable is left out here (the stored capture checks it);
- rarer (about one recording in ten): the originatee of uuid_bridge reporting CS_CONSUME_MEDIA before
  CS_EXCHANGE_MEDIA or not, a parked B leg's hang-up before or after its park ends.
So the scenario is recorded again, up to RECORDINGS times, until a recording matches the fake; drift that is
there every time is drift, and each attempt's report is shown."""
from __future__ import annotations

from tests.fakeswitch import FakeSwitch
from tests.live import capture_states
from tests.unit.fakeswitch import capture_compare as cc

RECORDINGS = 5
# Set on a leg by another leg's thread (see above): present or not yet, as the threads run.
RACED_VARIABLES = frozenset({"variable_last_bridge_hangup_cause"})


def originating(result: cc.Replay):
    """skip(frame) for cc.drifts / cc.order_drifts: the frames of each loopback A leg (its channel name ends
    in -a) before its first CHANNEL_PARK, on both sides."""
    left_out: set[int] = set()
    for frames in list(result.real.values()) + list(result.fake.values()):
        parked: set[str] = set()
        for frame in frames:
            if frame.event is None:
                continue
            headers = frame.headers
            name, leg = headers.get("Channel-Name", ""), headers.get("Unique-ID", "")
            if not (name.startswith("loopback/") and name.endswith("-a")) or leg in parked:
                continue
            if headers.get("Event-Name") == "CHANNEL_PARK":
                parked.add(leg)
            else:
                left_out.add(id(frame))
    return lambda frame: id(frame) in left_out


def drift_against_a_fresh_recording(host: str, port: int, password: str, folder) -> str:
    """Record the scenario on the live switch into `folder`, replay it against the fake: the drift report
    ('' when none)."""
    folder.mkdir()
    path = folder / "park_bridge_states.txt"
    with path.open("w", encoding="utf-8") as out:
        capture_states.record(host, port, password, out)
    with FakeSwitch(time_scale=0.01, record_dir=folder, strict_files=False) as fs:
        result = cc.replay(fs, path, folder)
    skip = originating(result)
    ignore = lambda name: cc.exempt(name) or name in RACED_VARIABLES  # noqa: E731
    found = [d for conn in result.real for d in cc.drifts(result, conn, skip=skip, ignore_names=ignore)]
    order = [line for conn in result.real for line in cc.order_drifts(result, conn, skip=skip)]
    return "\n".join(([cc.report(found)] if found else []) + order)


def test_the_fake_still_matches_the_live_switch_on_park_and_uuid_bridge(esl_endpoint, tmp_path):
    """Should find no drift between a fresh recording of park / uuid_bridge / uuid_park and the fake."""
    host, port, password = esl_endpoint
    reports = []
    for attempt in range(1, RECORDINGS + 1):
        report = drift_against_a_fresh_recording(host, port, password, tmp_path / f"recording-{attempt}")
        if not report:
            return
        reports.append(f"recording {attempt}:\n{report}")
    raise AssertionError("the fake drifted from the live switch in every recording:\n" + "\n".join(reports))

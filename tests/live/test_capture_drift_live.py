"""The fake switch against today's real one: record the channel-state scenario (tests/live/capture_states.py)
on the live FreeSWITCH and replay it against the fake, header by header and in order, as
tests/unit/fakeswitch/test_capture_headers.py does with the stored capture. A FreeSWITCH upgrade or a
configuration change that moves the real switch away from the fake (and so from the stored captures) fails
here first. Skipped without HOTLINE_TEST_ESL."""
from __future__ import annotations

from tests.fakeswitch import FakeSwitch
from tests.live import capture_states
from tests.unit.fakeswitch import capture_compare as cc


def test_the_fake_still_matches_the_live_switch_on_park_and_uuid_bridge(esl_endpoint, tmp_path):
    """Should find no drift between a fresh recording of park / uuid_bridge / uuid_park and the fake."""
    host, port, password = esl_endpoint
    path = tmp_path / "park_bridge_states.txt"
    with path.open("w", encoding="utf-8") as out:
        capture_states.record(host, port, password, out)
    with FakeSwitch(time_scale=0.01, record_dir=tmp_path, strict_files=False) as fs:
        result = cc.replay(fs, path, tmp_path)
    found = [d for conn in result.real for d in cc.drifts(result, conn)]
    order = [line for conn in result.real for line in cc.order_drifts(result, conn)]
    assert not found and not order, "the fake drifted from the live switch:\n" + "\n".join(
        ([cc.report(found)] if found else []) + order)

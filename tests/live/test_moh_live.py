"""Music on hold on a real FreeSWITCH (skipped unless HOTLINE_TEST_ESL is set): local_stream://moh, which
queued callers hear, plays the hold music the render step put in sounds/moh/ (ivr/moh.py)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.live


def test_local_stream_moh_plays_hold_music(esl, place_call, outbound_listener, tmp_path):
    """Should play audible music from local_stream://moh (not silence, not an immediate failure)."""
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    folder = Path(esl.api("global_getvar hotline_sounds_dir").strip()) / "moh"
    if not any(folder.glob("*.wav")):
        pytest.fail(f"{folder} has no WAV: run `python -m ivr.prompts render` (make run does) before "
                    "starting FreeSWITCH")
    assert "location:" in esl.api("local_stream show moh")
    # The citizen's side plays the stream; the app's side records what arrives, for three seconds.
    place_call(outbound=outbound_listener.address, app="playback(local_stream://moh)")
    app = outbound_listener.accept(timeout=15)
    app.connect_call()
    app.run("answer")
    heard = tmp_path / "heard.wav"
    tmp_path.chmod(0o777)  # FreeSWITCH may run as its own user
    app.run("record", f"{heard} 3", timeout=15)
    app.run("hangup", "NORMAL_CLEARING")
    stat = subprocess.run(["sox", str(heard), "-n", "stat"], capture_output=True, text=True, timeout=30).stderr
    rms = float(next(line.split(":")[1] for line in stat.splitlines() if line.startswith("RMS     amplitude")))
    assert rms > 0.01, stat

"""The runner's call-time TTS ("tts:" items): espeak-ng and sox straight from the process, cached by text."""
from __future__ import annotations

import shutil
import subprocess
import wave

import gevent.subprocess
import pytest

from core.config import load_config
from ivr import prompts
from ivr.runner import PromptFiles

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") or shutil.which("espeak")) or not shutil.which("sox"),
                                reason="espeak-ng and sox are needed (scripts/setup-system.sh)")


@pytest.fixture
def files(tmp_path, monkeypatch):
    """PromptFiles on an empty sounds folder; starting a Python child (or any Popen) fails the test."""
    def no_popen(*args, **kwargs):
        raise AssertionError(f"a child started through Popen: {args[:1]}")

    monkeypatch.setattr(subprocess, "Popen", no_popen)
    monkeypatch.setattr(gevent.subprocess, "Popen", no_popen)
    config = load_config({"var_dir": str(tmp_path), "sounds_dir": str(tmp_path / "sounds"),
                          "recordings_dir": str(tmp_path / "rec"), "mode": "test", "secret_key": "t" * 40,
                          "switch_sounds_dir": "/fs/sounds"})
    return PromptFiles(config)


def test_renders_once_without_a_python_child(files):
    """Should render a call-time text to a mono WAV at the switch's rate, without Popen, and reuse it."""
    played = files.item("tts:您的工单已受理。", "zh")
    local = prompts.tts_cache_path(files.sounds_dir, "zh", "您的工单已受理。", files.rate)
    assert played == f"/fs/sounds/{local.relative_to(files.sounds_dir).as_posix()}"
    with wave.open(str(local), "rb") as handle:
        assert (handle.getnchannels(), handle.getframerate()) == (1, files.rate)
        assert handle.getnframes() > files.rate // 2
    stamp = local.stat().st_mtime_ns
    assert files.tts("您的工单已受理。", "zh") == played
    assert local.stat().st_mtime_ns == stamp  # cached, not rendered again
    assert not [p for p in local.parent.iterdir() if p.name.endswith(".tmp.wav")]


def test_same_text_rendered_by_two_calls_at_once(files):
    """Should give two calls rendering the same new text at once the same complete file."""
    jobs = [gevent.spawn(files.tts, "同时合成的同一段话。", "en") for _ in range(2)]
    gevent.joinall(jobs, timeout=120, raise_error=True)
    assert jobs[0].value == jobs[1].value and not jobs[0].value.startswith("silence")
    local = prompts.tts_cache_path(files.sounds_dir, "en", "同时合成的同一段话。", files.rate)
    with wave.open(str(local), "rb") as handle:
        assert handle.getnframes() > 0


def test_failure_plays_silence(files, monkeypatch, caplog):
    """Should play a short silence and log the reason when the text cannot be rendered."""
    monkeypatch.setattr(prompts.shutil, "which", lambda name: None)
    assert files.tts("无法合成", "zh") == "silence_stream://500"
    assert "call-time TTS failed" in caplog.text and "espeak-ng" in caplog.text

"""Hold music for FreeSWITCH's local_stream `moh` (ivr/moh.py)."""
from __future__ import annotations

import shutil
import wave

import pytest

from ivr import moh

needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


@needs_sox
def test_creates_the_folder_and_an_8khz_mono_hold_music_wav(tmp_path):
    """Should create sounds/moh/ with a generated mono 16-bit WAV at the prompt rate, with sound in it."""
    path = moh.ensure_hold_music(tmp_path, 8000)
    assert path == tmp_path / "moh" / moh.GENERATED_NAME
    with wave.open(str(path), "rb") as handle:
        assert (handle.getframerate(), handle.getnchannels(), handle.getsampwidth()) == (8000, 1, 2)
        seconds = handle.getnframes() / handle.getframerate()
        frames = handle.readframes(handle.getnframes())
    assert seconds > 10
    assert max(frames) > 0 and list((tmp_path / "moh").iterdir()) == [path]  # no temporary files left


@needs_sox
def test_leaves_existing_music_alone(tmp_path):
    """Should not generate anything (nor touch the files) when sounds/moh/ already has a WAV."""
    folder = tmp_path / "moh"
    folder.mkdir()
    own = folder / "licensed.wav"
    own.write_bytes(b"RIFF-their-own-music")
    assert moh.ensure_hold_music(tmp_path, 8000) is None
    assert [p.name for p in folder.iterdir()] == ["licensed.wav"]
    assert own.read_bytes() == b"RIFF-their-own-music"


def test_missing_sox_is_a_clear_error(tmp_path, monkeypatch):
    """Should say that sox is missing instead of failing obscurely, leaving the folder in place."""
    monkeypatch.setattr(moh.shutil, "which", lambda name: None)
    with pytest.raises(moh.HoldMusicError, match="sox is not installed"):
        moh.ensure_hold_music(tmp_path, 8000)
    assert (tmp_path / "moh").is_dir()

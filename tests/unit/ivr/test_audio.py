"""ivr.audio.wav_lengths on the formats a hotline stores: 16-bit PCM, A-law (the recorder), µ-law."""
from __future__ import annotations

import subprocess

import pytest

from ivr.audio import wav_lengths


@pytest.mark.parametrize("encoding", [["-e", "a-law"], ["-e", "mu-law"], ["-e", "signed-integer", "-b", "16"]])
def test_tone_then_silence_measured_in_each_encoding(tmp_path, encoding):
    """Should give length and voiced part of a WAV made by sox: 1 s tone then 1 s silence."""
    tone, quiet, both = tmp_path / "tone.wav", tmp_path / "quiet.wav", tmp_path / "both.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", *encoding, str(tone), "synth", "1", "sine", "440"],
                   check=True, timeout=30)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", *encoding, str(quiet), "trim", "0", "1"],
                   check=True, timeout=30)
    subprocess.run(["sox", str(tone), str(quiet), str(both)], check=True, timeout=30)
    duration, voiced = wav_lengths(both)
    assert duration == 2000
    assert 960 <= voiced <= 1040


def test_alaw_recording_is_not_zero(tmp_path):
    """Should measure an A-law WAV (what the recorder stores) instead of returning None."""
    path = tmp_path / "a.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", str(path), "synth", "3", "sine", "300"],
                   check=True, timeout=30)
    assert subprocess.run(["soxi", "-e", str(path)], capture_output=True, text=True,
                          timeout=30).stdout.strip().lower().startswith("a-law")
    assert wav_lengths(path) == (3000, 3000)


def test_truncated_header_size_uses_the_bytes_on_disk(tmp_path):
    """Should measure a recording cut by a hang-up whose data size was never written (0)."""
    path = tmp_path / "cut.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "a-law", str(path), "synth", "1", "sine", "300"],
                   check=True, timeout=30)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data")
    raw[at + 4:at + 8] = b"\0\0\0\0"
    path.write_bytes(bytes(raw))
    assert wav_lengths(path) == (1000, 1000)


@pytest.mark.parametrize("content", [b"", b"RIFF", b"RIFF\x10\0\0\0WAVEdata\0\0\0\0", b"not audio at all" * 10,
                                     b"RIFF\x24\0\0\0WAVEfmt \x04\0\0\0abcd"])
def test_not_a_wav_gives_none(tmp_path, content):
    """Should return None for empty, truncated, fmt-less or non-WAV files."""
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    assert wav_lengths(path) is None


def test_missing_file_gives_none(tmp_path):
    """Should return None for a file that does not exist."""
    assert wav_lengths(tmp_path / "nope.wav") is None

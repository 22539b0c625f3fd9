"""WAV header parsing and A-law conversion (sox) of recordings."""
from __future__ import annotations

import math
import struct
import wave

import pytest

from recorder.storage import check_call_uuid, local_day, recording_path
from recorder.wavfile import FORMAT_ALAW, BadRecording, convert_to_alaw, read_wav_info, repair_sizes


def write_pcm(path, seconds=1.0, channels=1, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(struct.pack("<h", int(8000 * math.sin(i / 5))) * channels
                          for i in range(int(seconds * rate)))
        w.writeframes(frames)
    return path


def test_pcm_header(tmp_path):
    """Should read channels, rate and duration from a 16-bit PCM WAV."""
    info = read_wav_info(write_pcm(tmp_path / "a.wav", 1.5))
    assert (info.format_tag, info.channels, info.sample_rate, info.bits) == (1, 1, 8000, 16)
    assert info.duration_ms == 1500


@pytest.mark.parametrize("channels", [1, 2])
def test_convert_to_alaw_keeps_channels_and_duration(tmp_path, channels):
    """Should convert PCM to 8-bit A-law WAV, half the audio bytes, same channels and duration."""
    src = write_pcm(tmp_path / "in.wav", 2.0, channels)
    out = tmp_path / "day" / "out.wav"
    convert_to_alaw(src, out)
    info = read_wav_info(out)
    assert info.format_tag == FORMAT_ALAW and info.bits == 8 and info.channels == channels
    assert info.duration_ms == 2000 and info.data_bytes == 16000 * channels
    assert not list(out.parent.glob(".*converting*"))


@pytest.mark.parametrize("content,message", [
    (b"", "empty"), (b"RIFF\x00\x00", "not a WAV"), (b"hello world, no wav here", "not a WAV"),
    (b"RIFF\x10\x00\x00\x00WAVEjunk\x00\x00\x00\x00", "no audio data"),
    (b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00", "data before fmt")])
def test_bad_files_are_refused_clearly(tmp_path, content, message):
    """Should refuse empty, truncated and non-WAV files with a reason."""
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(BadRecording, match=message):
        read_wav_info(path)


def test_missing_file(tmp_path):
    """Should say the file is missing."""
    with pytest.raises(BadRecording, match="missing"):
        read_wav_info(tmp_path / "none.wav")


def test_truncated_data_size_trusts_file_length(tmp_path):
    """Should take the duration from the file length when the writer died before fixing the header."""
    path = write_pcm(tmp_path / "a.wav", 1.0)
    data = bytearray(path.read_bytes())
    data[40:44] = struct.pack("<I", 0xFFFFFFF0)
    path.write_bytes(bytes(data))
    assert read_wav_info(path).duration_ms == 1000


def test_header_left_by_a_killed_writer_is_repaired_and_converts(tmp_path):
    """Should, for a file whose writer was killed before fixing the header (FreeSWITCH leaves RIFF 8 and data 0
    with the audio after them), write the sizes the file has, so sox converts all of its audio (before: sox
    read 0 frames and the recording was lost as "incomplete"); a sound header is left alone."""
    path = write_pcm(tmp_path / "a.wav", 1.0)
    sound = path.read_bytes()
    assert not repair_sizes(path) and path.read_bytes() == sound
    data = bytearray(sound)
    data[4:8], data[40:44] = struct.pack("<I", 8), struct.pack("<I", 0)
    path.write_bytes(bytes(data))
    assert repair_sizes(path) and path.read_bytes() == sound
    convert_to_alaw(path, tmp_path / "out.wav")
    assert read_wav_info(tmp_path / "out.wav").duration_ms == 1000


def test_recording_path_per_local_day():
    """Should file a recording under the local (Asia/Shanghai) day: 20:00 UTC is the next day there."""
    import datetime as dt

    when = dt.datetime(2026, 11, 27, 20, 0, tzinfo=dt.timezone.utc)
    assert recording_path("abc-1", when).as_posix() == "recordings/2026-11-28/abc-1.wav"
    assert recording_path("abc-1", when, root="/x", suffix="-2").as_posix() == "/x/2026-11-28/abc-1-2.wav"
    assert local_day(dt.datetime(2026, 11, 27, 15, 59)) == dt.date(2026, 11, 27)


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", "x" * 65, ".hidden", "a b", None])
def test_hostile_uuid_refused(bad):
    """Should refuse a call UUID that could escape the recordings folder."""
    with pytest.raises(ValueError):
        check_call_uuid(bad)

"""Reading WAV headers (PCM and A-law, which Python's wave module refuses) and converting to A-law with sox.

Why convert afterwards: FreeSWITCH's mod_sndfile always writes `.wav` as 16-bit PCM (the real capture in
shared/esl shows 18560 samples in 37164 bytes: 2 bytes a sample). Its `.al` raw A-law output has no header
and is forced to one channel, which would lose RECORD_STEREO, and native `.PCMA` files only hold one
direction's frames. So the switch records 16-bit PCM WAV and the recorder turns it into A-law WAV
(8 bits a sample, the plan's P5 §3.6.3) once the recording has stopped, keeping the channel count.
"""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from core import processes

FORMAT_PCM = 1
FORMAT_ALAW = 6
FORMAT_MULAW = 7
FORMAT_EXTENSIBLE = 0xFFFE
FORMAT_NAMES = {FORMAT_PCM: "wav-pcm", FORMAT_ALAW: "wav-alaw", FORMAT_MULAW: "wav-ulaw"}

# A header larger than this is not a recording we made; refuse rather than read without bound.
_MAX_CHUNKS = 64


class BadRecording(ValueError):
    """The file is not a usable WAV recording (missing, empty, truncated, or not WAV)."""


@dataclass(frozen=True)
class WavInfo:
    """What the header says: format tag, channels, rate, bits, audio bytes and the duration they make."""

    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    byte_rate: int
    data_bytes: int
    data_offset: int = 44  # where the audio starts in the file (readers that scan the samples seek here)

    @property
    def duration_ms(self) -> int:
        return (self.data_bytes * 1000) // self.byte_rate if self.byte_rate else 0

    @property
    def format_name(self) -> str:
        return FORMAT_NAMES.get(self.format_tag, f"wav-{self.format_tag}")


def read_wav_info(path: Path) -> WavInfo:
    """Parse the RIFF header of ``path``; raises BadRecording with the reason when it is not a WAV file."""
    try:
        size = os.path.getsize(path)
        handle = open(path, "rb")
    except FileNotFoundError:
        raise BadRecording(f"recording file missing / 录音文件不存在: {path}") from None
    except OSError as exc:
        raise BadRecording(f"recording file unreadable / 录音文件无法读取: {exc}") from None
    if size == 0:
        handle.close()
        raise BadRecording("recording is empty (0 bytes) / 录音为空")
    with handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise BadRecording("not a WAV file (no RIFF/WAVE header) / 不是 WAV 文件")
        fmt = None
        for _ in range(_MAX_CHUNKS):
            chunk = handle.read(8)
            if len(chunk) < 8:
                break
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                body = handle.read(chunk_size)
                if len(body) < 16:
                    raise BadRecording("truncated fmt chunk / WAV 格式块不完整")
                tag, channels, rate, byte_rate, _align, bits = struct.unpack("<HHIIHH", body[:16])
                if tag == FORMAT_EXTENSIBLE and len(body) >= 26:
                    tag = struct.unpack("<H", body[24:26])[0]
                fmt = (tag, channels, rate, byte_rate, bits)
                if chunk_size % 2:
                    handle.read(1)
            elif chunk_id == b"data":
                if fmt is None:
                    raise BadRecording("data before fmt chunk / WAV 数据块在格式块之前")
                # A writer killed mid-call leaves the size field 0 or too large: trust the file length.
                available = size - handle.tell()
                data_bytes = chunk_size if 0 < chunk_size <= available else max(available, 0)
                tag, channels, rate, byte_rate, bits = fmt
                if not channels or not rate or not byte_rate:
                    raise BadRecording("WAV header has zero channels or rate / WAV 头无效")
                return WavInfo(tag, channels, rate, bits, byte_rate, data_bytes, handle.tell())
            else:
                handle.seek(chunk_size + (chunk_size % 2), os.SEEK_CUR)
        raise BadRecording("no audio data chunk / WAV 文件没有音频数据块")


def repair_sizes(path: Path) -> bool:
    """Write the RIFF and data sizes the file really has when its header says otherwise; True when it did.

    A writer killed mid-file (FreeSWITCH killed while recording) leaves the sizes it wrote when it opened the
    file (data 0): read_wav_info trusts the file length, but sox reads the header and converts no audio, and
    a player would play nothing. Only the two size fields change; the audio is not touched.
    """
    info = read_wav_info(path)
    with open(path, "r+b") as handle:
        handle.seek(info.data_offset - 4)
        if struct.unpack("<I", handle.read(4))[0] == info.data_bytes:
            return False
        handle.seek(info.data_offset - 4)
        handle.write(struct.pack("<I", info.data_bytes))
        handle.seek(4)
        handle.write(struct.pack("<I", info.data_offset + info.data_bytes - 8))
    return True


def sha256_file(path: Path, block: int = 1 << 16) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(block), b""):
            digest.update(piece)
    return digest.hexdigest()


class ConversionError(RuntimeError):
    """sox could not convert the recording."""


def convert_to_alaw(source: Path, target: Path, timeout: float = 120.0) -> None:
    """Write ``source`` as 8-bit A-law WAV at ``target`` (same rate and channels), atomically.

    The target appears only complete: sox writes a temporary file that is then renamed over it, and only
    once it holds as much audio as the source. sox reports a full disk on stderr ("FAIL ... No space left on
    device") yet exits 0 with an empty file; renaming that over the target (the IVR converts in place) would
    destroy the only audio of the call, so such a result is a ConversionError and the source is untouched.
    """
    expected = read_wav_info(source).duration_ms
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.converting.wav")
    command = ["sox", "-q", str(source), "-t", "wav", "-e", "a-law", "-b", "8", str(temporary)]
    try:
        # core.processes: without forking the process (a fork at the IVR's size stalls every call)
        done = processes.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        temporary.unlink(missing_ok=True)
        raise ConversionError(f"sox did not finish within {timeout:.0f} s") from None
    except FileNotFoundError:
        raise ConversionError("sox is not installed (scripts/setup-system.sh installs it)") from None
    if done.returncode != 0 or "FAIL" in done.stderr:
        temporary.unlink(missing_ok=True)
        raise ConversionError(f"sox failed ({done.returncode}): {done.stderr.strip()[:300]}")
    try:
        written = read_wav_info(temporary).duration_ms
    except BadRecording as exc:
        written, problem = -1, str(exc)
    else:
        problem = f"{written} of {expected} ms"
    if written < expected - 20:  # sox rounds to whole samples; anything more is a cut file
        temporary.unlink(missing_ok=True)
        raise ConversionError(f"sox wrote an incomplete file ({problem}): {done.stderr.strip()[:200]}")
    os.replace(temporary, target)

"""Small facts about recorded WAV files the IVR needs: length and how much of it carries sound."""
from __future__ import annotations

import array
import struct
import sys
from pathlib import Path

FRAME_MS = 20
VOICE_PEAK = 600  # of 32767: above line noise, far below speech
PCM, ALAW, MULAW, EXTENSIBLE = 1, 6, 7, 0xFFFE
MAX_HEADER_CHUNKS = 64  # a WAV with more chunks before its data is not one FreeSWITCH wrote


def _alaw(byte: int) -> int:
    byte ^= 0x55
    exponent, mantissa = (byte >> 4) & 7, byte & 0x0F
    value = (mantissa << 4) + 8
    if exponent:
        value = (value + 0x100) << (exponent - 1)
    return value if byte & 0x80 else -value


def _mulaw(byte: int) -> int:
    byte = ~byte & 0xFF
    exponent, mantissa = (byte >> 4) & 7, byte & 0x0F
    value = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -value if byte & 0x80 else value


# G.711 bytes to 16-bit peak values, built on first use (no import-time work)
_TABLES: dict[int, bytes] = {}


def _loud_table(fmt: int) -> bytes:
    """A 256-entry table: 1 where a G.711 byte decodes above VOICE_PEAK (voiced detection needs only that)."""
    table = _TABLES.get(fmt)
    if table is None:
        decode = _alaw if fmt == ALAW else _mulaw
        table = bytes(1 if abs(decode(b)) > VOICE_PEAK else 0 for b in range(256))
        _TABLES[fmt] = table
    return table


def _chunks(handle):
    """(fmt fields, data offset, data size) of a RIFF/WAVE file; ValueError when it is not one."""
    riff = handle.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt = None
    for _ in range(MAX_HEADER_CHUNKS):
        head = handle.read(8)
        if len(head) < 8:
            break
        name, size = head[:4], struct.unpack("<I", head[4:])[0]
        if name == b"fmt ":
            body = handle.read(size)
            if len(body) < 16:
                raise ValueError("short fmt chunk")
            tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]   # the sub-format GUID starts with the real tag
            fmt = (tag, channels, rate, align, bits)
            if size % 2:
                handle.read(1)
        elif name == b"data":
            if fmt is None:
                raise ValueError("data before fmt")
            return fmt, handle.tell(), size
        else:
            handle.seek(size + (size % 2), 1)
    raise ValueError("no data chunk")


def wav_lengths(path: str | Path) -> tuple[int, int] | None:
    """(duration_ms, voiced_ms) of a PCM, A-law or µ-law WAV; None when the file is missing or not a WAV.

    The recorder stores A-law (8 bits a sample), which Python's wave module refuses; the header is read
    here. Other formats get their length and a voiced part of 0.
    """
    try:
        size_on_disk = Path(path).stat().st_size
        with open(path, "rb") as handle:
            (tag, channels, rate, align, bits), offset, size = _chunks(handle)
            if not rate or not channels:
                return None
            # a recording cut by a hang-up may have a header whose size was never filled in
            size = min(size, max(0, size_on_disk - offset)) if size else max(0, size_on_disk - offset)
            align = align or max(1, channels * bits // 8)
            frames = size // align
            duration = int(frames * 1000 / rate)
            per = max(1, rate * FRAME_MS // 1000) * align
            voiced = 0
            if tag == PCM and bits == 16:
                while True:
                    chunk = handle.read(per)
                    if not chunk:
                        break
                    samples = array.array("h", chunk[: len(chunk) // 2 * 2])
                    if sys.byteorder == "big":
                        samples.byteswap()
                    if samples and max(max(samples), -min(samples)) > VOICE_PEAK:
                        voiced += len(chunk) // align
            elif tag in (ALAW, MULAW) and bits == 8:
                table = _loud_table(tag)
                left = size
                while left > 0:
                    chunk = handle.read(min(per, left))
                    if not chunk:
                        break
                    left -= len(chunk)
                    if any(table[b] for b in chunk):
                        voiced += len(chunk) // align
            return duration, min(duration, int(voiced * 1000 / rate))
    except (OSError, ValueError, struct.error):
        return None

"""Small facts about recorded WAV files the IVR needs: length and how much of it carries sound."""
from __future__ import annotations

import array
import struct
import sys
from pathlib import Path

# One WAV header reader for the product: the recorder's (it also trims unfinished headers to the file).
from recorder.wavfile import BadRecording, read_wav_info

FRAME_MS = 20
VOICE_PEAK = 600  # of 32767: above line noise, far below speech
PCM, ALAW, MULAW = 1, 6, 7


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


def wav_lengths(path: str | Path) -> tuple[int, int] | None:
    """(duration_ms, voiced_ms) of a PCM, A-law or µ-law WAV; None when the file is missing or not a WAV.

    The recorder stores A-law (8 bits a sample), which Python's wave module refuses; the header is read
    here. Other formats get their length and a voiced part of 0.
    """
    try:
        info = read_wav_info(Path(path))
    except BadRecording:
        return None
    tag, channels, rate, bits = info.format_tag, info.channels, info.sample_rate, info.bits
    size = info.data_bytes  # already trimmed to the file when a hang-up left the header unfinished
    try:
        with open(path, "rb") as handle:
            handle.seek(info.data_offset)
            align = max(1, channels * bits // 8)
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

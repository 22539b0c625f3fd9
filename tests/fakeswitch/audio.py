"""Real media files the fake writes: 8 kHz mono 16-bit WAV (speech as a warbling tone, silence as zeros)
and a small valid one-strip bilevel TIFF for received faxes."""
from __future__ import annotations

import math
import os
import struct
import wave
from pathlib import Path

RATE = 8000


def _tone_second() -> bytes:
    # Two tones with a slow amplitude wobble: clearly not silence, easy for any level meter to see. Every
    # frequency is a whole number of hertz, so one second of it repeats exactly.
    out = bytearray()
    for i in range(RATE):
        t = i / RATE
        env = 0.55 + 0.45 * math.sin(2 * math.pi * 3 * t)
        v = env * (0.5 * math.sin(2 * math.pi * 440 * t) + 0.3 * math.sin(2 * math.pi * 660 * t))
        out += struct.pack("<h", int(v * 12000))
    return bytes(out)


_TONE: list[bytes] = []


def _speech_samples(n: int, offset: int) -> bytes:
    """``n`` samples of the tone from sample ``offset`` on, cut from its repeating second (a sample-by-sample
    loop took seconds of CPU for a long recording, which big benchmark runs write by the thousand)."""
    if not _TONE:
        _TONE.append(_tone_second())
    start = (offset % RATE) * 2
    repeats = (start + 2 * n) // (2 * RATE) + 1
    return (_TONE[0] * repeats)[start:start + 2 * n]


def write_wav(path: str | os.PathLike, seconds: float, speech: list[tuple[float, float]] | None = None) -> int:
    """Write `seconds` of audio; `speech` lists (start, end) seconds that carry sound. Returns bytes written.

    Parent directories are created, as FreeSWITCH's record does.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    total = max(0, int(round(seconds * RATE)))
    spans = sorted((max(0, int(a * RATE)), min(total, int(b * RATE))) for a, b in (speech or []) if b > a)
    frames = bytearray()
    pos = 0
    for a, b in spans:
        if a > pos:
            frames += b"\x00\x00" * (a - pos)
            pos = a
        if b > pos:
            frames += _speech_samples(b - pos, pos)
            pos = b
    if pos < total:
        frames += b"\x00\x00" * (total - pos)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return path.stat().st_size


def wav_seconds(path: str | os.PathLike) -> float | None:
    """Duration of a readable WAV file, None when it is not one."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate() or 1)
    except (OSError, EOFError, wave.Error):
        return None


def write_tiff(path: str | os.PathLike, pages: int = 1, width: int = 1728, height: int = 64) -> int:
    """Write a valid uncompressed bilevel TIFF with `pages` pages (a black bar on white). Returns size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row_bytes = (width + 7) // 8
    strip = bytearray()
    for y in range(height):
        # min-is-white: 1 bits are black; draw a bar in the middle rows.
        strip += (b"\xff" if height // 3 <= y < 2 * height // 3 else b"\x00") * row_bytes
    out = bytearray(b"II*\x00")
    out += struct.pack("<I", 0)  # first IFD offset, patched below
    prev_next_ptr = 4
    for page in range(pages):
        data_off = len(out)
        out += strip
        if len(out) % 2:
            out += b"\x00"
        ifd_off = len(out)
        struct.pack_into("<I", out, prev_next_ptr, ifd_off)
        entries = [
            (256, 4, 1, width),            # ImageWidth
            (257, 4, 1, height),           # ImageLength
            (258, 3, 1, 1),                # BitsPerSample
            (259, 3, 1, 1),                # Compression: none
            (262, 3, 1, 0),                # Photometric: min-is-white
            (273, 4, 1, data_off),         # StripOffsets
            (277, 3, 1, 1),                # SamplesPerPixel
            (278, 4, 1, height),           # RowsPerStrip
            (279, 4, 1, len(strip)),       # StripByteCounts
            (296, 3, 1, 2),                # ResolutionUnit: inch
            (297, 3, 2, page | (pages << 16)),  # PageNumber
        ]
        out += struct.pack("<H", len(entries))
        for tag, typ, count, value in entries:
            if typ == 3 and count == 1:
                out += struct.pack("<HHIHH", tag, typ, count, value, 0)
            elif typ == 3 and count == 2:
                out += struct.pack("<HHIHH", tag, typ, count, value & 0xFFFF, value >> 16)
            else:
                out += struct.pack("<HHII", tag, typ, count, value)
        prev_next_ptr = len(out)
        out += struct.pack("<I", 0)
    path.write_bytes(bytes(out))
    return len(out)

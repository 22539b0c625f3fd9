"""Small facts about recorded WAV files the IVR needs: length and how much of it carries sound."""
from __future__ import annotations

import array
import sys
import wave
from pathlib import Path

FRAME_MS = 20
VOICE_PEAK = 600  # of 32767: above line noise, far below speech


def wav_lengths(path: str | Path) -> tuple[int, int] | None:
    """(duration_ms, voiced_ms) of a 16-bit PCM WAV; None when the file is missing or not such a WAV."""
    try:
        with wave.open(str(path), "rb") as handle:
            rate, width, channels = handle.getframerate(), handle.getsampwidth(), handle.getnchannels()
            frames = handle.getnframes()
            if not rate or width != 2:
                return (int(frames * 1000 / rate), 0) if rate else None
            per = max(1, rate * FRAME_MS // 1000) * channels
            voiced = 0
            while True:
                chunk = handle.readframes(per // channels)
                if not chunk:
                    break
                samples = array.array("h", chunk[: len(chunk) // 2 * 2])
                if sys.byteorder == "big":
                    samples.byteswap()
                if samples and max(max(samples), -min(samples)) > VOICE_PEAK:
                    voiced += len(samples) // channels
            return int(frames * 1000 / rate), int(voiced * 1000 / rate)
    except (OSError, EOFError, wave.Error):
        return None

"""Music on hold: FreeSWITCH's local_stream `moh` plays every file in sounds/moh/ (freeswitch-conf's
local_stream.conf.xml).  A missing directory stops that stream for good, and an empty one plays silence,
so the prompt rendering step (`python -m ivr.prompts render`, run by `make run`) makes sure the folder
exists and holds at least one hold-music WAV, generated here with sox when there is none.

An administrator replaces it by putting their own 8 kHz mono WAV files in sounds/moh/ (licensed music);
the generated file is only written when the folder has no WAV at all, so theirs are never overwritten.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from core import processes

log = logging.getLogger(__name__)

MOH_DIR = "moh"
GENERATED_NAME = "hold_music.wav"
# A slow, quiet arpeggio (C major, A minor, F major, G major), each note plucked, about 19 s per loop.
_CHORDS = (("C4", "E4", "G4", "C5"), ("A3", "C4", "E4", "A4"), ("F3", "A3", "C4", "F4"), ("G3", "B3", "D4", "G4"))
NOTE_SECONDS = 0.6


class HoldMusicError(RuntimeError):
    """Hold music could not be generated (sox missing or failing); the message says what to do."""


def _notes() -> list[str]:
    notes = []
    for chord in _CHORDS:
        notes.extend(chord + tuple(reversed(chord[1:-1])))   # up and back down: 6 notes per chord
    return notes * 2


def generate_hold_music(path: Path, rate: int = 8000) -> Path:
    """Write a hold-music loop to ``path`` (mono 16-bit WAV at ``rate``) with sox; HoldMusicError if it cannot."""
    sox = shutil.which("sox")
    if sox is None:
        raise HoldMusicError("sox is not installed (scripts/setup-system.sh installs it): no hold music")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="moh-") as work:
        parts = []
        for index, note in enumerate(_notes()):
            part = Path(work) / f"{index:03d}.wav"
            # pluck: a soft plucked-string tone; the fade keeps the note ends click-free
            command = [sox, "-n", "-r", str(rate), "-c", "1", "-b", "16", str(part), "synth",
                       str(NOTE_SECONDS), "pluck", note, "fade", "0.01", str(NOTE_SECONDS), "0.2"]
            _run(command)
            parts.append(str(part))
        tmp = path.with_name(f".{path.name}.tmp.wav")
        # quiet (callers on hold must still hear announcements over it), gently faded at both ends
        _run([sox, *parts, "-r", str(rate), "-c", "1", "-b", "16", "-e", "signed-integer", str(tmp),
              "vol", "0.35", "fade", "0.5", "0", "0.5"])
        os.replace(tmp, path)
    return path


def _run(command: list[str]) -> None:
    try:
        processes.run(command, check=True, timeout=60, capture_output=True)  # no fork of the server
    except subprocess.CalledProcessError as exc:
        raise HoldMusicError(f"sox failed: {exc.stderr.decode(errors='replace').strip()[:300]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise HoldMusicError("sox did not finish within 60 s") from exc


def ensure_hold_music(sounds_dir: Path | str, rate: int = 8000) -> Path | None:
    """Create sounds/moh/ and, when it holds no WAV, a generated hold-music WAV in it.

    Returns the generated file, or None when the folder already had music.
    """
    folder = Path(sounds_dir) / MOH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if any(p.suffix.lower() == ".wav" and not p.name.startswith(".") for p in folder.iterdir()):
        return None
    path = generate_hold_music(folder / GENERATED_NAME, rate)
    log.info("generated hold music %s (put your own WAV files in %s to replace it)", path, folder)
    return path

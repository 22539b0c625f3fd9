"""IVR recordings are converted to A-law before the database lock is taken; the ticket still gets them."""
from __future__ import annotations

import subprocess

from caseflow.models import Attachment
from ivr.audio import wav_lengths
from recorder import wavfile


def _pcm(path, seconds=3):
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", str(path),
                    "synth", str(seconds), "sine", "300"], check=True, timeout=30)
    return path


def test_prepare_converts_in_place_then_ticket(ivr_services, tmp_path):
    """Should turn a PCM recording into A-law where it lies, and file it with the ticket unchanged."""
    path = _pcm(tmp_path / "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a-complaint.wav")
    ivr_services.prepare_recording(str(path))
    assert wavfile.read_wav_info(path).format_tag == wavfile.FORMAT_ALAW
    assert wav_lengths(path) == (3000, 3000)
    number = ivr_services.create_ticket_from_recording(
        "13800138000", "complaint", str(path), duration_ms=3000, confirmed=True,
        call_uuid="6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a")
    assert number
    attachment = Attachment.get(Attachment.kind == "recording")
    assert attachment.content_type == "audio/wav" and attachment.size > 0


def test_prepare_leaves_a_bad_file_alone(ivr_services, tmp_path):
    """Should neither raise nor change a file that is not audio (the store reports it)."""
    path = tmp_path / "x.wav"
    path.write_bytes(b"not audio")
    ivr_services.prepare_recording(str(path))
    ivr_services.prepare_recording(str(tmp_path / "missing.wav"))
    assert path.read_bytes() == b"not audio"

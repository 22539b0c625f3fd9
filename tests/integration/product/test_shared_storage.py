"""The product with HOTLINE_SHARED_DIR (core.shared_files): the marker written at start, the shipped prompts
in its sounds folder, and a caller's complaint recording stored under it, on both databases."""
from __future__ import annotations

import shutil

from core.db import database
from core.shared_files import MARKER
from tests.fakeswitch import Press, Speak, WaitFor


def test_complaint_recording_lands_on_the_shared_storage(make_product, rendered_sounds, tmp_path):
    shared = tmp_path / "shared"
    shutil.copytree(rendered_sounds, shared / "sounds")
    product = make_product(shared_dir=str(shared), sounds_dir=str(shared / "sounds"))
    assert product.config.attachments_dir == shared / "attachments"
    assert (shared / MARKER).read_text().strip()
    fs = product.fs
    call = fs.place_call(product.parts["outbound"].address, caller="13912345678", destination="12345",
                         script=[Press("2"), Press("2"), Speak(3), Press("#"), Press("1"),
                                 WaitFor("playback", "ticket_thanks")])
    call.wait_ended(timeout=30)
    from caseflow.models import Attachment, Ticket

    with database.connection_context():
        ticket = Ticket.get(Ticket.citizen_phone == "13912345678")
        stored = [a.path for a in Attachment.select().where(Attachment.ticket == ticket)]
    assert stored and stored[0].startswith("recordings/")
    recording = shared / stored[0]  # the recordings folder of the shared path (recorder.storage's root)
    assert recording.is_file() and recording.stat().st_size > 44

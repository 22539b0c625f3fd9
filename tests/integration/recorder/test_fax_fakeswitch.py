"""Fax through the protocol-level fake FreeSWITCH: rxfax on a real CallSession (TIFF written by the fake),
txfax originated over a real inbound connection, results from spandsp events."""
from __future__ import annotations

import subprocess

import pytest

from caseflow.models import Attachment, Ticket
from core.config import EslEndpoint
from core.db import database
from recorder.fax import FaxService, FaxSettings, fax_receive
from recorder.models import FaxJob, MissedCall
from switch.inbound import InboundConnection
from switch.outbound import OutboundServer
from tests.fakeswitch import SendFax


@pytest.fixture
def fax(db, tmp_path, clock):
    return FaxService(tmp_path / "fax", tmp_path / "attachments", FaxSettings(retry_after=1, max_attempts=2),
                      clock=clock)


@pytest.fixture
def fax_line(fax, db):
    """An outbound socket server whose every call is the IVR's fax node."""
    def handler(session):
        with database.connection_context():
            session.answer()
            fax_receive(session, fax)

    server = OutboundServer("127.0.0.1", 0, handler)
    server.start()
    yield server
    server.stop(drain_timeout=2)


def test_fax_received_through_the_switch_becomes_ticket(fax, fax_line, fakeswitch):
    """Should receive a 2-page fax with rxfax, convert the fake's real TIFF to PDF and file a fax ticket."""
    call = fakeswitch.place_call(fax_line.address, caller="02566668888", destination="12345",
                                 script=[SendFax(pages=2)])
    call.wait_ended(timeout=20)
    assert call.faxes
    job = fakeswitch.wait_for(lambda: FaxJob.get_or_none((FaxJob.state == "done") | (FaxJob.state == "failed")),
                              10.0, "the fax job")
    assert job.state == "done", job.error
    assert job.pages == 2 and job.number == "02566668888" and job.call_uuid == call.uuid
    ticket = Ticket.get_by_id(job.ticket_id)
    assert ticket.channel == "fax"
    assert Attachment.get(Attachment.ticket == ticket).content_type == "application/pdf"
    assert fax.local(job.pdf_path).read_bytes().startswith(b"%PDF-")


def test_no_fax_tones_fails_the_job_and_lists_sender(fax, fax_line, fakeswitch):
    """Should fail the job clearly when the caller sends no fax, and list the number for a call-back."""
    call = fakeswitch.place_call(fax_line.address, caller="02566669999", destination="12345", script=[])
    job = fakeswitch.wait_for(lambda: FaxJob.get_or_none(FaxJob.state == "failed"), 20.0, "the failed job")
    call.hangup()
    assert "nothing received" in job.error or "missing" in job.error
    assert MissedCall.get(MissedCall.caller == "02566669999").reason == "fax_failed"


def test_fax_sent_over_the_inbound_connection(fax, fakeswitch, tmp_path):
    """Should originate txfax to the number over the gateway and finish the job on the spandsp result."""
    from tests.integration.recorder.test_fax import PS

    (tmp_path / "doc.ps").write_bytes(PS)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite",
                    f"-sOutputFile={tmp_path / 'doc.pdf'}", str(tmp_path / "doc.ps")], check=True, timeout=60)
    fakeswitch.add_agent("02588886666", answer=True, answer_delay=0.2)
    conn = InboundConnection(EslEndpoint("127.0.0.1", fakeswitch.esl_port, "ClueCon"), backoff_initial=0.05)
    conn.start()
    try:
        fakeswitch.wait_for(lambda: conn.connected, 5.0, "the inbound connection")

        def on_event(event):
            with database.connection_context():
                fax.on_switch_event(event)

        conn.subscribe(on_event)
        job = fax.send("02588886666", tmp_path / "doc.pdf")
        [job] = fax.dispatch_due(conn)
        assert job.state == "sending", job.error
        assert any("txfax(" in line and "sofia/gateway/pstn/02588886666" in line for line in fakeswitch.api_log)
        done = fakeswitch.wait_for(lambda: FaxJob.get_or_none((FaxJob.id == job.id) & (FaxJob.state == "done")),
                                   10.0, "the sent fax")
        assert done.attempts == 1
    finally:
        conn.stop()

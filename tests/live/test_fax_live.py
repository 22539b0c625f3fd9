"""Fax on a real FreeSWITCH (mod_spandsp), through recorder/fax.py (skipped unless HOTLINE_TEST_ESL is set).

Inbound: a loopback caller runs txfax (a fax machine); the dialplan hands the call to a test outbound
server whose handler does what the IVR's fax node will do: answer and ``fax_receive(session, service)``.
The received TIFF must become a PDF attached to a new fax ticket.

Outbound: ``FaxService.send`` converts a PDF to a fax TIFF and ``dispatch_due`` originates it over the
product's own inbound connection.  The dial template points at ``loopback/12345`` (whatever the number) with this test's
``hotline_outbound``, so the far end is the same receiving handler: one real fax crosses the switch in
both directions, and the sending job must end ``done`` from the switch's spandsp::txfaxresult.
"""
from __future__ import annotations

import dataclasses
import shutil

import gevent
import pytest

from core.config import EslEndpoint
from recorder.fax import FaxService, FaxSettings, fax_receive
from switch.inbound import SwitchPool
from switch.outbound import OutboundServer
from tests.live.product import wait_until

pytestmark = pytest.mark.live


@pytest.fixture
def fax_line(tmp_path):
    """A fax service writing below tmp_path and an outbound server receiving every call as a fax."""
    for tool in ("tiff2pdf", "gs"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (libtiff-tools, ghostscript)")
    fax_dir, attachments = tmp_path / "fax", tmp_path / "attachments"
    fax_dir.mkdir()
    fax_dir.chmod(0o777)        # FreeSWITCH may run as its own user and writes the received TIFF here
    attachments.mkdir()
    received = {}

    class Line:
        service = FaxService(fax_dir, attachments, FaxSettings(receive_timeout=120, send_timeout=120))

        @staticmethod
        def handle(session):
            session.answer()
            received[session.uuid] = fax_receive(session, Line.service)

    line = Line()
    line.received = received
    line.server = OutboundServer("127.0.0.1", 0, Line.handle)
    line.server.start()
    line.address = "%s:%d" % line.server.address
    yield line
    line.server.stop(drain_timeout=5)


def _check_received(line, job):
    from caseflow.models import Attachment

    assert job.state == "done", (job.state, job.error, job.result_text)
    assert job.pages == 1
    pdf = line.service.local(job.pdf_path)
    assert pdf.read_bytes().startswith(b"%PDF")
    tiff = line.service.local(job.tiff_path)
    assert tiff.read_bytes()[:4] in (b"II*\x00", b"MM\x00*")
    ticket = job.ticket
    assert ticket is not None and ticket.channel == "fax"
    attachment = Attachment.get(Attachment.ticket == ticket)
    assert attachment.size > 0 and len(attachment.sha256) == 64


def test_fax_received_through_spandsp_becomes_a_ticket(db, esl_endpoint, place_call, fax_tiff, fax_line):
    """Should receive a one-page fax from a fax machine with the real rxfax, convert the TIFF to a PDF and
    file it as a fax ticket carrying the caller's number and the PDF."""
    place_call(caller="13944440001", outbound=fax_line.address, app=f"txfax({fax_tiff})")
    wait_until(lambda: fax_line.received, 120, "the fax to be received and filed")
    job = next(iter(fax_line.received.values()))
    assert job.number == "13944440001"
    _check_received(fax_line, job)
    assert job.ticket.citizen_phone == "13944440001"


def _send_and_receive(esl_endpoint, fax_line, tmp_path, header: str) -> None:
    from fpdf import FPDF

    from recorder.models import FaxJob

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=24)
    pdf.cell(0, 20, "12345 reply to citizen")
    source = tmp_path / "reply.pdf"
    pdf.output(str(source))

    pool = SwitchPool([EslEndpoint(*esl_endpoint)], api_timeout=5.0)
    pool.start()
    try:
        conn = pool.all()[0]
        assert conn.wait_connected(10)
        conn.subscribe(fax_line.service.on_switch_event)
        fax_line.service.settings = dataclasses.replace(fax_line.service.settings, header=header, dial_template=(
            f"[hotline_outbound={fax_line.address},origination_caller_id_number=057112345,hotline_fax_to={{number}}]"
            "loopback/12345/default"))
        # A local number, as a reply to a citizen would be (the dial-out policy refuses 12345 itself as a
        # special-service number); the template sends every fax to the switch's own 12345 and the test's
        # receiving server, carrying the dialled number as a channel variable.
        job = fax_line.service.send("88001234", source)
        assert job.state == "queued" and job.pages == 1
        started = fax_line.service.dispatch_due(conn)
        assert [j.id for j in started] == [job.id] and started[0].state == "sending", started[0].error
        wait_until(lambda: FaxJob.get_by_id(job.id).state not in ("sending",), 150, "the fax result")
        sent = FaxJob.get_by_id(job.id)
        assert (sent.state, sent.pages, sent.attempts) == ("done", 1, 1), (sent.state, sent.error)
        wait_until(lambda: fax_line.received, 30, "the far end to file the fax")
        _check_received(fax_line, next(iter(fax_line.received.values())))
    finally:
        pool.stop()
        gevent.sleep(0)


def test_fax_sent_by_the_service_arrives_and_the_job_is_done(db, esl_endpoint, fax_line, tmp_path):
    """Should convert a PDF to a fax TIFF, originate it over the inbound connection (txfax), have it
    received at the far end (rxfax, filed as a ticket there) and mark the sending job done with its page
    count from the switch's fax result (a page header without spaces)."""
    _send_and_receive(esl_endpoint, fax_line, tmp_path, header="12345-Hotline")


def test_fax_sent_with_the_default_page_header(db, esl_endpoint, fax_line, tmp_path):
    """Should send a fax with the default page header (which has a space) as well."""
    _send_and_receive(esl_endpoint, fax_line, tmp_path, header=FaxSettings().header)

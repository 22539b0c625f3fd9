"""Fax in (TIFF -> PDF -> ticket) and out (PDF -> TIFF -> txfax with retries), the fax log and the watchdog."""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from caseflow.models import Attachment, Ticket
from ops.models import SystemAlarm
from recorder.fax import FaxError, FaxService, FaxSettings, check_number, fax_receive
from recorder.faxfile import FaxFileError, check_tiff, pdf_to_tiff, tiff_to_pdf
from recorder.models import FaxEvent, FaxJob, MissedCall
from switch.errors import CallHangup
from switch.events import ChannelHangup, FaxResult

PS = b"%!PS\n/Helvetica findfont 24 scalefont setfont 72 700 moveto (12345 fax page 1) show showpage\n" \
     b"72 700 moveto (page 2) show showpage\n"


@pytest.fixture(scope="module")
def sample_pdf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fax-src")
    (folder / "doc.ps").write_bytes(PS)
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite",
                    f"-sOutputFile={folder / 'doc.pdf'}", str(folder / "doc.ps")], check=True, timeout=60)
    return folder / "doc.pdf"


@pytest.fixture(scope="module")
def sample_tiff(sample_pdf, tmp_path_factory):
    tiff = tmp_path_factory.mktemp("fax-tif") / "doc.tif"
    pdf_to_tiff(sample_pdf, tiff)
    return tiff


@pytest.fixture
def fax(db, tmp_path, clock, cdr):
    return FaxService(tmp_path / "fax", tmp_path / "attachments", FaxSettings(retry_after=60, max_attempts=2),
                      clock=clock, cdr=cdr)


class FaxSession:
    """A caller's fax machine: rxfax 'receives' by copying a file (or writing given bytes) to the path."""

    def __init__(self, uuid, caller, payload: bytes | None, variables=None, fail=None):
        self.uuid, self.caller, self.payload, self.vars, self.fail = uuid, caller, payload, {}, fail
        self.variables = variables if variables is not None else {}
        self.executed = []

    def set(self, name, value):
        self.vars[name] = value

    def execute(self, app, arg="", timeout=60.0):
        self.executed.append((app, arg))
        if self.payload is not None:
            Path(arg).write_bytes(self.payload)
        if self.fail:
            raise self.fail
        return SimpleNamespace(app=app, response="_none_", variables=self.variables)


def test_conversions_round_trip(sample_pdf, tmp_path):
    """Should render a PDF as a 2-page G3 TIFF at 204x196 dpi and turn it back into a PDF."""
    tiff = tmp_path / "o.tif"
    assert pdf_to_tiff(sample_pdf, tiff) == 2
    info = subprocess.run(["tiffinfo", str(tiff)], capture_output=True, text=True, check=True).stdout
    assert "Resolution: 204, 196" in info and "CCITT Group 3" in info and "Image Width: 1728" in info
    assert tiff_to_pdf(tiff, tmp_path / "o.pdf") == 2
    assert (tmp_path / "o.pdf").read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize("payload,message", [
    (b"", "empty"), (b"GIF89a not a tiff", "not a TIFF"), (b"II*\x00\xff\xff\x00\x00", "corrupt"),
    (b"II*\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00", "corrupt")])
def test_bad_tiff_is_refused(tmp_path, payload, message):
    """Should refuse empty, non-TIFF and corrupt TIFF files with a clear reason."""
    path = tmp_path / "bad.tif"
    path.write_bytes(payload)
    with pytest.raises(FaxFileError, match=message):
        check_tiff(path)
    with pytest.raises(FaxFileError):
        tiff_to_pdf(path, tmp_path / "bad.pdf")
    assert not (tmp_path / "bad.pdf").exists() and path.read_bytes() == payload


def test_inbound_fax_becomes_ticket(fax, cdr, sample_tiff):
    """Should receive with rxfax, convert to PDF and attach it to a new fax ticket, with a log."""
    cdr.call_started("fx-1", caller="02588886666")
    session = FaxSession("fx-1", "02588886666", sample_tiff.read_bytes(),
                         {"variable_fax_success": "1", "variable_fax_document_transferred_pages": "2",
                          "variable_fax_result_text": "OK"})
    job = fax_receive(session, fax)
    assert session.executed[0][0] == "rxfax" and session.executed[0][1].endswith("/fx-1.tif")
    assert session.vars["fax_ident"] == "12345"
    assert job.state == "done" and job.pages == 2 and job.direction == "in"
    ticket = Ticket.get_by_id(job.ticket_id)
    assert ticket.channel == "fax" and "2 页" in ticket.content
    attachment = Attachment.get(Attachment.ticket == ticket)
    assert attachment.kind == "fax" and attachment.content_type == "application/pdf" and attachment.size > 0
    assert fax.local(job.tiff_path).exists() and fax.local(job.pdf_path).exists()
    assert [e.event for e in fax.log_of(job.id)] == ["receiving", "converting", "done"]
    assert cdr.hangup("fx-1").disposition == "fax"


@pytest.mark.parametrize("payload", [b"", b"II*\x00garbage that is no tiff at all"])
def test_corrupt_or_empty_inbound_fax_fails_cleanly(fax, payload, alarms):
    """Should fail the job with a clear error, keep the file, alert, and list the sender for a call-back."""
    job = fax.receive(FaxSession("fx-2", "02566667777", payload, {"fax_success": "1"}))
    assert job.state == "failed" and job.error and job.ticket_id is None
    assert fax.local(job.tiff_path).read_bytes() == payload
    assert SystemAlarm.get().kind == "fax_failed"
    assert MissedCall.get().reason == "fax_failed" and MissedCall.get().caller == "02566667777"


def test_caller_hangs_up_mid_fax_keeps_partial_pages(fax, sample_tiff):
    """Should still file the pages received before the sender hung up, noting the incomplete transfer."""
    job = fax.receive(FaxSession("fx-3", "1234567", sample_tiff.read_bytes(), fail=CallHangup("gone")))
    assert job.state == "done" and "incomplete" in job.error and job.ticket_id


def test_outbound_fax_with_retry(fax, sample_pdf, clock):
    """Should convert, originate txfax, retry after a failed attempt, and finish on a FaxResult."""
    job = fax.send("025-8888 6666", sample_pdf)
    assert job.state == "queued" and job.pages == 2 and job.number == "02588886666"
    conn = Connection(ok=False)
    [job] = fax.dispatch_due(conn)
    assert "&txfax(" in conn.commands[0] and "sofia/gateway/pstn/02588886666" in conn.commands[0]
    assert job.state == "queued" and job.attempts == 1 and "NO_ANSWER" in job.error
    assert fax.dispatch_due(conn) == []  # not before the retry delay
    clock.advance(seconds=61)
    conn.ok = True
    [job] = fax.dispatch_due(conn)
    assert job.state == "sending" and job.attempts == 2
    fax.on_switch_event(FaxResult(server="fs", uuid=job.call_uuid, success=True, pages=2, result_text="OK",
                                  direction="tx"))
    job = FaxJob.get_by_id(job.id)
    assert job.state == "done" and job.error == ""
    events = [e.event for e in FaxEvent.select().where(FaxEvent.job == job).order_by(FaxEvent.id)]
    assert events == ["converting", "queued", "sending", "queued", "sending", "done"]


def test_outbound_gives_up_after_attempts(fax, sample_pdf, clock, alarms):
    """Should fail with an alert after the last attempt; a hang-up without a result counts as a failure."""
    job = fax.send("62345678", sample_pdf)
    conn = Connection(ok=True)
    [job] = fax.dispatch_due(conn)
    fax.on_switch_event(ChannelHangup(server="fs", uuid=job.call_uuid, cause="NORMAL_CLEARING", complete=True))
    clock.advance(seconds=61)
    [job] = fax.dispatch_due(conn)
    fax.on_switch_event(FaxResult(server="fs", uuid=job.call_uuid, success=False, result_text="Far end hung up"))
    job = FaxJob.get_by_id(job.id)
    assert job.state == "failed" and "Far end" in job.error
    assert SystemAlarm.get().kind == "fax_failed"


def test_watchdog_ends_stuck_jobs(fax, sample_pdf, clock, alarms):
    """Should time out a job that makes no progress (no result ever arrives) and report it."""
    job = fax.send("62345678", sample_pdf, max_attempts=1)
    [job] = fax.dispatch_due(Connection(ok=True))
    receiving = FaxJob.create(direction="in", number="555", state="receiving", tiff_path="in/x.tif",
                              deadline_at=job.deadline_at)
    assert fax.watchdog() == []
    clock.advance(seconds=fax.settings.send_timeout + 1)
    ended = fax.watchdog()
    assert {j.id for j in ended} == {job.id, receiving.id}
    assert {FaxJob.get_by_id(j.id).state for j in ended} == {"timed_out"}
    assert SystemAlarm.get(SystemAlarm.kind == "fax_timeout").count == 2
    assert MissedCall.get().caller == "555"
    assert fax.watchdog() == []


@pytest.mark.parametrize("number", ["", "12", "1234;rm -rf", "sofia/gateway/x", "1" * 21, "12345}&bridge(x)"])
def test_bad_fax_numbers_refused(number):
    """Should refuse anything that is not a plain phone number (no dial-string injection)."""
    with pytest.raises(FaxError):
        check_number(number)


def test_bad_pdf_refused(fax, tmp_path):
    """Should refuse a missing, empty or non-PDF document before queueing anything."""
    empty = tmp_path / "e.pdf"
    empty.write_bytes(b"")
    fake = tmp_path / "f.pdf"
    fake.write_bytes(b"<html>not a pdf</html>")
    for path in (empty, fake, tmp_path / "missing.pdf"):
        with pytest.raises(FaxError):
            fax.send("62345678", path)
    assert FaxJob.select().count() == 0


def test_broken_pdf_fails_job(fax, tmp_path):
    """Should fail the job with Ghostscript's reason when a PDF cannot be rendered."""
    broken = tmp_path / "b.pdf"
    broken.write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF\n")
    with pytest.raises(FaxError):
        fax.send("62345678", broken)
    assert FaxJob.get().state == "failed"


class Connection:
    def __init__(self, ok):
        self.ok, self.commands = ok, []

    def bgapi(self, command, timeout=None):
        self.commands.append(command)
        return SimpleNamespace(ok=self.ok, body="+OK uuid\n" if self.ok else "-ERR NO_ANSWER\n")


def test_fax_to_an_international_or_premium_number_is_refused(fax, sample_pdf):
    """Should refuse to queue a fax to an international or premium number (the shipped dial-out policy),
    with the reason, no job and the refusal logged; a +86 number is faxed as the national number."""
    from recorder.models import DialOutLog

    for number in ("+1 202 555 0100", "16001234"):
        with pytest.raises(FaxError, match="may not be dialled"):
            fax.send(number, sample_pdf)
    assert FaxJob.select().count() == 0
    assert [r.number_class for r in DialOutLog.select().order_by(DialOutLog.id)] == ["international", "premium"]
    assert fax.send("+86 25 8888 6666", sample_pdf).number == "02588886666"


def test_fax_queued_before_a_policy_change_is_checked_again_when_sent(fax, sample_pdf):
    """Should check a queued fax against the dial-out policy in force when it is sent: a fax to an
    international number allowed by a rule when queued fails at send time once the rule is gone (no
    originate, the refusal logged, the job failed with the reason); an allowed one is still dialled."""
    from recorder.dialout import DialPolicy, parse_rules
    from recorder.models import DialOutLog

    fax.dialout.policy = DialPolicy(rules=parse_rules("*/*=internal,mobile,domestic,international"))
    abroad = fax.send("+44 20 7946 0000", sample_pdf)
    home = fax.send("025-8888 6666", sample_pdf)
    fax.dialout.policy = DialPolicy()  # the administrator takes the rule back (shipped: domestic only)
    conn = Connection(ok=True)
    jobs = {job.id: job for job in fax.dispatch_due(conn)}
    assert jobs[abroad.id].state == "failed" and "international" in jobs[abroad.id].error
    assert jobs[home.id].state == "sending"
    assert len(conn.commands) == 1 and "02588886666" in conn.commands[0]
    [row] = DialOutLog.select().where(DialOutLog.allowed == False)  # noqa: E712 - peewee expression
    assert (row.purpose, row.number, row.number_class) == ("fax", "00442079460000", "international")


def test_fax_job_dialout_step_adds_the_columns(db, fax, sample_pdf):
    """Should add the dial-out purpose of outbound faxes to a database made before it, keeping the jobs (a
    queued one is then checked as a plain fax)."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    from core.db import is_postgres
    from core.migrations import SchemaMigration
    from hotline.schema import all_models, create_schema

    job = fax.send("025-8888 6666", sample_pdf)
    migrator = PostgresqlMigrator(db) if is_postgres(db) else SqliteMigrator(db)
    migrate(migrator.drop_column("fax_job", "purpose"))  # (SQLite cannot drop the actor's foreign key column)
    SchemaMigration.delete().where(SchemaMigration.name == "0007_fax_job_dialout").execute()
    assert "0007_fax_job_dialout" in create_schema(all_models())
    again = FaxJob.get_by_id(job.id)
    assert (again.number, again.purpose, again.actor_id) == ("02588886666", "fax", None)


def test_only_a_fax_calls_hang_up_asks_the_database(db, fax, sample_pdf, clock, tmp_path, cdr, monkeypatch):
    """Should handle the hang-up of a fax being sent (also one this service did not start: a process before
    it), and ask the database nothing on the hang-up of any other call."""
    job = fax.send("62345678", sample_pdf)
    [job] = fax.dispatch_due(Connection(ok=True))
    later = FaxService(tmp_path / "fax", tmp_path / "attachments", FaxSettings(retry_after=60, max_attempts=2),
                       clock=clock, cdr=cdr)  # the process after a restart: the job is still sending
    for service in (fax, later):
        service._sending()  # read once, at the first hang-up it hears
    seen = []
    execute = db.execute_sql
    monkeypatch.setattr(db, "execute_sql", lambda sql, params=None, *a, **k: seen.append(sql) or
                        execute(sql, params, *a, **k))
    for service in (fax, later):
        service.on_switch_event(ChannelHangup(server="fs", uuid="a-call-without-fax", cause="NORMAL_CLEARING",
                                              complete=True))
    assert seen == []
    later.on_switch_event(ChannelHangup(server="fs", uuid=job.call_uuid, cause="NORMAL_CLEARING", complete=True))
    assert seen and FaxJob.get_by_id(job.id).state == "queued"  # the attempt failed: another one later

"""IVR services on the real database (SQLite and PostgreSQL): tree versions, tickets, status, polls, traces."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from caseflow import services as cs
from caseflow.models import Attachment, Citizen, Ticket, TicketCall
from core.calendar import set_day
from core.clock import FixedClock
from ivr import engine as e
from caseflow.models import MaterialRequest
from ivr.models import IvrTrace, IvrTreeVersion, Poll, PollAnswer, PollQuestion
from ivr.services import TraceRecord
from ivr.tree import TreeError, load_tree
from tests.fakeswitch.audio import write_wav
from tests.unit.ivr.test_tree import english

UUID = "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a"


def test_default_tree_loaded_as_active_version(trees):
    """Should load the shipped tree as version 1 and activate it on an empty database."""
    version = trees.ensure_default()
    assert (version.version, version.active) == (1, True)
    assert trees.ensure_default().id == version.id
    version_id, tree = trees.active_tree()
    assert version_id == version.id and tree.start == "blacklist"


def test_activation_refused_with_reasons(trees):
    """Should refuse to activate a tree with problems, listing each with its node, and keep the old one."""
    first = trees.ensure_default()
    broken = load_tree().source.replace('timeout_route = "goodbye"', 'timeout_route = "after_service"')
    broken = broken.replace('skill = "consult"', 'skill = "astrology"')
    draft = trees.add_version(broken, comment="broken", created_by="admin")
    with pytest.raises(TreeError) as info:
        trees.activate(draft.id, "admin")
    messages = [english(p) for p in info.value.problems]
    assert any(m.startswith("queue_consult: unknown queue/skill 'astrology'") for m in messages)
    assert any(m.startswith("after_service: loop without a caller action") for m in messages)
    assert trees.active().id == first.id


def test_unparsable_tree_is_not_saved(trees):
    """Should refuse to store a file that does not parse, naming the problem."""
    with pytest.raises(TreeError, match="cannot parse"):
        trees.add_version("[tree\nstart = ")
    with pytest.raises(TreeError, match="empty"):
        trees.add_version("   ")
    assert IvrTreeVersion.select().count() == 0


def test_new_version_for_new_calls_old_calls_keep_theirs(trees):
    """Should give new calls the newly activated version while a call in progress keeps its tree."""
    trees.ensure_default()
    _, old_tree = trees.active_tree()
    in_progress = e.IvrEngine(old_tree)
    in_progress.feed(e.CallStarted("13800138000"))
    in_progress.feed(e.BlacklistChecked(False))
    changed = load_tree().source.replace('prompt = "welcome"', 'prompt = "goodbye"')
    new = trees.activate(trees.add_version(changed, comment="test").id, "admin")
    assert new.version == 2
    version_id, new_tree = trees.active_tree()
    assert version_id == new.id and new_tree.node("welcome").get("prompt") == "goodbye"
    assert in_progress.tree.node("welcome").get("prompt") == "welcome"
    assert in_progress.feed(e.PromptDone())[-1].items == ("main_menu",)
    assert IvrTreeVersion.select().where(IvrTreeVersion.active).count() == 1


def _wav(path: Path, seconds=4.0, speech=((0.5, 3.5),)) -> Path:
    write_wav(path, seconds, list(speech))
    return path


def test_ticket_from_recording(ivr_services, ivr_config):
    """Should create a ticket with a random unique 8-digit number, the caller's number, channel phone and the
    recording attached with its size and sha256."""
    _switch, local = ivr_services.recording_target(UUID, "complaint")
    _wav(Path(local))
    number = ivr_services.create_ticket_from_recording("13800138000", "complaint", local, duration_ms=4000,
                                                       confirmed=True, call_uuid=UUID)
    ticket = Ticket.get(Ticket.number == number)
    assert len(number) == 8 and number.isdigit()
    assert (ticket.citizen_phone, ticket.channel, ticket.type, ticket.status) == (
        "13800138000", "phone", "complaint", "recorded")
    attachment = Attachment.get(Attachment.ticket == ticket)
    stored = Path(ivr_config.recordings_dir) / attachment.path.removeprefix("recordings/")
    assert attachment.kind == "recording" and attachment.size == stored.stat().st_size > 0
    assert attachment.sha256 == hashlib.sha256(stored.read_bytes()).hexdigest()
    assert TicketCall.get(TicketCall.ticket == ticket).call_uuid == UUID
    _switch, second = ivr_services.recording_target(UUID, "complaint")  # the call's next recording step
    other = ivr_services.create_ticket_from_recording("13800138000", "complaint", str(_wav(Path(second))),
                                                      duration_ms=4000, confirmed=False, call_uuid=UUID)
    assert other != number
    assert "未确认" in Ticket.get(Ticket.number == other).content


def test_a_recording_step_tried_again_files_its_ticket_once(ivr_services, monkeypatch):
    """Should, when the runner tries a complaint again after the connection was lost (core.db.connection_lost),
    file one ticket: after a transaction lost before its commit, with the recording the first try already
    took into the store (its file moved away); after a lost reply to a commit, by returning the first one's
    number."""
    import peewee

    from recorder.models import Recording

    _switch, local = ivr_services.recording_target(UUID, "complaint")
    _wav(Path(local))

    def lost(*_args, **_kwargs):
        raise peewee.OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patch:
        patch.setattr(cs, "create_ticket", lost)
        with pytest.raises(peewee.OperationalError):
            ivr_services.create_ticket_from_recording("13800138000", "complaint", local, duration_ms=4000,
                                                      confirmed=True, call_uuid=UUID)
    assert not Path(local).exists()  # the store took it on the first try
    number = ivr_services.create_ticket_from_recording("13800138000", "complaint", local, duration_ms=4000,
                                                       confirmed=True, call_uuid=UUID)
    again = ivr_services.create_ticket_from_recording("13800138000", "complaint", local, duration_ms=4000,
                                                      confirmed=True, call_uuid=UUID)
    assert number and again == number
    assert Ticket.select().where(Ticket.citizen_phone == "13800138000").count() == 1
    [rec] = Recording.select().where(Recording.call_uuid == UUID)
    attachment = Attachment.get(Attachment.ticket == Ticket.get(Ticket.number == number))
    assert rec.status == "ok" and attachment.path == "recordings/" + rec.path


def test_mailbox_and_message_tickets(ivr_services):
    """Should file mayor-mailbox recordings on the mailbox channel and messages as voicemail."""
    _s, local = ivr_services.recording_target(UUID, "mayor_mailbox")
    number = ivr_services.create_ticket_from_recording("13800138000", "mayor_mailbox", str(_wav(Path(local))),
                                                       duration_ms=4000, confirmed=True, call_uuid=UUID)
    assert Ticket.get(Ticket.number == number).channel == "mailbox"
    _s, local = ivr_services.recording_target(UUID, "message")
    number = ivr_services.create_ticket_from_recording("13800138000", "message", str(_wav(Path(local))),
                                                       duration_ms=4000, confirmed=True, call_uuid=UUID,
                                                       reason="busy")
    assert number and "留言" in Ticket.get(Ticket.number == number).content


def test_unusable_recording_creates_nothing(ivr_services, tmp_path):
    """Should create no ticket from a file that is not audio, and say so with None."""
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    assert ivr_services.create_ticket_from_recording("13800138000", "complaint", str(bad), duration_ms=0,
                                                     confirmed=True, call_uuid=UUID) is None
    assert Ticket.select().count() == 0


def test_withheld_caller_id_still_gets_a_ticket(ivr_services):
    """Should take the recording of a caller whose number is withheld."""
    _s, local = ivr_services.recording_target(UUID, "complaint")
    number = ivr_services.create_ticket_from_recording("anonymous", "complaint", str(_wav(Path(local))),
                                                       duration_ms=4000, confirmed=True, call_uuid=UUID)
    assert Ticket.get(Ticket.number == number).citizen_phone == ""


@pytest.mark.parametrize("status,word", [("recorded", "accepted"), ("not_accepted", "rejected"),
                                         ("approved", "answered"), ("dispatched", "in_progress"),
                                         ("called_back", "closed")])
def test_status_query_needs_phone_or_pin(ivr_services, status, word):
    """Should answer only when the caller's phone or the PIN matches, with the citizen's status word."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    Ticket.update(status=status).where(Ticket.id == ticket.id).execute()
    assert ivr_services.ticket_status(ticket.number, "13800138000", None) == word
    assert ivr_services.ticket_status(ticket.number, "13900000000", None) is None
    assert ivr_services.ticket_status(ticket.number, "13900000000", ticket.plain_pin) == word
    assert ivr_services.ticket_status(ticket.number, "13900000000", "000000" if ticket.plain_pin != "000000"
                                      else "111111") is None
    assert ivr_services.ticket_status("99999999", "13800138000", None) is None
    assert ivr_services.ticket_status(ticket.number, "", None) is None


def test_blacklist(ivr_services):
    """Should report blacklisted numbers."""
    cs.set_blacklist("13700000000", True, "骚扰")
    assert ivr_services.is_blacklisted("13700000000") is True
    assert ivr_services.is_blacklisted("13800138000") is False


def test_time_state_follows_calendar(ivr_services):
    """Should be open in working hours, closed at night and on weekends, holiday on declared holidays."""
    clock = FixedClock(dt.datetime(2026, 1, 5, 9, 30))  # a Monday
    ivr_services.clock = clock
    check = e.CheckTime("08:00", "20:00", False)
    assert ivr_services.time_state(check) == "open"
    clock.set(dt.datetime(2026, 1, 5, 21, 0))
    assert ivr_services.time_state(check) == "closed"
    clock.set(dt.datetime(2026, 1, 10, 10, 0))  # Saturday
    assert ivr_services.time_state(check) == "closed"
    assert ivr_services.time_state(e.CheckTime("08:00", "20:00", True)) == "open"
    set_day(dt.date(2026, 1, 5), "holiday", "测试假日")
    clock.set(dt.datetime(2026, 1, 5, 10, 0))
    assert ivr_services.time_state(check) == "holiday"


def test_polls(ivr_services):
    """Should offer the active poll's questions and store valid answers only."""
    assert ivr_services.active_poll() == e.PollLoaded(None)
    Poll.create(title="old", active=False)
    poll = Poll.create(title="公交满意度", active=True)
    q1 = PollQuestion.create(poll=poll, position=1, text="满意请按1，不满意请按2", choices="12")
    loaded = ivr_services.active_poll()
    assert loaded.poll_id == poll.id and loaded.questions == (e.PollQuestion(q1.id, "12", text=q1.text),)
    ivr_services.record_poll_answer(poll.id, q1.id, "2", "13800138000", UUID)
    ivr_services.record_poll_answer(poll.id, q1.id, "7", "13800138000", UUID)
    ivr_services.record_poll_answer(poll.id + 99, q1.id, "1", "13800138000", UUID)
    assert [a.answer for a in PollAnswer.select()] == ["2"]


def test_material_requests(ivr_services):
    """Should record SMS, fax and e-mail requests; e-mail goes to the address on the caller's profile."""
    cs.citizen_profile("13800138000", email="citizen@example.org")
    ivr_services.request_material("13800138000", "办事指南", "email", "", UUID)
    ivr_services.request_material("13800138000", "办事指南", "fax", "0571888888", UUID)
    rows = list(MaterialRequest.select().order_by(MaterialRequest.id))
    assert [(r.channel, r.address, r.status) for r in rows] == [("email", "citizen@example.org", "pending"),
                                                                 ("fax", "0571888888", "pending")]


def test_trace_is_stored(ivr_services, trees):
    """Should store a call's trace with its version, outcome and tickets."""
    version = trees.ensure_default()
    now = dt.datetime.now(dt.timezone.utc)
    ivr_services.save_trace(TraceRecord(UUID, "13800138000", "12345", version.id, now, now, "completed",
                                        ["12345678"], [{"at": now.isoformat(), "node": "main", "what": "key",
                                                        "keys": "2"}]))
    trace = IvrTrace.get(IvrTrace.call_uuid == UUID)
    assert trace.tree_version.id == version.id and trace.tickets == "12345678"
    assert trace.steps[0]["keys"] == "2"
    assert json.loads(trace.entries)[0]["node"] == "main"


def test_no_agents_means_busy(ivr_services):
    """Should report busy when no agent extension exists (so the caller can leave a message)."""
    assert ivr_services.agent_extensions() == []
    assert ivr_services.route_to_queue(object(), "general") == "busy"


def test_knowledge_text_only_when_reviewed(ivr_services):
    """Should read a knowledge item to callers only once it is approved."""
    from caseflow.models import KnowledgeItem

    item = KnowledgeItem.create(title="社保卡补办", content="携带身份证到社保大厅办理。")
    assert ivr_services.knowledge_text(str(item.id)) is None
    KnowledgeItem.update(review_state="approved").where(KnowledgeItem.id == item.id).execute()
    assert ivr_services.knowledge_text(str(item.id)) == "社保卡补办。携带身份证到社保大厅办理。"
    assert ivr_services.knowledge_text("abc") is None and ivr_services.knowledge_text("999") is None


def test_status_guessing_is_throttled_per_line(ivr_services):
    """Should stop answering a calling number after ten failed look-ups within an hour, even a right one."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    for guess in range(10):
        assert ivr_services.ticket_status(f"{10000000 + guess}", "13800138000", None) is None
    assert ivr_services.ticket_status(ticket.number, "13800138000", None) is None
    assert ivr_services.ticket_status(ticket.number, "13900000000", ticket.plain_pin) == "accepted"


def test_status_guessing_memory_is_bounded(db, ivr_config, trees, monkeypatch):
    """Should remember failed look-ups of at most QUERY_FAILURE_NUMBERS calling numbers (each failing number
    stayed in memory for ever before), and still stop a line that keeps guessing."""
    import time

    from hotline import ivr_services as module

    monkeypatch.setattr(module, "QUERY_FAILURE_NUMBERS", 20)
    services = module.HotlineIvrServices(config=ivr_config, trees=trees)
    for n in range(60):
        assert services.ticket_status("10000000", f"139{n:08d}", None) is None
    assert len(services._query_failures) == 20
    for _ in range(10):
        services.ticket_status("10000001", "13600000000", None)
    assert services._query_failures.blocked("13600000000", time.monotonic())
    assert services.ticket_status("10000000", "１３８００１３８０００", None) is None  # full-width digits

"""The default tree through the fake FreeSWITCH: people, night and holiday service, bad keys, hang-ups at
every stage, the status query, a blacklisted caller and a tree version switched while calls are running."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow import services as cs
from caseflow.models import Attachment, Ticket, User
from core.calendar import set_day
from core.clock import FixedClock
from ivr.engine import NOT_RECORDED
from ivr.models import IvrTrace
from ivr.tree import load_tree
from tests.fakeswitch import Hangup, Press, Speak, WaitFor


def played(phone, call, lang="zh"):
    """Prompt keys the caller heard, in order."""
    prefix = f"{phone.sounds}/{lang}/"
    return [p[len(prefix):-4] for p in call.played if p.startswith(prefix)]


def agent(phone, extension="1000", **kw):
    User.create(operator_no=f"A{extension}", name=f"坐席{extension}", password_hash="x", extension=extension)
    return phone.fs.add_agent(extension, **kw)


def test_no_key_reaches_a_person(phone):
    """Should bridge a caller who presses nothing to an agent extension (GB/T 33358)."""
    desk = agent(phone, talk_seconds=2, answer_delay=0.2)
    call = phone.call([])
    heard = played(phone, call)
    assert heard[:2] == ["welcome", "main_menu"] and "connecting" in heard
    assert call.bridged_to and desk.answered_calls
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "queue:general"


def test_extensions_rung_in_order(phone):
    """Should ring the agent extensions one after another until one answers."""
    agent(phone, "1000", answer="timeout")
    second = agent(phone, "1001", talk_seconds=1, answer_delay=0.2)
    call = phone.call([Press("1"), Press("2")])
    assert second.answered_calls and call.bridged_to[0].destination == "1001"


def test_invalid_keys_then_person(phone):
    """Should say invalid three times at most, then route to a person; with nobody there, take a message."""
    call = phone.call([Press("7"), Press("#"), Press("5"), WaitFor("record"), Speak(3), Press("#")])
    heard = played(phone, call)
    # Each "#" is typed ahead during "invalid key", which starts the main menu's next try (type-ahead)
    tries = [arg for app, arg in call.executed if app == "play_and_get_digits" and "/main_menu.wav" in arg]
    assert heard.count("invalid_key") == 2 and len(tries) == 3
    assert heard.index("all_busy") < heard.index("leave_message") < heard.index("message_saved")
    assert Ticket.select().count() == 1


def test_blacklisted_caller(phone):
    """Should refuse a blacklisted number politely without any menu."""
    cs.set_blacklist("13700000000", True, "骚扰")
    call = phone.call([], caller="13700000000")
    assert played(phone, call) == ["blocked"]
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "blacklisted"


def answering(phone, **settings):
    """Activate the default tree with these answering settings (ivr.schedule), as an administrator would."""
    from ivr.edit import edit_settings

    source = edit_settings(load_tree(), {k: str(v).lower() if isinstance(v, bool) else v for k, v in settings.items()})
    phone.trees.activate(phone.trees.add_version(source, comment="answering").id, "admin")


MONDAY_NIGHT, SATURDAY, NATIONAL_DAY = (dt.datetime(2026, 1, 5, 23, 0), dt.datetime(2026, 1, 10, 10, 0),
                                        dt.datetime(2026, 10, 1, 10, 0))


def on(phone, moment, holiday=False):
    phone.services.clock = clock = FixedClock(moment)
    if holiday:
        set_day(clock.today(), "holiday", "国庆节")


@pytest.mark.parametrize("moment,holiday", [(MONDAY_NIGHT, False), (SATURDAY, False), (NATIONAL_DAY, True)])
def test_default_answers_around_the_clock(phone, moment, holiday):
    """Should put a caller through to people at night, on a rest day and on a declared holiday alike with the
    shipped tree (P1 一.1: 24-hour answering)."""
    on(phone, moment, holiday)
    desk = agent(phone, talk_seconds=1, answer_delay=0.2)
    heard = played(phone, phone.call([Press("1"), Press("1")]))
    assert "human_menu" in heard and "after_hours" not in heard and "holiday_forward" not in heard
    assert desk.answered_calls


@pytest.mark.parametrize("moment,holiday", [(SATURDAY, False), (NATIONAL_DAY, True)])
def test_rest_days_and_holidays_forward_alike(phone, moment, holiday):
    """Should forward a rest day's call and a declared holiday's call the same way to the duty phone when
    rest_days = "forward" (P5 §3.4.5 节假日或休息日)."""
    answering(phone, rest_days="forward")
    on(phone, moment, holiday)
    duty = phone.fs.add_agent("1019", talk_seconds=1, answer_delay=0.2)
    heard = played(phone, phone.call([Press("1")]))
    assert "holiday_forward" in heard and duty.answered_calls and "human_menu" not in heard


def test_forwarding_leaves_working_days_staffed(phone):
    """Should keep people answering on a working day (at night too) when only rest days forward."""
    answering(phone, rest_days="forward")
    on(phone, MONDAY_NIGHT)
    agent(phone, talk_seconds=1, answer_delay=0.2)
    assert "human_menu" in played(phone, phone.call([Press("1"), Press("1")]))


def test_night_service(phone):
    """Should offer a message or the emergency contact after office hours (when the administrator turned
    them on), and connect 2 to the duty officer."""
    answering(phone, office_hours=True)
    on(phone, MONDAY_NIGHT)
    duty = phone.fs.add_agent("1018", talk_seconds=1, answer_delay=0.2)
    call = phone.call([Press("1"), Press("2")])
    assert "after_hours" in played(phone, call) and duty.answered_calls
    assert "human_menu" not in played(phone, call)


@pytest.mark.parametrize("moment,holiday", [(SATURDAY, False), (NATIONAL_DAY, True)])
def test_office_hours_rest_days_closed(phone, moment, holiday):
    """Should give a rest day and a holiday the night menu alike with office hours and rest_days = "closed"."""
    answering(phone, office_hours=True, rest_days="closed")
    on(phone, moment, holiday)
    assert "after_hours" in played(phone, phone.call([Press("1"), WaitFor("play_and_get_digits", "after_hours"), Hangup()]))


def test_night_message(phone):
    """Should take a message at night when the caller presses nothing."""
    answering(phone, office_hours=True)
    on(phone, MONDAY_NIGHT)
    call = phone.call([Press("1"), WaitFor("record"), Speak(3), Press("#")])
    assert "message_saved" in played(phone, call)
    assert "非工作时间" in Ticket.get().content


def test_holiday_duty_phone_unreachable(phone):
    """Should take a message when the duty phone does not answer."""
    answering(phone, rest_days="forward")
    on(phone, NATIONAL_DAY, holiday=True)
    call = phone.call([Press("1"), WaitFor("record"), Speak(3), Press("#")])
    heard = played(phone, call)
    assert "transfer_failed" in heard and "message_saved" in heard


def test_tree_saved_before_the_settings_keeps_its_rule(phone):
    """Should leave an installed tree without office_hours/rest_days (saved before them) on the rule it was
    written for: office hours, a plain Saturday to the night menu, a declared holiday forwarded."""
    legacy = load_tree().source.replace("office_hours = false", 'weekends_open = false').replace(
        'rest_days = "staffed"', "")
    phone.trees.activate(phone.trees.add_version(legacy, comment="an old tree").id, "admin")
    on(phone, SATURDAY)
    assert "after_hours" in played(phone, phone.call([Press("1"), WaitFor("play_and_get_digits", "after_hours"), Hangup()]))
    on(phone, NATIONAL_DAY, holiday=True)
    phone.fs.add_agent("1019", talk_seconds=1, answer_delay=0.2)
    assert "holiday_forward" in played(phone, phone.call([Press("1")]))


def test_key_typed_during_the_welcome(phone):
    """Should stop the welcome at the caller's key and take it as the main menu's: 2 during the welcome
    lands in self-service without the main menu's prompt."""
    call = phone.call([WaitFor("playback", "welcome"), Press("2", wait=False),
                       WaitFor("play_and_get_digits", "self_menu"), Hangup()])
    heard = played(phone, call)
    assert heard[:2] == ["welcome", "self_menu"] and "main_menu" not in heard
    assert call.variables.get("playback_terminators") == "0123456789*#"
    trace = IvrTrace.get(IvrTrace.call_uuid == call.uuid).entries
    assert '"key during the prompt: to main"' in trace


def test_must_hear_welcome_ignores_keys(phone):
    """Should play a welcome marked must-hear to its end whatever the caller presses, then the main menu."""
    from ivr.edit import edit_node

    phone.trees.activate(phone.trees.add_version(edit_node(load_tree(), "welcome", {"must_hear": "true"})).id, "admin")
    call = phone.call([WaitFor("playback", "welcome"), Press("2", wait=False),
                       WaitFor("play_and_get_digits", "main_menu"), Hangup()])
    heard = played(phone, call)
    assert heard[:2] == ["welcome", "main_menu"] and "self_menu" not in heard


def test_hangup_mid_prompt(phone):
    """Should end cleanly, keep the trace and create nothing when the caller hangs up during the welcome."""
    call = phone.call([WaitFor("playback", "welcome"), Hangup()])
    assert call.hangup_by == "caller"
    trace = IvrTrace.get(IvrTrace.call_uuid == call.uuid)
    assert trace.outcome == "hangup" and Ticket.select().count() == 0


def test_hangup_mid_recording_keeps_useful_recording(phone):
    """Should keep a useful recording as an unconfirmed ticket when the caller hangs up while recording."""
    call = phone.call([Press("2"), Press("2"), Speak(4), Hangup()])
    assert call.hangup_by == "caller"
    ticket = Ticket.get()
    assert "未确认" in ticket.content and ticket.citizen_phone == "13800138000"
    assert Attachment.get(Attachment.ticket == ticket).size > 0


def test_hangup_mid_recording_with_nothing_said(phone):
    """Should create no ticket when the caller hangs up after a second of sound."""
    phone.call([Press("2"), Press("2"), Speak(0.5), Hangup()])
    assert Ticket.select().count() == 0


def test_hangup_at_confirm_keeps_recording_once(phone):
    """Should keep the recording once when the caller hangs up at the confirm menu."""
    phone.call([Press("2"), Press("2"), Speak(3), Press("#"), WaitFor("play_and_get_digits", "record_confirm"),
                Hangup()])
    assert Ticket.select().count() == 1


def test_empty_recording_is_asked_again(phone):
    """Should refuse an empty recording, ask again, and take the second one."""
    call = phone.call([Press("2"), Press("2"), Press("#"), WaitFor("playback", "record_too_short"), Speak(3),
                       Press("#"), Press("1")])
    heard = played(phone, call)
    assert heard.count("record_too_short") == 1 and "acceptance_number" in heard
    assert Ticket.select().count() == 1


def test_replay_and_cancel(phone):
    """Should replay the recording on 2 and discard it on 3."""
    call = phone.call([Press("2"), Press("2"), Speak(3), Press("#"), Press("2"), Press("3"),
                       WaitFor("playback", "record_cancelled"), Hangup()])
    recording = call.recordings[0].path
    assert recording in call.played  # the replay
    assert "record_cancelled" in played(phone, call)
    assert Ticket.select().count() == 0


def test_status_query(phone):
    """Should read back the number and speak the status when the caller's phone matches."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    call = phone.call([Press("2"), Press("3"), Press(ticket.number + "#"), Press("1"),
                       WaitFor("playback", "status_accepted")])
    heard = played(phone, call)
    prefix = f"{phone.sounds}/zh/"
    confirm = next(arg for app, arg in call.executed if app == "play_and_get_digits" and "query_confirm" in arg)
    read_back = ["query_you_entered", *(f"digit_{d}" for d in ticket.number), "query_confirm"]
    assert "file_string://" + "!".join(f"{prefix}{key}.wav" for key in read_back) in confirm
    # The 1 pressed as the read-back began answers the question: the status follows at once (type-ahead)
    assert heard[heard.index("query_you_entered") + 1:heard.index("status_is")] == []
    assert heard[heard.index("status_is") + 1] == "status_accepted"


def test_status_query_approved_not_called_back(phone):
    """Should say 已答复 (status_answered, the web's word) for a ticket approved but not yet called back,
    never 已办结: it may still be reopened."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    Ticket.update(status="approved").where(Ticket.id == ticket.id).execute()
    call = phone.call([Press("2"), Press("3"), Press(ticket.number + "#"), Press("1"),
                       WaitFor("playback", "status_answered")])
    heard = played(phone, call)
    assert heard[heard.index("status_is") + 1] == "status_answered" and "status_closed" not in heard


def test_status_query_other_phone_three_wrong(phone):
    """Should say nothing about another caller's case and give up after three wrong attempts."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13900000000")
    wrong = "000000" if ticket.plain_pin != "000000" else "111111"
    script = [Press("2"), Press("3")]
    for _ in range(3):
        script += [Press(ticket.number + "#"), Press("1"), Press(wrong + "#")]
    call = phone.call(script)
    heard = played(phone, call)
    assert heard.count("query_no_match") == 3 and "query_too_many" in heard
    assert not [k for k in heard if k.startswith("status_")]


def test_status_query_with_pin(phone):
    """Should answer a caller on another phone who gives the PIN."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13900000000")
    call = phone.call([Press("2"), Press("3"), Press(ticket.number + "#"), Press("1"), Press(ticket.plain_pin + "#"),
                       WaitFor("playback", "status_accepted")])
    assert "status_accepted" in played(phone, call)


def test_hangup_mid_query(phone):
    """Should end cleanly mid-query, saying nothing and creating nothing."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    call = phone.call([Press("2"), Press("3"), Press(ticket.number[:4]), Hangup()])
    assert "status_is" not in played(phone, call)
    assert Ticket.select().count() == 1


def test_dtmf_flood(phone):
    """Should survive a flood of keys during the welcome and the menus and still end the call cleanly."""
    call = phone.call([Press("1234567890*#" * 10, wait=False, interval=0.01), Press("9" * 40, interval=0.01),
                       Press("2"), Press("0"), Hangup()])
    assert call.hangup_by == "caller"
    assert IvrTrace.get(IvrTrace.call_uuid == call.uuid).outcome == "hangup"


def test_english(phone):
    """Should switch to English prompts on 9."""
    call = phone.call([Press("9"), Press("2"), WaitFor("play_and_get_digits", "en/self_menu"), Hangup()])
    assert "self_menu" in played(phone, call, "en")


def test_version_switch_while_calls_in_progress(phone):
    """Should keep a running call on its version and give new calls the newly activated one."""
    first = phone.call([Press("2"), Press("2"), Speak(3), Press("#"), Press("1")], wait=False)
    first.wait_for_app("record", timeout=15)
    changed = load_tree().source.replace('prompt = "after_service"', 'prompt = "consult_menu"')
    phone.trees.activate(phone.trees.add_version(changed, comment="new after-service prompt").id, "admin")
    phone.finish(first)
    second = phone.call([Press("2"), Press("2"), Speak(3), Press("#"), Press("1")])
    assert "after_service" in played(phone, first) and "consult_menu" not in played(phone, first)
    assert "consult_menu" in played(phone, second) and "after_service" not in played(phone, second)
    versions = {t.call_uuid: t.tree_version.version for t in IvrTrace.select()}
    assert versions == {first.uuid: 1, second.uuid: 2}


def test_agent_hands_caller_back_to_self_service(phone):
    """Should start a call an agent handed back (人工转自动) at the chosen node, skipping the welcome."""
    ticket = cs.create_ticket("路灯不亮", type="complaint", citizen_phone="13800138000")
    call = phone.sent_back([Press(ticket.number + "#"), Press("1"), WaitFor("playback", "status_accepted")],
                           "hotline_ivr_node", "status_query")
    phone.finish(call)
    heard = played(phone, call)
    assert heard[0] == "query_enter_number" and "status_accepted" in heard and "welcome" not in heard


def test_forged_hand_back_marks_move_nobody(phone, caplog):
    """Should start at the welcome a call whose hotline_ivr_node / hotline_queue the app did not set on that
    channel (set on another channel, another node, or never), and log each claim."""
    import uuid as uuidlib

    phone.services.handbacks.expect(str(uuidlib.uuid4()), "hotline_ivr_node", "status_query")
    other = phone.fs.place_call(phone.server.address, script=[WaitFor("playback", "welcome"), Hangup()],
                                variables={"hotline_ivr_node": "status_query", "hotline_queue": "complaint_q"})
    phone.finish(other)
    call_uuid = str(uuidlib.uuid4())
    phone.services.handbacks.expect(call_uuid, "hotline_ivr_node", "satisfaction")
    changed = phone.fs.place_call(phone.server.address, script=[WaitFor("playback", "welcome"), Hangup()],
                                  uuid=call_uuid, variables={"hotline_ivr_node": "status_query"})
    phone.finish(changed)
    for call in (other, changed):
        assert played(phone, call)[:1] == ["welcome"]
        assert f"call {call.uuid} carries hotline_ivr_node='status_query' that the app did not set" in caplog.text
    assert f"call {other.uuid} carries hotline_queue='complaint_q'" in caplog.text


def test_hand_back_commands():
    """Should mark the channel and transfer it to 12345 over the inbound connection; bad names refused."""
    import pytest

    from ivr.handback import HandBackError, hand_back
    from ivr.tree import load_tree

    sent = []

    class Conn:
        def api(self, command):
            sent.append(command)
            return "+OK\n"

    from switch.marks import HandBackLedger

    ledger = HandBackLedger()
    hand_back(Conn(), "6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a", "status_query", load_tree(), ledger=ledger)
    assert sent == ["uuid_setvar 6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a hotline_ivr_node status_query",
                    "uuid_transfer 6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a 12345 XML default"]
    # The call comes back marked as the app marked it: the runner may start it there (once).
    channel = {"variable_hotline_ivr_node": "status_query"}
    assert ledger.claim("6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a", channel) == {"hotline_ivr_node": "status_query"}
    assert ledger.claim("6f1c2a9e-1d3b-4c55-9a7e-2b1f0c9d8e7a", channel) == {}
    for uuid, node in (("x; hupall", "main"), ("6f1c2a9e-1d3b", "main menu"), ("6f1c2a9e-1d3b", "nosuch")):
        with pytest.raises(HandBackError):
            hand_back(Conn(), uuid, node, load_tree())


def test_recording_storage_failure_does_not_lose_the_caller(phone):
    """Should move on to a person (here: a message, also failing, then goodbye) when nothing can be stored."""
    def broken(call_uuid, kind):
        raise OSError("disk full")

    phone.services.recording_target = broken
    call = phone.call([Press("2"), Press("2")])
    engine = phone.engines[call.uuid]
    assert engine.outcome == "completed" and "human_time" in [t.node for t in engine.trace]
    assert played(phone, call)[-1] == "goodbye" and Ticket.select().count() == 0
    # Told to the call record, which then lists the caller for a call-back (recorder.hooks.apply_trace).
    assert NOT_RECORDED in [t.what for t in engine.trace]


def test_mayor_mailbox(phone):
    """Should record a mayor-mailbox message and file it on the mailbox channel."""
    call = phone.call([Press("2"), Press("1"), Speak(3), Press("#"), Press("1"), WaitFor("playback", "ticket_thanks")])
    assert "mailbox_intro" in played(phone, call)
    assert Ticket.get().channel == "mailbox"


def test_consultation_and_material_request(phone):
    """Should play a consultation topic and record an SMS request for the material."""
    from caseflow.models import MaterialRequest

    call = phone.call([Press("2"), Press("4"), Press("1"), Press("1"), Press("0")])
    heard = played(phone, call)
    assert "consult_guide" in heard and "consult_request_noted" in heard
    request = MaterialRequest.get()
    assert (request.channel, request.address, request.topic) == ("sms", "13800138000", "办事指南")


def test_poll_answers_stored(phone):
    """Should ask the active poll's questions by TTS and store the answers."""
    from ivr.models import Poll, PollAnswer, PollQuestion

    poll = Poll.create(title="公交", active=True)
    PollQuestion.create(poll=poll, position=1, text="您对公交服务满意吗？满意请按1，不满意请按2。", choices="12")
    call = phone.call([Press("2"), Press("5"), Press("2"), WaitFor("playback", "poll_thanks")])
    assert [a.answer for a in PollAnswer.select()] == ["2"]
    asked = [arg for app, arg in call.executed if app == "play_and_get_digits" and "/.cache/zh/" in arg]
    assert len(asked) == 1 and "poll_thanks" in played(phone, call)


def test_after_service_back_to_self_service(phone):
    """Should offer self-service again after a service (0) and end politely on no key."""
    call = phone.call([Press("2"), Press("5"), Press("0"), Press("0"), Press("1"), Press("2")])
    heard = played(phone, call)
    assert heard.count("self_menu") == 2 and "goodbye" not in heard[:heard.index("self_menu", 4)]


def test_holiday_forward_to_an_international_duty_phone_is_refused(phone):
    """Should refuse to forward a caller to a duty phone the dial-out policy forbids (an international
    number: nothing is bridged, the refusal logged) and take a message instead, as for an unreachable one."""
    from recorder.models import DialOutLog

    answering(phone, rest_days="forward", duty_mobile="+442079460000")
    on(phone, NATIONAL_DAY, holiday=True)
    call = phone.call([Press("1"), WaitFor("record"), Speak(3), Press("#")])
    heard = played(phone, call)
    assert "transfer_failed" in heard and "message_saved" in heard
    assert not call.bridged_to
    [row] = DialOutLog.select()
    assert (row.purpose, row.number, row.number_class, row.allowed) == \
        ("ivr_forward", "00442079460000", "international", False)

"""The pure engine on the default tree: every path, bad keys, retries, hang-ups at each point."""
from __future__ import annotations

import datetime as dt

import pytest

from ivr import engine as e
from ivr.tree import load_tree, parse_tree

from .sim import HANGUP, Sim, played, run, visited

TICKET = "12345678"


def test_main_menu_human_consultation():
    """Should welcome the caller, check the blacklist, and put key 1 then 1 through to the consult queue."""
    sim = Sim(keys=["1", "1"])
    engine = run(sim)
    assert played(sim)[:3] == ["welcome", "main_menu", "human_menu"]
    assert isinstance(sim.actions[0], e.CheckBlacklist) and sim.actions[0].caller == "13800138000"
    assert e.ToQueue("consult") in sim.actions
    assert engine.outcome == "queue:consult"
    assert isinstance(sim.actions[-1], e.HangupCall)


@pytest.mark.parametrize("key,skill", [("1", "consult"), ("2", "complaint"), ("3", "convenience")])
def test_human_menu_splits_by_type(key, skill):
    """Should route each human-service key to its dedicated skill."""
    sim = Sim(keys=["1", key])
    run(sim)
    assert [a for a in sim.actions if isinstance(a, e.ToQueue)] == [e.ToQueue(skill)]


def test_no_key_in_main_menu_reaches_a_person():
    """Should send a caller who presses nothing to a person (GB/T 33358), not replay the menu forever."""
    sim = Sim(keys=["", ""])
    engine = run(sim)
    assert played(sim).count("main_menu") == 1
    assert e.ToQueue("general") in sim.actions
    assert "human_time" in visited(engine)


def test_invalid_keys_in_main_menu_then_person():
    """Should say the key is invalid, retry, and after three invalid keys route to a person."""
    sim = Sim(keys=["7", "#", "5", ""])
    run(sim)
    assert played(sim).count("invalid_key") == 2
    assert played(sim).count("main_menu") == 3
    assert e.ToQueue("general") in sim.actions


def test_star_repeats_main_menu():
    """Should replay the main menu on *."""
    sim = Sim(keys=["*", "*", "2", "0", "1", "1"])
    run(sim)
    assert played(sim).count("main_menu") == 4
    assert e.ToQueue("consult") in sim.actions


def test_blacklisted_caller_is_refused_politely():
    """Should play the blocked notice and hang up without any menu."""
    sim = Sim(blocked=True)
    engine = run(sim)
    assert played(sim) == ["blocked"]
    assert isinstance(sim.actions[-1], e.HangupCall)
    assert engine.outcome == "blacklisted"


def test_all_busy_leads_to_a_message():
    """Should tell the caller all agents are busy and take a message that becomes a ticket."""
    sim = Sim(keys=["1", "2"], queue="busy", recordings=[4000])
    engine = run(sim)
    p = played(sim)
    assert p.index("all_busy") < p.index("leave_message") < p.index("message_saved")
    assert [c.kind for c in sim.created] == ["message"]
    assert sim.created[0].confirmed is True
    assert engine.tickets == [TICKET]
    assert "goodbye" in p


def test_human_menu_zero_leaves_a_message():
    """Should record a message on 0 in the human-service menu."""
    sim = Sim(keys=["1", "0"], recordings=[3000])
    run(sim)
    assert [c.kind for c in sim.created] == ["message"]


def test_human_menu_timeout_goes_to_general_queue():
    """Should connect a caller who presses nothing in the human menu to the general queue."""
    sim = Sim(keys=["1", ""])
    run(sim)
    assert e.ToQueue("general") in sim.actions


@pytest.mark.parametrize("keys,expect", [(["1", "1"], "message"), (["1", ""], "message"),
                                         (["1", "2"], "transfer")])
def test_after_hours(keys, expect):
    """Should offer a message or the emergency contact after hours; no key takes a message."""
    sim = Sim(keys=keys, time_state="closed", recordings=[3000])
    engine = run(sim)
    assert "after_hours" in played(sim)
    assert e.ToQueue("general") not in sim.actions
    if expect == "message":
        assert [c.kind for c in sim.created] == ["message"]
    else:
        assert e.Transfer("1018") in sim.actions
        assert engine.outcome == "transferred"


def test_after_hours_emergency_transfer_fails_to_message():
    """Should fall back to a message when the emergency contact cannot be reached."""
    sim = Sim(keys=["1", "2"], time_state="closed", transfer_ok=False, recordings=[3000])
    run(sim)
    assert "transfer_failed" in played(sim)
    assert [c.kind for c in sim.created] == ["message"]


def test_holiday_forwards_to_duty_mobile():
    """Should forward human-service calls to the duty mobile on configured holidays."""
    sim = Sim(keys=["1"], time_state="holiday")
    engine = run(sim)
    assert "holiday_forward" in played(sim)
    assert e.Transfer("1019") in sim.actions
    assert engine.outcome == "transferred"


def test_self_service_still_works_at_night():
    """Should keep self-service open 24 hours: the time check applies to a person only."""
    sim = Sim(keys=["2", "2", "1", ""], time_state="closed", recordings=[5000])
    run(sim)
    assert [c.kind for c in sim.created] == ["complaint"]


def test_walking_skeleton_complaint_recording():
    """Should record, confirm with 1, create the ticket and read the 8-digit number back digit by digit."""
    sim = Sim(keys=["2", "2", "1", ""], recordings=[5000])
    engine = run(sim)
    p = played(sim)
    assert p[:3] == ["welcome", "main_menu", "self_menu"]
    assert "complaint_intro" in p
    record = next(a for a in sim.actions if isinstance(a, e.Record))
    assert record.terminators == "#" and record.beep
    assert sim.created == [e.CreateTicket("complaint", "13800138000", "/rec/0.wav", 5000, True, "zh", "12345")]
    i = p.index("acceptance_number")
    assert p[i + 1] == f"say:{TICKET}"
    assert engine.tickets == [TICKET]
    assert p[-1] == "goodbye"


def test_record_replay_then_confirm():
    """Should replay the recording on 2 and accept 1 afterwards."""
    sim = Sim(keys=["2", "2", "2", "1", ""], recordings=[5000])
    run(sim)
    assert "file:/rec/0.wav" in played(sim)
    assert len(sim.created) == 1


def test_record_cancel_discards_and_returns():
    """Should discard the recording on 3, say so, and go back to the self-service menu."""
    sim = Sim(keys=["2", "2", "3", HANGUP], recordings=[5000])
    run(sim)
    assert e.DiscardRecording("/rec/0.wav") in sim.actions
    p = played(sim)
    assert p[p.index("record_cancelled") + 1] == "self_menu"
    assert sim.created == []


@pytest.mark.parametrize("duration", [0, 1000])
def test_empty_or_one_second_recording_is_retried_then_person(duration):
    """Should refuse empty and one-second recordings, ask again, and after three go to a person."""
    sim = Sim(keys=["2", "2", "1"], recordings=[duration, duration, duration])
    run(sim)
    assert played(sim).count("record_too_short") == 2
    assert sim.created == []
    assert sum(isinstance(a, e.DiscardRecording) for a in sim.actions) == 3
    assert "human_menu" in played(sim)


def test_short_then_good_recording():
    """Should accept a second, useful recording after a one-second one."""
    sim = Sim(keys=["2", "2", "1", ""], recordings=[1000, 6000])
    run(sim)
    assert [c.duration_ms for c in sim.created] == [6000]


def test_hangup_mid_recording_keeps_useful_recording():
    """Should keep a useful recording as an unconfirmed ticket when the caller hangs up while recording."""
    sim = Sim(keys=["2", "2"], recordings=[(7000, "hangup")])
    run(sim)
    assert len(sim.created) == 1
    assert sim.created[0].confirmed is False and sim.created[0].kind == "complaint"


def test_hangup_mid_recording_short_keeps_nothing():
    """Should not create a ticket from a one-second recording cut off by a hang-up."""
    sim = Sim(keys=["2", "2"], recordings=[(900, "hangup")])
    run(sim)
    assert sim.created == []


def test_hangup_at_confirm_keeps_recording_once():
    """Should keep the recording when the caller hangs up at the confirm menu, exactly once."""
    sim = Sim(keys=["2", "2", HANGUP], recordings=[5000])
    run(sim)
    assert [c.confirmed for c in sim.created] == [False]


def test_hangup_during_readback_creates_one_ticket():
    """Should not create a second ticket when the caller hangs up while the number is read back."""
    sim = Sim(keys=["2", "2", "1"], recordings=[5000], hangup_on_play="ticket_thanks")
    run(sim)
    assert len(sim.created) == 1 and sim.created[0].confirmed is True


def test_no_answer_at_confirm_keeps_recording():
    """Should keep the recording (unconfirmed) when the caller never answers the confirm menu."""
    sim = Sim(keys=["2", "2", "", "9", "", ""], recordings=[5000])
    run(sim)
    assert [c.confirmed for c in sim.created] == [False]


def test_ticket_failure_goes_to_a_person():
    """Should apologise and go to a person when the ticket cannot be created."""
    sim = Sim(keys=["2", "2", "1", "1"], recordings=[5000], ticket=None)
    run(sim)
    assert "ticket_failed" in played(sim)
    assert "human_menu" in played(sim)


def test_mayor_mailbox():
    """Should record a mayor-mailbox message with its own ticket type."""
    sim = Sim(keys=["2", "1", "1", ""], recordings=[8000])
    run(sim)
    assert "mailbox_intro" in played(sim)
    assert [c.kind for c in sim.created] == ["mayor_mailbox"]


@pytest.mark.parametrize("status", ["accepted", "in_progress", "rejected", "closed"])
def test_status_query_by_phone(status):
    """Should read the number back, and after 1 speak the status in citizen words."""
    sim = Sim(keys=["2", "3", "87654321#", "1", ""], statuses={("87654321", None): status})
    run(sim)
    p = played(sim)
    confirm = next(a for a in sim.actions if isinstance(a, e.Collect) and "query_confirm" in a.items)
    assert confirm.items == ("query_you_entered", *(f"digit_{d}" for d in "87654321"), "query_confirm")
    assert p[p.index("status_is") + 1] == f"status_{status}"
    assert e.QueryStatus("87654321", "13800138000", None) in sim.actions


def test_status_query_by_pin_when_phone_differs():
    """Should ask for the PIN when the phone number does not match, and answer when the PIN matches."""
    sim = Sim(keys=["2", "3", "87654321", "1", "4321#", ""], statuses={("87654321", "4321"): "closed"})
    engine = run(sim)
    p = played(sim)
    assert "query_enter_pin" in p and "status_closed" in p
    assert not any("4321" == t.keys for t in engine.trace), "a PIN must not be kept in the trace"


def test_status_query_three_wrong_attempts_go_to_person():
    """Should end the query after three wrong attempts and go to a person, saying nothing of the case."""
    sim = Sim(keys=["2", "3", "11111111", "1", "0000", "22222222", "1", "0000", "33333333", "1", "0000", "1"])
    run(sim)
    p = played(sim)
    assert p.count("query_no_match") == 3
    assert "query_too_many" in p
    assert not any(x.startswith("status_") and x != "status_is" for x in p)
    assert "status_is" not in p
    assert "human_menu" in p


def test_status_query_rejects_short_numbers():
    """Should count a number that is not 8 digits as a wrong attempt."""
    sim = Sim(keys=["2", "3", "123", "", "12345678901", "1"])
    run(sim)
    assert not any(isinstance(a, e.QueryStatus) for a in sim.actions)
    assert "query_too_many" in played(sim)


def test_status_query_cancel_reenters():
    """Should let the caller enter the number again with 2."""
    sim = Sim(keys=["2", "3", "11111111", "2", "87654321", "1", ""], statuses={("87654321", None): "accepted"})
    run(sim)
    assert played(sim).count("query_enter_number") == 2
    assert "status_accepted" in played(sim)


def test_hangup_mid_query_says_nothing():
    """Should end cleanly with no ticket when the caller hangs up during the query."""
    sim = Sim(keys=["2", "3", "87654321", HANGUP], statuses={("87654321", None): "accepted"})
    engine = run(sim)
    assert engine.done and sim.created == []
    assert not any(isinstance(a, e.QueryStatus) for a in sim.actions)


def test_consultation_sms_and_fax_requests():
    """Should play the topic and record SMS and fax requests for the channels to fulfil."""
    sim = Sim(keys=["2", "4", "1", "1", "2", "3", "0571888888#", "0", ""])
    run(sim)
    requests = [a for a in sim.actions if isinstance(a, e.RequestMaterial)]
    assert requests == [e.RequestMaterial("办事指南", "sms", "13800138000", "13800138000"),
                        e.RequestMaterial("投诉受理流程", "fax", "13800138000", "0571888888")]
    assert "consult_guide" in played(sim) and "consult_process" in played(sim)


def test_consultation_email_request():
    """Should record an e-mail request (address resolved by the channels from the caller's profile)."""
    sim = Sim(keys=["2", "4", "3", "2", "0", ""])
    run(sim)
    assert [a.channel for a in sim.actions if isinstance(a, e.RequestMaterial)] == ["email"]


def test_consultation_invalid_topics_give_up():
    """Should give up after three invalid topic keys."""
    sim = Sim(keys=["2", "4", "9", "8", "7", ""])
    engine = run(sim)
    assert "after_service" in visited(engine)


def test_poll_without_active_poll():
    """Should say there is no poll when none is active."""
    sim = Sim(keys=["2", "5", ""])
    run(sim)
    assert "poll_none" in played(sim)


def test_poll_answers_are_recorded():
    """Should ask each question, refuse keys outside its choices, and record every answer."""
    poll = e.PollLoaded(7, (e.PollQuestion(1, "12", text="满意吗？"), e.PollQuestion(2, "123", prompt="digit_1")))
    sim = Sim(keys=["2", "5", "9", "2", "3", ""], poll=poll)
    run(sim)
    answers = [a for a in sim.actions if isinstance(a, e.RecordPollAnswer)]
    assert answers == [e.RecordPollAnswer(7, 1, "2", "13800138000"), e.RecordPollAnswer(7, 2, "3", "13800138000")]
    assert "tts:满意吗？" in played(sim) and "poll_thanks" in played(sim)


def test_english_choice():
    """Should switch to English on 9 and play the following prompts in English."""
    sim = Sim(keys=["9", "1", "1"])
    run(sim)
    assert e.SetLanguage("en") in sim.actions
    collects = [a for a in sim.actions if isinstance(a, e.Collect)]
    assert collects[0].lang == "zh" and collects[-1].lang == "en"


def test_back_and_forth_between_self_service_and_person():
    """Should allow 0 back to the main menu and 9 from self-service to a person."""
    sim = Sim(keys=["2", "0", "2", "9", "1"])
    engine = run(sim)
    assert visited(engine)[:6] == ["blacklist", "welcome", "policy", "main", "self_menu", "main"]
    assert e.ToQueue("consult") in sim.actions


def test_after_service_menu():
    """Should offer self-service again (0) or a person (1) after a service."""
    sim = Sim(keys=["2", "5", "0", "5", "1", "2"])
    run(sim)
    assert e.ToQueue("complaint") in sim.actions


def test_dtmf_flood_is_bounded():
    """Should survive a flood of keys: multi-digit garbage is invalid and endless * ends the call."""
    sim = Sim(keys=["1" * 500, "*" * 3, "#" * 50] + ["*"] * 1000)
    engine = run(sim, max_steps=50)
    assert engine.done
    assert "too_many_steps" in played(sim)
    assert len(engine.trace) <= e.MAX_TRACE


def test_keys_while_waiting_for_a_service_are_ignored():
    """Should ignore key events that arrive while it waits for a service answer (not for digits)."""
    engine = e.IvrEngine(load_tree())
    engine.feed(e.CallStarted("13800138000"))  # waiting for the blacklist check
    for digit in "123456789*#0" * 20:
        assert engine.feed(e.Dtmf(digit)) == []
    assert engine.feed(e.BlacklistChecked(False))[-1].items == ("welcome",)


def welcome(tree_source=None):
    """An engine on the default tree (or ``tree_source``) playing the welcome; returns (engine, the Play)."""
    engine = e.IvrEngine(parse_tree(tree_source) if tree_source else load_tree())
    engine.feed(e.CallStarted("13800138000"))
    return engine, engine.feed(e.BlacklistChecked(False))[-1]


def test_key_during_welcome_counts_in_the_main_menu():
    """Should let a key pressed during the welcome stop it and count as the main menu's key: 2 goes straight
    to self-service without the main menu's prompt (type-ahead)."""
    engine, play = welcome()
    assert play.items == ("welcome",) and play.keys == e.ALL_KEYS
    actions = engine.feed(e.Dtmf("2"))
    assert isinstance(actions[-1], e.Collect) and actions[-1].items == ("self_menu",)
    assert all(not (isinstance(a, (e.Play, e.Collect)) and "main_menu" in a.items) for a in actions)
    assert engine.node.id == "self_menu"
    steps = [(t.node, t.what, t.keys) for t in engine.trace]
    assert ("welcome", "key during the prompt: to main", "2") in steps and ("main", "key", "2") in steps


def test_invalid_key_during_welcome_is_the_menus_invalid_key():
    """Should count a key the menu does not know as one wrong try of that menu (invalid prompt, menu again)."""
    engine, _play = welcome()
    actions = engine.feed(e.Dtmf("7"))
    assert actions == [e.Collect(("invalid_key", "main_menu"), "zh", terminators="")]
    assert engine.scratch.retries == 1


def test_welcome_played_out_still_gives_the_menu():
    """Should play the main menu as before when nobody types ahead."""
    engine, _play = welcome()
    assert engine.feed(e.PromptDone())[-1].items == ("main_menu",)


def test_must_hear_prompt_is_not_skipped():
    """Should play a prompt the administrator marked must-hear with no key stopping it, and not take a key
    during it (or during a prompt before it) as the menu's."""
    source = load_tree().source.replace('prompt = "welcome"', 'prompt = "welcome"\nmust_hear = true')
    engine, play = welcome(source)
    assert play.keys == ""
    assert engine.feed(e.Dtmf("2")) == []  # not expected: the runner never reports one for it
    assert engine.feed(e.PromptDone())[-1].items == ("main_menu",)
    # A must-hear policy announcement after the welcome: the welcome is not skippable past it.
    source = load_tree().source.replace('enabled = false', 'enabled = true\nmust_hear = true')
    _engine, play = welcome(source)
    assert play.keys is None


def test_prompt_not_before_a_menu_keeps_the_switchs_keys():
    """Should leave prompts that lead to no menu (goodbye, blocked) as they were: no type-ahead."""
    engine = e.IvrEngine(load_tree())
    engine.feed(e.CallStarted("13700000000"))
    play = engine.feed(e.BlacklistChecked(True))[-1]
    assert play.items == ("blocked",) and play.keys is None


def test_skippable_prompt_chain_through_an_enabled_policy():
    """Should skip the welcome and an enabled (not must-hear) policy announcement together to the menu."""
    source = load_tree().source.replace('enabled = false', 'enabled = true')
    engine, play = welcome(source)
    assert play.keys == e.ALL_KEYS
    assert engine.feed(e.Dtmf("2"))[-1].items == ("self_menu",)


def test_default_tree_asks_for_24_hour_answering():
    """Should ask the calendar with the shipped answering settings: no office hours, rest days staffed."""
    engine, _play = welcome()
    check = engine.feed(e.Dtmf("1"))[-1]
    assert isinstance(check, e.CheckTime) and (check.office_hours, check.rest_days) == (False, "staffed")


def test_unexpected_events_are_ignored():
    """Should ignore events that answer nothing it asked for."""
    engine = e.IvrEngine(load_tree())
    assert engine.feed(e.PromptDone()) == []
    engine.feed(e.CallStarted("1"))
    assert engine.feed(e.TicketCreated("12345678")) == []


def test_hangup_at_every_point_of_the_complaint_path():
    """Should end cleanly wherever the caller hangs up (at a key or mid-prompt), with at most one ticket."""
    full = ["2", "2", "1", ""]
    for cut in range(len(full) + 1):
        sim = Sim(keys=full[:cut] + [HANGUP], recordings=[5000])
        engine = run(sim)
        assert engine.done
        assert len(sim.created) <= 1
        assert any(t.what == "caller hung up" for t in engine.trace) or isinstance(sim.actions[-1], e.HangupCall)
    whole = Sim(keys=list(full), recordings=[5000])
    run(whole)
    for prompt in {a.items[0] for a in whole.actions if isinstance(a, e.Play) and a.items}:
        sim = Sim(keys=list(full), recordings=[5000], hangup_on_play=prompt)
        engine = run(sim)
        assert engine.done and engine.outcome == "hangup", prompt
        assert len(sim.created) <= 1, prompt


def test_trace_records_nodes_times_and_keys():
    """Should keep a trace of visited nodes with times and keys."""
    clock_times = iter(dt.datetime(2026, 1, 5, 9, 0, s, tzinfo=dt.timezone.utc) for s in range(60))
    sim = Sim(keys=["2", "2", "1", ""], recordings=[5000])
    engine = run(sim, clock=lambda: next(clock_times))
    trace = engine.trace_dicts()
    assert trace[0]["at"].startswith("2026-01-05T09:00:00")
    assert {"node": "main", "what": "key", "keys": "2"}.items() <= trace[[t["node"] for t in trace].index("main") + 1].items()
    assert any(t["what"] == f"ticket {TICKET}" for t in trace)
    assert [t["at"] for t in trace] == sorted(t["at"] for t in trace)


def test_policy_announcement_when_enabled():
    """Should play the optional policy announcement after the welcome when an administrator enables it."""
    source = load_tree().source.replace("enabled = false", "enabled = true")
    sim = Sim(keys=["1", "1"])
    run(sim, tree=parse_tree(source))
    assert played(sim)[:3] == ["welcome", "policy_announcement", "main_menu"]


def test_agent_hands_caller_back_to_a_node():
    """Should start at a given node when an agent hands the caller back to self-service (人工转自动)."""
    engine = e.IvrEngine(load_tree())
    actions = engine.feed(e.CallStarted("13800138000", start_node="status_query"))
    assert actions[-1].items == ("query_enter_number",)


def test_route_to_a_missing_node_ends_politely():
    """Should end the call politely if an unvalidated tree routes to a node that does not exist."""
    source = load_tree().source.replace('next = "policy"', 'next = "nowhere"')
    sim = Sim(keys=[])
    engine = run(sim, tree=parse_tree(source))
    assert engine.outcome == "tree_error" and played(sim)[-1] == "goodbye"


def test_prompts_before_a_question_take_its_keys():
    """Should play the prompts that end a question's prefix (Play, Say as its digits) as the start of its
    prompt, and leave a must-hear Play, another language's or any other action, and what comes before them."""
    spoken = [e.SetLanguage("zh"), e.Play(("a",), "zh"), e.Say("1a2", "zh"), e.Play(("b", "c"), "zh")]
    assert e._heard_before(spoken, "zh") == ([e.SetLanguage("zh")], ("a", "digit_1", "digit_2", "b", "c"))
    must = [e.Play(("a",), "zh"), e.Play(("m",), "zh", ""), e.Play(("b",), "zh")]
    assert e._heard_before(must, "zh") == (must[:2], ("b",))
    assert e._heard_before([e.Play(("a",), "en")], "zh") == ([e.Play(("a",), "en")], ())
    assert e._heard_before([], "zh") == ([], ())

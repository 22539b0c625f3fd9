"""The team-lead console's rows and totals (webui.console), as pure functions of the ACD's figures."""
from webui import console

ZH = {"On a call": "通话中", "Idle": "空闲", "On break": "示忙", "Force release": "强拆",
      "End this agent's call now?": "确定强拆该话务员的通话吗？"}


def agent(**fields):
    base = {"agent_id": 1, "operator_no": "8001", "name": "王芳", "status": "available", "state": "idle",
            "registered": True, "help_requested": False, "seconds_in_state": 0, "on_hold": False}
    return {**base, **fields}


def test_on_call_actions_only_on_a_call():
    """Should offer listening and force release only to an agent on a call, answer-help only when asked."""
    assert console.agent_actions(agent()) == ["call_agent", "set_break", "force_logout"]
    on_call = console.agent_actions(agent(state="in_call"))
    assert on_call[:5] == ["monitor", "whisper", "barge", "intercept", "force_release"]
    assert "answer_help" not in on_call and "call_agent" not in on_call
    assert console.agent_actions(agent(state="in_call", help_requested=True))[0] == "answer_help"
    assert console.agent_actions(agent(status="logged_out")) == []
    assert console.agent_actions(agent(status="on_break")) == ["call_agent", "force_logout"]
    assert "call_agent" not in console.agent_actions(agent(registered=False))


def test_states_durations_and_confirmations_read_in_the_viewers_language():
    """Should show one translated state with its break reason in one language, time with units, and a
    confirmation on force release."""
    rows = console.agent_rows([agent(state="in_call", seconds_in_state=125),
                               agent(agent_id=2, status="on_break", break_reason="培训 / training")],
                              "zh", lambda m: ZH.get(m, m))
    assert (rows[0]["state"], rows[0]["state_label"], rows[0]["time"]) == ("in_call", "通话中", "2分5秒")
    release = [a for a in rows[0]["actions"] if a["action"] == "force_release"][0]
    assert release == {"action": "force_release", "label": "强拆", "confirm": "确定强拆该话务员的通话吗？"}
    assert rows[1]["state_label"] == "示忙（培训）"
    assert console.duration(3725, "en") == "1 h 2 min 5 s" and console.duration(None, "zh") == "-"


def test_totals_weigh_the_answer_rate_by_answered_calls():
    """Should count agents per state and weigh the 15-second rate by each queue's answered calls."""
    agents = [agent(), agent(state="in_call"), agent(status="on_break"), agent(status="logged_out"),
              agent(status="after_call_work", state="wrap_up")]
    queues = [{"queue": "a", "waiting": 2, "longest_wait": 61.2, "answered_today": 30, "answer_rate_15s": 100.0,
               "abandoned_today": 1},
              {"queue": "b", "waiting": 0, "longest_wait": 0, "answered_today": 10, "answer_rate_15s": 0.0,
               "abandoned_today": 2}]
    totals = console.totals(agents, queues, 80.0, "zh")
    assert {k: totals[k] for k in ("on_duty", "on_call", "idle", "on_break", "wrap_up", "logged_out")} == \
        {"on_duty": 4, "on_call": 1, "idle": 1, "on_break": 1, "wrap_up": 1, "logged_out": 1}
    assert (totals["waiting"], totals["longest_wait"], totals["rate"], totals["abandoned"]) == (2, "1分1秒", "75%", 3)
    assert totals["below_target"] and totals["target"] == "80%"
    assert console.totals([], [], 80.0, "zh")["rate"] == "-"


def test_the_stream_sends_only_rows_that_changed_beyond_their_time():
    """Should find no change in a row whose time in state alone moved, the row whose state changed, and ask
    for the whole board when agents came or went."""
    before = console.agent_rows([agent(), agent(agent_id=2, seconds_in_state=5)], "zh", lambda m: ZH.get(m, m))
    shown = console.shown_rows(before)
    later = console.agent_rows([agent(seconds_in_state=9), agent(agent_id=2, state="in_call", seconds_in_state=0)],
                               "zh", lambda m: ZH.get(m, m))
    changed = console.changed_rows(shown, later)
    assert [(row["agent_id"], row["state_label"], row["time"]) for row in changed] == [(2, "通话中", "0秒")]
    assert console.changed_rows(console.shown_rows(later), later) == []
    assert console.changed_rows(shown, later[:1]) is None
    assert console.touches_queues(["agent", "queue"]) and not console.touches_queues(["agent", "hold", "desk"])

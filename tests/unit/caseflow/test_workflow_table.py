"""The declared transition table, checked without a database: every entry allowed, every other pair refused."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from caseflow import workflow as wf


def dept(id_, path, level=2, active=True, name="单位"):
    return SimpleNamespace(id=id_, path=path, level=level, active=active, name=name)


DEPT2 = dept(2, "/1/2/")
DEPT3 = dept(3, "/1/2/3/", level=3)


def ticket_for(state, event):
    """A ticket-like object in ``state`` shaped so the event's guard can pass."""
    upper = event in ("return_up", "reply_up")
    return SimpleNamespace(
        id=10, status=state, department=DEPT3 if upper else DEPT2, department_id=3 if upper else 2,
        upper_department_id=2 if upper else None, handler_id=None, deadline=dt.datetime(2026, 3, 10),
        extension_until=dt.datetime(2026, 3, 20) if event in ("approve_extension", "refuse_extension") else None,
        anonymous=False, reply_by="phone", citizen_phone="13800000000")


def good_params(event):
    handler = SimpleNamespace(department_id=2, department=DEPT2, active=True)
    return {
        "department": DEPT3 if event == "sub_dispatch" else DEPT2,
        "reply": "已处理", "reason": "理由", "master": SimpleNamespace(id=99, status=wf.DISPATCHED),
        "handler": handler, "until": dt.datetime(2026, 3, 30), "satisfaction":
            "unsatisfied" if event == "call_back_unsatisfied" else "satisfied",
        "at": dt.datetime(2026, 3, 5), "public": True,
    }


ALL_PAIRS = [(s, e) for s in wf.STATUSES for e in wf.EVENTS]
ALLOWED = sorted(wf.TRANSITIONS)
REFUSED = [pair for pair in ALL_PAIRS if pair not in wf.TRANSITIONS]


@pytest.mark.parametrize("state,event", ALLOWED)
def test_allowed_transition(state, event):
    """Should reach the declared target when the guard is satisfied."""
    rule = wf.TRANSITIONS[(state, event)]
    ctx = wf.Context(ticket_for(state, event), None, good_params(event))
    assert wf.check(state, event, ctx) == rule.target
    assert rule.target is None or rule.target in wf.STATUSES


@pytest.mark.parametrize("state,event", REFUSED)
def test_refused_transition(state, event):
    """Should refuse every pair the table does not declare, naming the state and the action."""
    with pytest.raises(wf.WorkflowError) as info:
        wf.check(state, event, wf.Context(ticket_for(state, event), None, good_params(event)))
    assert info.value.code == "bad_state"
    assert event in str(info.value) and state in str(info.value)


GUARDED = [(s, e) for (s, e), rule in sorted(wf.TRANSITIONS.items()) if rule.guard is not None]


@pytest.mark.parametrize("state,event", GUARDED)
def test_guard_refuses_without_parameters(state, event):
    """Should refuse a guarded transition when its required input is missing, saying why."""
    ticket = ticket_for(state, event)
    if event in ("approve_extension", "refuse_extension"):
        ticket.extension_until = None
    if event in ("return", "reply"):
        ticket.upper_department_id = 2
    if event in ("return_up", "reply_up"):
        ticket.upper_department_id = None
    if event == "accept":
        ticket.handler_id = 7  # a passed-down ticket someone already took
    with pytest.raises(wf.WorkflowError) as info:
        wf.check(state, event, wf.Context(ticket, None, {}))
    assert info.value.code == "guard"
    assert " / " in str(info.value)  # Chinese first, then English


def test_unknown_event():
    """Should reject an event that is not in the table at all."""
    with pytest.raises(wf.WorkflowError) as info:
        wf.check(wf.RECORDED, "teleport", wf.Context(ticket_for(wf.RECORDED, "x")))
    assert info.value.code == "unknown_event"


def test_every_status_reachable_and_labelled():
    """Should reach every status from 'recorded' through the table, and label every status and event."""
    reached, frontier = {wf.RECORDED}, [wf.RECORDED]
    while frontier:
        state = frontier.pop()
        for (s, _e), rule in wf.TRANSITIONS.items():
            if s == state and rule.target and rule.target not in reached:
                reached.add(rule.target)
                frontier.append(rule.target)
    assert reached == set(wf.STATUSES)
    assert all(e in wf.EVENT_LABELS for e in wf.EVENTS)


def test_closed_loop_path():
    """Should allow the seed workflow recorded -> dispatched -> in progress -> replied -> approved -> called back -> closed -> archived."""
    path = [("dispatch", wf.DISPATCHED), ("accept", wf.IN_PROGRESS), ("reply", wf.REPLIED),
            ("approve", wf.APPROVED), ("call_back", wf.CALLED_BACK), ("close", wf.CLOSED),
            ("archive", wf.ARCHIVED)]
    state = wf.RECORDED
    for event, target in path:
        state = wf.check(state, event, wf.Context(ticket_for(state, event), None, good_params(event))) or state
        assert state == target


def test_sub_dispatch_only_downwards():
    """Should refuse sub-dispatch to a unit outside the holder's subtree or to itself."""
    t = ticket_for(wf.IN_PROGRESS, "sub_dispatch")
    for target in (dept(5, "/1/5/"), DEPT2):
        with pytest.raises(wf.WorkflowError):
            wf.check(wf.IN_PROGRESS, "sub_dispatch", wf.Context(t, None, {"department": target}))


def test_merge_into_self_refused():
    """Should refuse merging a ticket into itself."""
    t = ticket_for(wf.RECORDED, "merge")
    with pytest.raises(wf.WorkflowError, match="itself"):
        wf.check(wf.RECORDED, "merge", wf.Context(t, None, {"master": SimpleNamespace(id=10, status=wf.RECORDED)}))


def test_extension_must_move_deadline_later():
    """Should refuse an extension that ends before the current deadline."""
    t = ticket_for(wf.IN_PROGRESS, "request_extension")
    with pytest.raises(wf.WorkflowError, match="later"):
        wf.check(wf.IN_PROGRESS, "request_extension",
                 wf.Context(t, None, {"until": dt.datetime(2026, 3, 1), "reason": "x"}))


def test_arranging_or_passing_down_starts_handling():
    """Should put a ticket into 开始处理 when the department assigns a handler or passes it down (P5 §3.2),
    from 分配待处理 as from 开始处理."""
    for state in (wf.DISPATCHED, wf.IN_PROGRESS):
        for event in ("assign", "sub_dispatch"):
            ctx = wf.Context(ticket_for(state, event), None, good_params(event))
            assert wf.check(state, event, ctx) == wf.IN_PROGRESS


def test_only_the_holding_unit_accepts_a_passed_down_ticket():
    """Should let staff of the holding unit take an in-progress ticket nobody holds, and refuse others."""
    ticket = ticket_for(wf.IN_PROGRESS, "accept")
    ticket.department = DEPT3
    inside = SimpleNamespace(department_id=3, department=DEPT3)
    above = SimpleNamespace(department_id=2, department=DEPT2)
    assert wf.check(wf.IN_PROGRESS, "accept", wf.Context(ticket, inside)) == wf.IN_PROGRESS
    with pytest.raises(wf.WorkflowError, match="holding unit"):
        wf.check(wf.IN_PROGRESS, "accept", wf.Context(ticket, above))


def test_every_status_has_one_citizen_word():
    """Should give every workflow status exactly one citizen word, from the one table, in both languages."""
    assert set(wf.CITIZEN_STATUS) == set(wf.STATUSES)
    assert set(wf.CITIZEN_STATUS.values()) == set(wf.CITIZEN_WORDS)
    for status in wf.STATUSES:
        assert wf.citizen_words(status, "zh") == wf.CITIZEN_WORDS[wf.citizen_status(status)][0]
        assert wf.citizen_words(status, "en") == wf.CITIZEN_WORDS[wf.citizen_status(status)][1]


@pytest.mark.parametrize("status,zh", [
    (wf.RECORDED, "已受理"), (wf.DISPATCHED, "正在办理"), (wf.UNSATISFIED, "正在办理"),
    (wf.APPROVED, "已答复"), (wf.ANSWERED, "已答复"), (wf.CALLED_BACK, "已办结"), (wf.CLOSED, "已办结"),
    (wf.NOT_ACCEPTED, "不予受理"),
])
def test_citizen_words(status, zh):
    """Should call a ticket approved but not yet called back (it may be reopened) 已答复, never 已办结."""
    assert wf.citizen_words(status) == zh


@pytest.mark.parametrize("bad", ["", "reopened", "CLOSED", None])
def test_citizen_words_unknown_status(bad):
    """Should refuse a status the workflow does not know with a clear error."""
    with pytest.raises(ValueError, match="unknown ticket status"):
        wf.citizen_words(bad)

"""Every transition of the table through caseflow.services on both databases, the closed loop, and the
refusals that matter: wrong state, missing right, concurrent change, double posting."""
from __future__ import annotations

import datetime as dt

import pytest

from caseflow import services
from caseflow import workflow as wf
from caseflow.models import Notification, Ticket, TicketHistory
from caseflow.values import to_db
from caseflow.workflow import ConcurrentChange, PermissionDenied, WorkflowError


def _force(ticket, **fields):
    """Test set-up only: put a ticket into a state without walking the loop."""
    Ticket.update(**fields).where(Ticket.id == ticket.id).execute()
    return Ticket.get_by_id(ticket.id)


def _days_after(clock, days: int) -> dt.datetime:
    """A moment ``days`` after the test clock's now (naive UTC, as stored): not yet due, whatever the date."""
    return to_db(clock.now() + dt.timedelta(days=days))


def _setup(o, state, event, clock):
    ticket = services.create_ticket("楼下工地夜间施工噪音扰民", type="complaint", citizen_phone="13800000001",
                                    citizen_name="张三", category=o.noise, created_by=o.agent)
    upper = event in ("return_up", "reply_up")
    fields = {"status": state, "department": o.east_street if upper else o.east,
              "upper_department": o.east if upper else None, "deadline": _days_after(clock, 30)}
    if event in ("approve_extension", "refuse_extension"):
        fields["extension_until"] = _days_after(clock, 60)
    if state in (wf.RECORDED, wf.RETURNED, wf.DEFERRED):
        fields["department"] = None
    return _force(ticket, **fields)


def _actor(o, rule, ticket):
    if rule.dept_scope:
        return o.east_street_user if ticket.department_id == o.east_street.id else o.east_user
    return o.leader  # centre + centre_leader: every centre permission


def _params(o, event, ticket, clock):
    master = None
    if event == "merge":
        master = services.create_ticket("同一工地噪音", created_by=o.agent)
    return {
        "dispatch": {"department": o.west}, "answer": {"reply": "答复"}, "answer_later": {"reply": "答复"},
        "not_accept": {"reason": "不属于受理范围"}, "merge": {"master": master},
        "return": {"reason": "非本单位职责"}, "sub_dispatch": {"department": o.east_street},
        "return_up": {"reason": "非本街道"}, "reply_up": {"reply": "已处理"}, "assign": {"handler": o.east_leader},
        "reply": {"reply": "已处理完毕"}, "reject": {"reason": "答复不完整"},
        "request_extension": {"until": _days_after(clock, 90), "reason": "需要协调多个部门"},
        "refuse_extension": {"reason": "理由不足"}, "set_reminder": {"at": _days_after(clock, 30)},
        "call_back": {"satisfaction": "basic"}, "call_back_unsatisfied": {"satisfaction": "unsatisfied"},
        "reopen": {"reason": "群众仍不满意"}, "keep_closed": {"reason": "已依法答复"},
        "close": {"reason": "联系不上"}, "disclose": {"public": True},
    }.get(event, {})


def test_every_declared_transition(org_setup, clock):
    """Should perform every (state, event) of the table through the services, write the status and
    exactly one history row with actor, from and to."""
    o = org_setup
    failures = []
    for (state, event), rule in sorted(wf.TRANSITIONS.items()):
        ticket = _setup(o, state, event, clock)
        actor = _actor(o, rule, ticket)
        before = TicketHistory.select().where(TicketHistory.ticket == ticket).count()
        try:
            result = services.transition(ticket, event, actor, clock=clock, **_params(o, event, ticket, clock))
        except WorkflowError as exc:
            failures.append(f"{state}/{event}: {exc}")
            continue
        expected = rule.target or state
        stored = Ticket.get_by_id(ticket.id)
        rows = list(TicketHistory.select().where(TicketHistory.ticket == ticket).order_by(TicketHistory.id))
        if stored.status != expected or result.status != expected:
            failures.append(f"{state}/{event}: status {stored.status}, expected {expected}")
        if len(rows) != before + 1 or rows[-1].action != event or rows[-1].from_status != state \
                or rows[-1].to_status != expected or rows[-1].actor_id != actor.id:
            failures.append(f"{state}/{event}: history {[(r.action, r.from_status, r.to_status) for r in rows]}")
        if not rule.passive and stored.version != ticket.version + 1:
            failures.append(f"{state}/{event}: version not bumped")
    assert failures == []


@pytest.mark.parametrize("state,event", [
    (wf.RECORDED, "accept"), (wf.RECORDED, "approve"), (wf.DISPATCHED, "reply"), (wf.CLOSED, "dispatch"),
    (wf.ARCHIVED, "reopen"), (wf.REPLIED, "call_back"), (wf.NOT_ACCEPTED, "dispatch"), (wf.MERGED, "accept"),
])
def test_refused_transition_leaves_ticket_unchanged(org_setup, clock, state, event):
    """Should refuse a pair the table lacks with a message naming both, and change nothing."""
    o = org_setup
    ticket = _force(services.create_ticket("内容", created_by=o.agent), status=state, department=o.east)
    actor = o.east_user if event in ("accept", "reply") else o.leader
    with pytest.raises(WorkflowError) as info:
        services.transition(ticket, event, actor, clock=clock, **_params(o, event, ticket, clock))
    assert state in str(info.value)
    after = Ticket.get_by_id(ticket.id)
    assert (after.status, after.version) == (state, ticket.version)
    assert TicketHistory.select().where(TicketHistory.ticket == ticket).count() == 1  # only 'create'


def test_full_closed_loop(org_setup, clock):
    """Should walk dispatch -> accept -> sub-dispatch -> reply up -> reply -> reject -> reply -> approve
    -> unsatisfied call-back -> reopen -> reply -> approve -> satisfied -> closed -> archived."""
    o = org_setup
    t = services.create_ticket("东区一街道烧烤店油烟扰民", type="complaint", citizen_phone="13800000002",
                               category=o.noise, region=o.r_east1, created_by=o.agent, clock=clock)
    assert services.suggest_departments(o.noise, o.r_east1)[0] == o.east
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    assert t.deadline is not None and t.department_id == o.east.id
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "sub_dispatch", o.east_user, department=o.east_street, clock=clock)
    t = services.transition(t, "accept", o.east_street_user, clock=clock)
    with pytest.raises(WorkflowError, match="upper unit"):
        services.transition(t, "reply", o.east_street_user, reply="好了", clock=clock)
    t = services.transition(t, "reply_up", o.east_street_user, reply="已约谈店主，加装净化器", clock=clock)
    assert (t.department_id, t.upper_department_id, t.status) == (o.east.id, None, wf.IN_PROGRESS)
    t = services.transition(t, "reply", o.east_user, reply="经核查，已督促整改。", clock=clock)
    t = services.transition(t, "reject", o.centre_user, reason="未说明整改期限", clock=clock)
    assert t.status == wf.DISPATCHED and t.department_id == o.east.id
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已整改，期限一周。", clock=clock)
    t = services.transition(t, "approve", o.centre_user, clock=clock)
    assert t.callback_deadline is not None
    t = services.call_back(t, o.agent, "unsatisfied", note="仍有油烟", clock=clock)
    assert t.status == wf.UNSATISFIED
    notices = Notification.select().where(Notification.ticket == t, Notification.kind == "unsatisfied")
    assert {n.department_id for n in notices if n.department_id} == {o.east.id}
    assert o.leader.id in {n.user_id for n in notices}
    with pytest.raises(PermissionDenied):
        services.transition(t, "reopen", o.agent, reason="x", clock=clock)
    t = services.transition(t, "reopen", o.leader, reason="群众仍不满意，重办", clock=clock)
    assert (t.status, t.reopen_count) == (wf.DISPATCHED, 1)
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已拆除烧烤设施。", clock=clock)
    t = services.transition(t, "approve", o.centre_user, clock=clock)
    t = services.call_back(t, o.agent, "satisfied", clock=clock)
    t = services.transition(t, "close", o.centre_user, clock=clock)
    t = services.transition(t, "archive", o.centre_user, clock=clock)
    assert t.status == wf.ARCHIVED and t.satisfaction == "satisfied"
    actions = [h.action for h in services.timeline(t)]
    assert actions[0] == "create" and actions[-1] == "archive" and actions.count("reply") == 3


def test_concurrent_change_one_wins(org_setup, clock):
    """Should let the first of two handlers holding the same version win and tell the second clearly."""
    o = org_setup
    t = services.dispatch(services.create_ticket("内容", created_by=o.agent), o.centre_user, o.east, clock=clock)
    copy_a, copy_b = Ticket.get_by_id(t.id), Ticket.get_by_id(t.id)
    services.transition(copy_a, "accept", o.east_user, clock=clock)
    with pytest.raises(ConcurrentChange) as info:
        services.transition(copy_b, "return", o.east_leader, reason="非本单位", clock=clock)
    assert "changed by someone else" in str(info.value)
    stored = Ticket.get_by_id(t.id)
    assert stored.status == wf.IN_PROGRESS
    assert [h.action for h in services.timeline(stored)] == ["create", "dispatch", "accept"]


def test_double_post_refused(org_setup, clock):
    """Should refuse the same transition posted twice with the version of the first post."""
    o = org_setup
    t = services.dispatch(services.create_ticket("内容", created_by=o.agent), o.centre_user, o.east, clock=clock)
    version = t.version
    services.transition(t.id, "accept", o.east_user, expected_version=version, clock=clock)
    with pytest.raises(ConcurrentChange, match="already submitted"):
        services.transition(t.id, "accept", o.east_user, expected_version=version, clock=clock)
    assert [h.action for h in services.timeline(t)].count("accept") == 1


def test_stale_update_rejected_at_write(org_setup, clock, monkeypatch):
    """Should detect a change that lands between reading and writing (the version guard in UPDATE)."""
    o = org_setup
    t = services.dispatch(services.create_ticket("内容", created_by=o.agent), o.centre_user, o.east, clock=clock)
    original = services.EFFECTS["accept"]

    def racing(ticket, *args):
        # Another handler commits while this one is between its read and its write.
        Ticket.update(version=Ticket.version + 1).where(Ticket.id == ticket.id).execute()
        return original(ticket, *args)

    monkeypatch.setitem(services.EFFECTS, "accept", racing)
    with pytest.raises(ConcurrentChange):
        services.transition(t.id, "accept", o.east_user, clock=clock)
    assert Ticket.get_by_id(t.id).status == wf.DISPATCHED
    assert [h.action for h in services.timeline(t)] == ["create", "dispatch"]


def test_merge_carries_duplicate(org_setup, clock):
    """Should merge a duplicate into its master, note it on both, and answer the duplicate's status
    query with the master's progress."""
    o = org_setup
    master = services.create_ticket("某路口红绿灯坏了", citizen_phone="13800000011", created_by=o.agent)
    dup = services.create_ticket("同一个路口红绿灯不亮", citizen_phone="13800000012", created_by=o.agent)
    master = services.dispatch(master, o.centre_user, o.east, clock=clock)
    dup = services.transition(dup, "merge", o.centre_user, master=master.number, clock=clock)
    assert dup.status == wf.MERGED and dup.master_id == master.id
    assert [d.id for d in master.duplicates] == [dup.id]
    assert "duplicate_added" in [h.action for h in services.timeline(master)]
    answer = services.status_query(dup.number, "13800000012")
    assert answer["status"] == wf.DISPATCHED


def test_extension_moves_deadline(org_setup, clock):
    """Should move the deadline only when the centre approves the extension."""
    o = org_setup
    t = services.dispatch(services.create_ticket("内容", created_by=o.agent), o.centre_user, o.east, clock=clock)
    old = t.deadline
    until = old + dt.timedelta(days=5)
    t = services.transition(t, "request_extension", o.east_user, until=until, reason="需协调", clock=clock)
    assert t.deadline == old and t.extension_until == until
    with pytest.raises(WorkflowError, match="already pending"):
        services.transition(t, "request_extension", o.east_user, until=until, reason="again", clock=clock)
    with pytest.raises(PermissionDenied):
        services.transition(t, "approve_extension", o.east_leader, clock=clock)
    t = services.transition(t, "approve_extension", o.centre_user, clock=clock)
    assert t.deadline == until and t.extension_until is None
    t = services.transition(t, "request_extension", o.east_user, until=until + dt.timedelta(days=1),
                            reason="再延", clock=clock)
    t = services.transition(t, "refuse_extension", o.centre_user, reason="不同意", clock=clock)
    assert t.deadline == until and t.extension_until is None


def test_return_to_centre_and_redispatch(org_setup, clock):
    """Should let a department return a ticket that is not its own (逆向分流) and the centre re-dispatch it."""
    o = org_setup
    t = services.dispatch(services.create_ticket("内容", created_by=o.agent), o.centre_user, o.west, clock=clock)
    t = services.transition(t, "return", o.west_user, reason="该地点属东区", clock=clock)
    assert t.status == wf.RETURNED and t.department_id is None
    assert t in services.centre_queue(o.centre_user, "to_dispatch")
    assert Notification.select().where(Notification.department == o.centre, Notification.kind == "returned").exists()
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    assert t.department_id == o.east.id


def test_answer_on_spot_and_defer(org_setup, clock):
    """Should close a consultation answered on the spot, and keep a deferred one for the centre."""
    o = org_setup
    t = services.create_ticket("社保怎么交", citizen_phone="13800000003", created_by=o.agent)
    t = services.transition(t, "answer", o.agent, reply="可在政务网办理", clock=clock)
    assert t.status == wf.ANSWERED and t.callback_deadline is not None
    t = services.call_back(t, o.agent, "satisfied", clock=clock)
    t = services.transition(t, "close", o.centre_user, clock=clock)
    assert t.status == wf.CLOSED
    d = services.create_ticket("政策细节需查证", created_by=o.agent)
    d = services.transition(d, "defer", o.agent, clock=clock)
    assert d in services.centre_queue(o.centre_user, "deferred")
    d = services.transition(d, "answer_later", o.centre_user, reply="经查证……", clock=clock)
    assert d.status == wf.ANSWERED


def test_not_accepted_needs_reason(org_setup, clock):
    """Should require a reason for 不予受理 and record it in the history."""
    o = org_setup
    t = services.create_ticket("骚扰电话", type="harassment", created_by=o.agent)
    with pytest.raises(WorkflowError, match="required"):
        services.transition(t, "not_accept", o.centre_user, clock=clock)
    t = services.transition(t, "not_accept", o.centre_user, reason="无实质内容", clock=clock)
    assert services.timeline(t)[-1].note.startswith("无实质内容")


def test_assign_handler_within_department(org_setup, clock):
    """Should assign only a handler who belongs to the holding department."""
    o = org_setup
    t = services.dispatch(services.create_ticket("内容", created_by=o.agent), o.centre_user, o.east, clock=clock)
    with pytest.raises(WorkflowError, match="handler"):
        services.transition(t, "assign", o.east_leader, handler=o.west_user, clock=clock)
    t = services.transition(t, "assign", o.east_leader, handler=o.east_user, clock=clock)
    assert t.handler_id == o.east_user.id


def test_status_query_words_through_the_loop(org_setup, clock):
    """Should tell the citizen 已答复 once approved, 正在办理 again after an unsatisfied call-back and a
    reopening (not 已办结), and 已办结 only after a satisfied call-back, by phone and on the web alike."""
    o = org_setup
    t = services.create_ticket("小区门口路灯不亮", type="complaint", citizen_phone="13800000003",
                               category=o.noise, region=o.r_east1, created_by=o.agent, clock=clock)

    def told():
        answer = services.status_query(t.number, "13800000003")
        return answer["citizen"], answer["label"], services.status_query(t.number, "13800000003", "en")["label"]

    assert told() == ("accepted", "已受理", "accepted")
    t = services.dispatch(t, o.centre_user, o.east, clock=clock)
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已修复。", clock=clock)
    assert told()[:2] == ("in_progress", "正在办理")
    t = services.transition(t, "approve", o.centre_user, clock=clock)
    assert told() == ("answered", "已答复", "answered")
    t = services.call_back(t, o.agent, "unsatisfied", note="仍不亮", clock=clock)
    assert told()[:2] == ("in_progress", "正在办理")
    t = services.transition(t, "reopen", o.leader, reason="群众仍不满意，重办", clock=clock)
    assert told()[:2] == ("in_progress", "正在办理")
    t = services.transition(t, "accept", o.east_user, clock=clock)
    t = services.transition(t, "reply", o.east_user, reply="已更换灯具。", clock=clock)
    t = services.transition(t, "approve", o.centre_user, clock=clock)
    assert told()[:2] == ("answered", "已答复")
    t = services.call_back(t, o.agent, "satisfied", clock=clock)
    assert told() == ("closed", "已办结", "completed")

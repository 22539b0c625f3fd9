"""The ACD's part of the call records: its notices (offers, answers, hold) and queue rows (entry, exit,
outcome) go into recorder.cdr's records. Here, not in recorder/, because the ACD sits above the recorder
(docs/architecture.md); hotline.product.attach_recorder subscribes it.
"""
from __future__ import annotations

import logging

from acd.models import Agent, Queue, QueueEntry
from recorder.cdr import CdrRecorder
from recorder.drafts import CallDraft, _utc

log = logging.getLogger(__name__)


class AcdCallRecorder:
    """Feeds ACD notices (offers, answers) and queue rows (entry, exit, outcome) into call records."""

    def __init__(self, acd, cdr: CdrRecorder):
        self.acd = acd
        self.cdr = cdr

    def operator_no(self, agent_id) -> str:
        known = getattr(self.acd, "operator_no", {}) or {}
        if agent_id in known and known[agent_id]:
            return str(known[agent_id])
        agent = Agent.get_or_none(Agent.id == agent_id)
        return agent.user.operator_no if agent is not None else str(agent_id)

    def on_notice(self, notice: dict) -> None:
        """Acd.subscribe listener."""
        kind = notice.get("type")
        if kind == "hold":
            agent = (getattr(self.acd, "agents", {}) or {}).get(notice.get("agent_id"))
            if agent is not None and getattr(agent, "call_uuid", ""):
                self.cdr.hold(agent.call_uuid, bool(notice.get("on_hold")))
            return
        call_uuid = notice.get("call_uuid") or ""
        if not call_uuid or kind not in ("offer", "answered"):
            return
        try:
            operator = self.operator_no(notice.get("agent_id"))
            if kind == "answered" and notice.get("direction") == "outbound" and self.cdr.draft(call_uuid) is None:
                # An agent's outbound call (call-back): its record starts when the agent's phone answers; it
                # counts as answered when the citizen does (the bridge).
                agent = (getattr(self.acd, "agents", {}) or {}).get(notice.get("agent_id"))
                self.cdr.call_started(call_uuid, caller=getattr(agent, "extension", "") or operator,
                                      called=notice.get("number", "") or "", direction="outbound",
                                      server=getattr(agent, "server", "") or "")
                self.cdr.draft(call_uuid).agent_no = operator[:16]
                return
            if kind == "offer":
                if notice.get("queue"):
                    self.cdr.queue_entered(call_uuid, notice["queue"])
                self.cdr.agent_offered(call_uuid, operator)
                return
            agent = (getattr(self.acd, "agents", {}) or {}).get(notice.get("agent_id"))
            self.cdr.agent_answered(call_uuid, operator, agent_uuid=getattr(agent, "leg_uuid", "") or "")
        except Exception:  # noqa: BLE001 - a broken record must never disturb the ACD
            log.exception("call record update from ACD notice %s failed", kind)

    def enrich(self, draft: CallDraft) -> None:
        """CdrRecorder enricher: queue entry, exit, outcome, answer and agent from the ACD's queue rows."""
        rows = list(QueueEntry.select(QueueEntry, Queue).join(Queue).where(QueueEntry.call_uuid == draft.call_uuid)
                    .order_by(QueueEntry.entered_at, QueueEntry.id))
        if not rows:
            return
        first, last = rows[0], rows[-1]
        draft.queue = last.queue.name[:64]
        draft.queue_entered_at = _utc(first.entered_at)
        answered = next((r for r in rows if r.answered_at is not None), None)
        if answered is not None:
            draft.queue_left_at = _utc(answered.answered_at)
            draft.queue_outcome = "answered"
            if draft.answered_at is None:
                draft.answered_at = _utc(answered.answered_at)
            if not draft.agent_no and answered.agent_id:
                draft.agent_no = self.operator_no(answered.agent_id)[:16]
            return
        draft.queue_left_at = _utc(last.ended_at) if last.ended_at else draft.ended_at
        if last.state == "overflowed":
            draft.queue_outcome = "overflowed"
            draft.flags.add("overflowed")
        else:
            draft.queue_outcome = "abandoned"
            if last.state == "callback_requested":
                draft.flags.add("callback_requested")
        if not draft.offers:
            draft.offers = [{"agent": self.operator_no(i)[:16], "at": "", "result": "not answered"}
                            for i in last.offered_ids()]

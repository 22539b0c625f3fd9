"""Wiring the recorder to the IVR and the ACD without either importing the recorder.

- ``ivr_trace_hook(cdr)``: a HotlineIvrServices.on_trace callback; the IVR's trace gives the call record
  its IVR path and flags (blacklisted, out of hours, served) - it may arrive just after the hang-up, so the
  record is finalised again with it, and only then is an unserved caller put on the missed-call list.
- (``acd.call_records.AcdCallRecorder`` feeds the ACD's offers, answers and queue rows into call records: the
  ACD knows the recorder, not the other way round.)
- ``BridgeRecorder``: a switch-event subscriber that records every bridged conversation (uuid_record on
  the caller's channel once the other party answered: the conversation only, not the queue music).
- ``hotline.product.attach_recorder(...)`` wires all three (the composition root's, not the recorder's).
"""
from __future__ import annotations

import logging

from recorder.cdr import CdrRecorder
from recorder.drafts import CallDraft

log = logging.getLogger(__name__)

def apply_trace(draft: CallDraft, outcome: str, entries: list[dict], tickets: list[str], served: str = "") -> None:
    """Fill a draft from an IVR trace: path of nodes entered, blacklist, out of hours, and served as the
    engine decided it (IvrEngine.served, per node kind). The trace is the IVR's last word on the call."""
    path = []
    for entry in entries:
        what = str(entry.get("what", ""))
        node = str(entry.get("node", ""))
        if what.startswith("enter ") and node and (not path or path[-1]["node"] != node):
            path.append({"node": node[:64], "at": str(entry.get("at", ""))[:32]})
        if what == "blocked":
            draft.flags.add("blacklisted")
        if what in ("time: closed", "time: holiday"):
            draft.flags.add("out_of_hours")
        if what.startswith("not stored"):  # ivr.engine.NOT_STORED / NOT_RECORDED: what the caller gave was lost
            draft.flags.add("not_stored")
        if what.startswith("not filed"):  # ivr.engine.NOT_FILED: kept with the call, filed by nobody (a bug)
            draft.flags.add("not_filed")
        if what.startswith("no ticket"):  # ivr.engine.NO_TICKET: a recording that became no ticket
            draft.flags.add("no_ticket")
    if path:
        draft.ivr_path = path
    if outcome == "blacklisted":
        draft.flags.add("blacklisted")
    if served:
        draft.flags.add("served")
    draft.awaiting_ivr = False


def ivr_trace_hook(cdr: CdrRecorder):
    """A callback for HotlineIvrServices.on_trace (it receives ivr.services.TraceRecord)."""

    def on_trace(record) -> None:
        try:
            cdr.amend(record.call_uuid, lambda draft: apply_trace(draft, record.outcome or "", list(record.entries),
                                                                  list(record.tickets),
                                                                  getattr(record, "served", "") or ""))
        except Exception:  # noqa: BLE001 - the IVR's end must not fail on the call record
            log.exception("call record update from the IVR trace of %s failed", record.call_uuid)

    return on_trace


class BridgeRecorder:
    """Records every conversation: when a call the recorder follows is bridged to another leg (an agent
    through the ACD, an extension, a duty phone), ``uuid_record`` starts on the caller's channel, once per
    call. The bridge also marks the call answered and, when the other leg is an agent's extension, whose."""

    def __init__(self, cdr: CdrRecorder, recordings, pool, spawn=None):
        self.cdr = cdr
        self.recordings = recordings
        self.pool = pool
        self.spawn = spawn  # spawn(func) to record off the event consumer; None = inline (tests)
        self.started: set[str] = set()

    def on_switch_event(self, event) -> None:
        """Subscribe to the inbound connections (after CdrRecorder.on_switch_event)."""
        name = type(event).__name__
        try:
            if name == "ChannelBridged":
                self._bridged(event)
            elif name == "ChannelHangup" and getattr(event, "complete", False):
                self.started.discard(event.uuid)
        except Exception:  # noqa: BLE001 - never let recording stop the event consumer
            log.exception("recording on %s failed", name)

    def _bridged(self, event) -> None:
        uuid, other = event.uuid, getattr(event, "other_uuid", "")
        main = uuid if uuid in self.cdr.drafts else other if other in self.cdr.drafts else None
        if main is None or main in self.started:
            return
        self.started.add(main)
        draft = self.cdr.drafts[main]
        raw = getattr(event, "raw", {}) or {}
        extension = raw.get("Other-Leg-Destination-Number", "") if main == uuid else \
            raw.get("Caller-Destination-Number", "")
        if draft.answered_at is None:
            agent_no = self._operator_for(extension) if not draft.agent_no else draft.agent_no
            self.cdr.agent_answered(main, agent_no, agent_uuid=other if main == uuid else uuid)
        server = getattr(event, "server", "") or draft.server

        def start() -> None:
            from core.db import database

            with database.connection_context():
                connection = self._connection(server)
                if connection is None:
                    log.warning("cannot record %s: no connection to %r", main, server)
                    return
                self.recordings.start_on_bridged(connection, main)

        if self.spawn is not None:
            self.spawn(start)
        else:
            start()

    @staticmethod
    def _operator_for(extension: str) -> str:
        from caseflow.models import User

        if not extension:
            return ""
        user = User.get_or_none(User.extension == extension[:16])
        return user.operator_no if user is not None else ""

    def _connection(self, server: str):
        # By name first: several switches may share a host (the host alone is ambiguous then). (Was: the name
        # was never tried, a fresh bound method never being ``is`` another, so with two switches on one host
        # no bridged conversation was recorded; found by bench/simulation.py.)
        for lookup, key in ((getattr(self.pool, "get", None), server),
                            (getattr(self.pool, "for_host", None), server.rpartition(":")[0])):
            if lookup is None:
                continue
            try:
                return lookup(key)
            except (KeyError, LookupError, ValueError):
                continue
        connections = list(self.pool.all()) if hasattr(self.pool, "all") else []
        return connections[0] if len(connections) == 1 else None


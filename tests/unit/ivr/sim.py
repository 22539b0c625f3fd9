"""A simulated caller and back office that answer the engine's actions, for pure engine tests."""
from __future__ import annotations

from dataclasses import dataclass, field

from ivr import engine as e
from ivr.tree import load_tree

HANGUP = object()  # put in keys/recordings to hang up at that point


@dataclass
class Sim:
    """Answers each blocking action from scripted lists; records every action the engine asked for."""

    keys: list = field(default_factory=list)  # one entry per Collect: digits, "" (timeout) or HANGUP
    recordings: list = field(default_factory=list)  # one per Record: ms, (ms, "hangup") or HANGUP
    blocked: bool = False
    time_state: str = "open"
    ticket: str | None = "12345678"
    statuses: dict = field(default_factory=dict)  # (number, pin) -> status; pin None = phone matched
    poll: e.PollLoaded = field(default_factory=lambda: e.PollLoaded(None))
    queue: str = "answered"
    transfer_ok: bool = True
    fax_ok: bool = True
    hangup_on_play: str | None = None  # hang up while this prompt plays
    actions: list = field(default_factory=list)
    created: list = field(default_factory=list)

    def answer(self, action):
        """The event that answers ``action``, or HANGUP."""
        if isinstance(action, e.Play):
            return e.PromptDone()
        if isinstance(action, e.Say):
            return e.PromptDone()
        if isinstance(action, e.Collect):
            if not self.keys:
                return HANGUP
            key = self.keys.pop(0)
            return HANGUP if key is HANGUP else e.DigitsCollected(key)
        if isinstance(action, e.Record):
            if not self.recordings:
                return HANGUP
            rec = self.recordings.pop(0)
            if rec is HANGUP:
                return HANGUP
            if isinstance(rec, tuple):
                return e.RecordDone(f"/rec/{len(self.recordings)}.wav", rec[0], rec[1])
            return e.RecordDone(f"/rec/{len(self.recordings)}.wav", rec, "#")
        if isinstance(action, e.CheckBlacklist):
            return e.BlacklistChecked(self.blocked)
        if isinstance(action, e.CheckTime):
            return e.TimeChecked(self.time_state)
        if isinstance(action, e.CreateTicket):
            self.created.append(action)
            return e.TicketCreated(self.ticket)
        if isinstance(action, e.QueryStatus):
            return e.StatusFound(self.statuses.get((action.number, action.pin)))
        if isinstance(action, e.LoadPoll):
            return self.poll
        if isinstance(action, e.ToQueue):
            return e.QueueResult(self.queue)
        if isinstance(action, e.Transfer):
            return e.TransferResult(self.transfer_ok)
        if isinstance(action, e.ReceiveFax):
            return e.FaxDone(self.fax_ok, "87654321" if self.fax_ok else None)
        raise AssertionError(f"unexpected blocking action {action!r}")


def run(sim: Sim, tree=None, caller="13800138000", limit=1000, start_node=None, **engine_args) -> e.IvrEngine:
    """Drive a call to its end (from ``start_node``: an agent's hand-back); returns the engine (trace,
    outcome, tickets)."""
    engine = e.IvrEngine(tree or load_tree(), **engine_args)
    actions = engine.feed(e.CallStarted(caller, "12345", "uuid-1", start_node=start_node))
    for _ in range(limit):
        sim.actions.extend(actions)
        if engine.done:
            # After a hang-up the runner still carries out service actions (keeping a recording).
            for action in actions:
                if isinstance(action, e.CreateTicket):
                    sim.created.append(action)
            return engine
        assert actions, f"engine is stuck at {engine.node.id} waiting for {engine.waiting_for}"
        heard = [i for a in actions if isinstance(a, e.Play) for i in a.items]
        reply = HANGUP if sim.hangup_on_play in heard else sim.answer(actions[-1])
        if isinstance(reply, e.RecordDone) and reply.terminator == "hangup":
            # What the runner does when the caller hangs up while recording: the file, then the hang-up.
            assert engine.feed(reply) == []
            reply = HANGUP
        actions = engine.feed(e.Hangup() if reply is HANGUP else reply)
    raise AssertionError("call did not end")


def played(sim: Sim) -> list[str]:
    """Every prompt item played or used as a collect prompt, in order."""
    out = []
    for action in sim.actions:
        if isinstance(action, (e.Play, e.Collect)):
            out.extend(action.items)
        if isinstance(action, e.Say):
            out.append(f"say:{action.digits}")
    return out


def visited(engine: e.IvrEngine) -> list[str]:
    return [t.node for t in engine.trace if t.what.startswith("enter ")]

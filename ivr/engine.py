"""The pure IVR engine: ``IvrEngine(tree).feed(event) -> [actions]``.

No I/O here: the runner performs each action and feeds back what happened. The contract with the runner:
every ``feed`` returns a list whose actions are carried out in order; only the LAST one is answered with an
event (Play/Say -> PromptDone, Collect -> DigitsCollected, Record -> RecordDone, CheckBlacklist ->
BlacklistChecked, CheckTime -> TimeChecked, CreateTicket -> TicketCreated, QueryStatus -> StatusFound,
LoadPoll -> PollLoaded, ToQueue -> QueueResult, Transfer -> TransferResult). Actions before it
(SetLanguage, RecordPollAnswer, RequestMaterial, DiscardRecording, Play...) need no answer. ``Hangup`` ends
the call. After the caller hangs up, the runner still carries out the service actions it is given (a
useful recording is kept as a ticket) but no telephony ones.

Where the parts are: the events and actions in ivr/messages.py (re-exported here); the loop, its helpers
and the one-step node kinds (prompt, menu, language, blacklist, time, fax, satisfaction, queue, transfer,
hangup) here; the node kinds that hold a dialogue of several steps (record / mailbox / voicemail, status
query, consultation, poll, collect) in ivr/dialogues.py, mixed into ``IvrEngine``.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ivr.dialogues import STATUS_PROMPTS, DialogueNodes
# The events and actions: re-exported, as callers write ``e.Play`` (ivr.messages has them).
from ivr.messages import (  # noqa: F401
    CallStarted, Dtmf, DigitsCollected, PromptDone, RecordDone, Timeout, Hangup, BlacklistChecked, TimeChecked,
    TicketCreated, StatusFound, PollQuestion, PollLoaded, QueueResult, TransferResult, FaxToneDetected, FaxDone,
    Play, ALL_KEYS, Say, Collect, Record, DiscardRecording, CheckBlacklist, CheckTime, CreateTicket,
    QueryStatus, LoadPoll, RecordPollAnswer, RequestMaterial, SaveAnswer, ToQueue, Transfer, ReceiveFax,
    SaveSatisfaction, SetLanguage, HangupCall, ANSWERS, SERVICE_ACTIONS,
)
from ivr.tree import REPEAT, Node, Tree

log = logging.getLogger(__name__)

MAX_TRACE = 500
# The trace line of a step whose result (a complaint, an answer) the back office could not store because the
# database stayed away: the call record lists such a caller for a call-back (recorder.hooks.apply_trace).
NOT_STORED = "not stored: database away"
# The same for a recording the storage refused (the recordings' disk full or not writable): what the caller
# wanted to leave was not kept, whoever ends the call ("not stored" is what the call record looks for).
NOT_RECORDED = "not stored: no place to record"
# The trace line of a recording step that filed no ticket with the database there (the recording unusable:
# empty, unreadable; or the back office failing): the call record lists the caller for a call-back
# ("no_ticket") unless a person answered, also when the system ended the call or self-service served later.
NO_TICKET = "no ticket: recording not usable"
# The trace lines of a call whose handling failed on a bug (an unexpected error: not the caller, the switch or a
# database outage, which have their own paths): what the caller recorded was kept with the call and no ticket
# filed from it (listed for a call-back as "not_filed", so staff listen to it and file it), or nothing of
# theirs was kept ("not stored": listed as a system fault). The runner writes them (IvrCall._failed).
NOT_FILED = "not filed: recording kept, IVR failure"
IVR_FAILED = "not stored: IVR failure"
QUEUE_TRANSFER_NODE = "@queue"  # trace name of the queue an agent transferred a caller into

SATISFACTION_RATINGS = {"1": "satisfied", "2": "basic", "3": "unsatisfied"}  # 满意 / 基本满意 / 不满意
# Prompts the engine plays itself (the tree names the others); every language must have them.
ENGINE_PROMPTS = (
    "invalid_key", "too_many_steps", "transfer_failed", "record_confirm", "record_too_short", "record_cancelled",
    "acceptance_number", "ticket_thanks", "ticket_failed", "message_saved", "query_enter_number",
    "query_you_entered", "query_confirm", "query_enter_pin", "query_no_match", "query_too_many", "status_is",
    *STATUS_PROMPTS.values(), "consult_menu", "consult_send_offer", "consult_fax_number", "consult_request_noted",
    "poll_none", "poll_intro", "poll_thanks", "fax_failed", "satisfaction_thanks",
    *(f"digit_{d}" for d in "0123456789"),
)


@dataclass(slots=True)
class TraceEntry:
    """One step of a call: when, which node, what happened, keys pressed. Slotted: a call keeps up to
    MAX_TRACE of them for its life (issue 15 item 11)."""

    at: str
    node: str
    what: str
    keys: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"at": self.at, "node": self.node, "what": self.what, "keys": self.keys}


@dataclass
class _Scratch:
    """Per-node working state, reset on entering a node."""

    step: str = ""
    retries: int = 0
    data: dict[str, Any] = field(default_factory=dict)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _heard_before(prefix: list, lang: str) -> tuple[list, tuple[str, ...]]:
    """Split off the prompts that end ``prefix`` (Play without key rules, Say as its per-digit prompts) in
    ``lang``, to be played as the first items of the question that follows. A must-hear Play (keys "") and
    anything before it, or before any other action, stay as they are."""
    ahead: list[str] = []
    cut = len(prefix)
    while cut:
        action = prefix[cut - 1]
        if isinstance(action, Play) and action.keys is None and action.lang == lang:
            ahead[:0] = action.items
        elif isinstance(action, Say) and action.lang == lang:
            ahead[:0] = action.prompts
        else:
            break
        cut -= 1
    return prefix[:cut], tuple(ahead)


class IvrEngine(DialogueNodes):
    """Walks one call through a tree. Feed events, carry out the returned actions."""

    def __init__(self, tree: Tree, clock: Callable[[], dt.datetime] = _utcnow, max_steps: int = 200):
        self.tree = tree
        self.clock = clock
        self.max_steps = max_steps
        self.lang: str = str(tree.setting("language", "zh"))
        self.caller = ""
        self.destination = ""
        self.node: Node | None = None
        self.scratch = _Scratch()
        self.trace: list[TraceEntry] = []
        self.done = False
        self.steps = 0
        self.tickets: list[str] = []
        self.outcome = ""
        self.answers: dict[str, str] = {}
        self.variables: dict[str, str] = {}
        # How self-service (or a person) served the caller, "" while nothing did: the call record keeps a
        # served caller off the missed-call list. Set only at a node's served exit (see ``_served``).
        self.served = ""
        self._expect: tuple[type, ...] = (CallStarted,)
        self._pending_recording: tuple | None = None  # (path, ms, kind, reason) not yet a ticket
        self._fax_jumped = False  # a fax tone sends the call to the fax node once, never again

    # ------------------------------------------------------------ public
    def feed(self, event: Any) -> list:
        """Advance the call by one event and return the actions to carry out."""
        if self.done:
            return []
        if isinstance(event, Hangup):
            return self._on_hangup()
        if isinstance(event, FaxToneDetected):
            return self._on_fax_tone()
        if isinstance(event, Dtmf) and DigitsCollected in self._expect:
            event = DigitsCollected(event.digit)
        if isinstance(event, Timeout) and DigitsCollected in self._expect:
            event = DigitsCollected("")
        if not isinstance(event, self._expect):
            log.debug("ivr: ignoring %r while waiting for %s", event, [t.__name__ for t in self._expect])
            return []
        if isinstance(event, CallStarted):
            self.caller, self.destination = event.caller, event.destination
            if event.lang:
                self.lang = event.lang
            self.variables = dict(event.variables)
            self._log("", "call started")
            if event.queue:
                return self._enter_named_queue(event.queue)
            return self._enter(event.start_node or self.tree.start)
        handler = getattr(self, f"_on_{self.node.kind}")
        return handler(event)

    @property
    def waiting_for(self) -> tuple[type, ...]:
        return self._expect

    def trace_dicts(self) -> list[dict[str, str]]:
        return [entry.as_dict() for entry in self.trace]

    def note(self, what: str) -> None:
        """Add what the runner knows and the engine cannot (a step's result not stored: ``NOT_STORED``) to
        the trace, at the current node."""
        self._log(self.node.id if self.node else "", what)

    # ------------------------------------------------------------ helpers
    def _log(self, node: str, what: str, keys: str = "") -> None:
        if len(self.trace) < MAX_TRACE:
            self.trace.append(TraceEntry(self.clock().isoformat(timespec="milliseconds"), node, what, keys))

    def _wait(self, actions: list) -> list:
        """Set what the last action expects back."""
        last = actions[-1]
        self._expect = ANSWERS.get(type(last), ())
        if isinstance(last, Play) and last.keys:
            self._expect = (PromptDone, Dtmf)  # a key typed ahead during a prompt before a menu
        if isinstance(last, HangupCall):
            self.done = True
            self._expect = ()
        return actions

    def _setting(self, node: Node, name: str, default: Any) -> Any:
        return node.get(name, self.tree.setting(name, default))

    def _enter(self, node_id: str, prefix: list | None = None) -> list:
        prefix = list(prefix or [])
        self.steps += 1
        if self.steps > self.max_steps:
            # A caller pressing keys forever (or a flood) cannot keep a line busy without end.
            self._log(node_id, "step limit reached")
            self.outcome = "step_limit"
            return self._wait(prefix + [Play(("too_many_steps",), self.lang), HangupCall()])
        if node_id not in self.tree.nodes:
            # Only validated trees are activated; this guards a tree loaded some other way.
            log.error("ivr: route to missing node %r; ending the call", node_id)
            self._log(str(node_id), "missing node")
            self.outcome = "tree_error"
            return self._wait(prefix + [Play(("goodbye",), self.lang), HangupCall()])
        node = self.tree.node(node_id)
        self.node = node
        self.scratch = _Scratch()
        self._log(node_id, f"enter {node.kind}")
        return getattr(self, f"_enter_{node.kind}")(node, prefix)

    def _collect(self, prefix: list, items: tuple[str, ...], *, max_digits: int = 1, min_digits: int = 1,
                 timeout: float | None = None, terminators: str = "#") -> list:
        """Ask a question: the prompts just before it (an "invalid key", a read-back) become the start of its
        prompt, so a key typed during them answers it (type-ahead) instead of being dropped between the
        switch's applications."""
        node = self.node
        timeout = timeout if timeout is not None else float(self._setting(node, "timeout", 5)
                                                            if node.kind == "menu" else
                                                            self.tree.setting("menu_timeout", 5))
        prefix, ahead = _heard_before(prefix, self.lang)
        return self._wait(prefix + [Collect(ahead + tuple(items), self.lang, min_digits, max_digits, timeout,
                                            terminators)])

    def _max_retries(self) -> int:
        return int(self._setting(self.node, "max_retries", 3))

    def _fail_or_retry(self, prefix: list, retry: Callable[[list], list], reason: str) -> list:
        """Count a failed attempt: retry with ``retry`` or take the node's final route."""
        self.scratch.retries += 1
        self._log(self.node.id, reason, "")
        if self.scratch.retries >= self._max_retries():
            self._log(self.node.id, "retry limit reached")
            return self._enter(self.node.get("on_fail"), prefix)
        return retry(prefix)

    def _on_hangup(self) -> list:
        node_id = self.node.id if self.node else ""
        self._log(node_id, "caller hung up")
        self.done = True
        self._expect = ()
        self.outcome = self.outcome or "hangup"
        if self._pending_recording is not None:
            path, ms, kind, reason = self._pending_recording
            self._pending_recording = None
            # The caller said something useful and hung up before confirming: keep it for the data-entry
            # desk rather than lose a complaint. It is flagged as unconfirmed.
            self._log(node_id, "recording kept (not confirmed)")
            return [CreateTicket(kind, self.caller, path, ms, confirmed=False, lang=self.lang,
                                 destination=self.destination, reason=reason)]
        return []

    def _served(self, how: str) -> None:
        """The caller got what a node offers. Served exits, per node kind: record/mailbox - the recording
        became a ticket; voicemail - the message was filed; status_query - a status was told;
        consultation - a topic was played to its end; poll - every question answered; fax - received and
        filed; queue - a person answered; transfer - the duty number answered; satisfaction - a rating.
        Not served: hanging up in a menu, in a queue, while recording or before confirming (the
        unconfirmed recording is kept for the centre to check, with a call-back), a failed lookup, a
        hangup node reached after a failure. The first served exit counts."""
        if not self.served:
            self.served = how
            self._log(self.node.id if self.node else "", f"served: {how}")

    def _goto(self, target: str, prefix: list) -> list:
        if target == REPEAT:
            return self._enter(self.node.id, prefix)
        return self._enter(target, prefix)

    # ------------------------------------------------------------ prompt
    def _enter_prompt(self, node: Node, prefix: list) -> list:
        if node.get("enabled", True) is False:
            return self._enter(node.get("next"), prefix)
        if node.get("text_var"):
            text = self.variables.get(node.get("text_var"), "")
            if not text:
                return self._enter(node.get("next"), prefix)
            item = f"tts:{text}"
        else:
            item = node.get("prompt") or f"tts:{node.get('text')}"
        if node.get("must_hear") is True:
            keys = ""  # the administrator wants every caller to hear it: keys pressed now are dropped
        else:
            keys = ALL_KEYS if self._menu_after(node) else None
        return self._wait(prefix + [Play((item,), self.lang, keys)])

    def _menu_after(self, node: Node) -> str | None:
        """The menu this prompt leads to through other prompts (switched off or skippable), or None: a key
        typed during the prompt is that menu's key. A must-hear prompt on the way is never skipped."""
        seen = {node.id}
        target = node.get("next")
        while target in self.tree.nodes and target not in seen:
            seen.add(target)
            ahead = self.tree.nodes[target]
            if ahead.kind == "menu":
                return target
            if ahead.kind != "prompt" or (ahead.get("must_hear") is True and ahead.get("enabled", True) is not False):
                return None
            target = ahead.get("next")
        return None

    def _on_prompt(self, event) -> list:
        menu = self._menu_after(self.node) if isinstance(event, Dtmf) else None
        if menu is None:
            return self._enter(self.node.get("next"))
        # Type-ahead: the key that stopped the prompt is the menu's key (its prompt is not played).
        self._log(self.node.id, f"key during the prompt: to {menu}", event.digit)
        actions = self._enter(menu)
        if not isinstance(actions[-1], Collect) or self.node.id != menu:
            return actions  # the step limit (or a broken tree) ended the call instead
        return self._on_menu(DigitsCollected(event.digit))

    # ------------------------------------------------------------ menu
    def _enter_menu(self, node: Node, prefix: list) -> list:
        # One key, no terminator: "#" is a key like any other (invalid unless the menu names it).
        return self._collect(prefix, (node.get("prompt"),), terminators="")

    def _menu_retry(self, prefix: list) -> list:
        invalid = self._setting(self.node, "invalid_prompt", "invalid_key")
        return self._collect(prefix + [Play((invalid,), self.lang)], (self.node.get("prompt"),), terminators="")

    def _on_menu(self, event: DigitsCollected) -> list:
        node = self.node
        digits = event.digits
        if digits == "":
            if node.get("timeout_route"):
                self._log(node.id, "no key: timeout route")
                return self._enter(node.get("timeout_route"))
            return self._fail_or_retry([], self._menu_retry, "no key")
        self._log(node.id, "key", digits)
        target = node.keys.get(digits)
        if target is None:
            return self._fail_or_retry([], self._menu_retry, "invalid key")
        return self._goto(target, [])

    # ------------------------------------------------------------ language
    def _enter_language(self, node: Node, prefix: list) -> list:
        self.lang = node.get("lang")
        return self._enter(node.get("next"), prefix + [SetLanguage(self.lang)])

    # ------------------------------------------------------------ blacklist / time
    def _enter_blacklist(self, node: Node, prefix: list) -> list:
        return self._wait(prefix + [CheckBlacklist(self.caller)])

    def _on_blacklist(self, event: BlacklistChecked) -> list:
        self._log(self.node.id, "blocked" if event.blocked else "not blocked")
        if event.blocked:
            self.outcome = "blacklisted"
        return self._enter(self.node.get("blocked") if event.blocked else self.node.get("next"))

    def _enter_time(self, node: Node, prefix: list) -> list:
        hours = node.get("working_hours", self.tree.setting("working_hours", ["08:00", "20:00"]))
        weekends = bool(node.get("weekends_open", self.tree.setting("weekends_open", False)))
        office = self._setting(node, "office_hours", True) is not False
        rest = str(self._setting(node, "rest_days", ""))
        return self._wait(prefix + [CheckTime(str(hours[0]), str(hours[1]), weekends, office, rest)])

    def _on_time(self, event: TimeChecked) -> list:
        state = event.state if event.state in ("open", "closed", "holiday") else "closed"
        self._log(self.node.id, f"time: {state}")
        return self._enter(self.node.get(state))

    # ------------------------------------------------------------ fax
    def fax_node(self) -> str | None:
        """The node a detected fax tone leads to: settings.fax_node, else the tree's first fax node."""
        named = self.tree.setting("fax_node", "")
        if named in self.tree.nodes and self.tree.nodes[named].kind == "fax":
            return named
        return next((nid for nid, node in self.tree.nodes.items() if node.kind == "fax"), None)

    def _on_fax_tone(self) -> list:
        target = self.fax_node()
        if target is None or self._fax_jumped or (self.node is not None and self.node.kind == "fax") \
                or not self._expect:
            return []
        self._fax_jumped = True
        self._log(self.node.id if self.node else "", "fax tone detected")
        return self._enter(target)

    def _enter_fax(self, node: Node, prefix: list) -> list:
        self._fax_jumped = True
        if node.get("prompt"):
            prefix = prefix + [Play((node.get("prompt"),), self.lang)]
        return self._wait(prefix + [ReceiveFax()])

    def _on_fax(self, event: FaxDone) -> list:
        self._log(self.node.id, "fax received" if event.ok else "fax failed", event.ticket or "")
        if event.ok:
            if event.ticket:
                self.tickets.append(event.ticket)
            self._served("fax")
            self.outcome = "fax"
            return self._wait([HangupCall()])
        return self._enter(self.node.get("on_fail"), [Play(("fax_failed",), self.lang)])

    # ------------------------------------------------------------ satisfaction (人工转自动 after a call)
    def _enter_satisfaction(self, node: Node, prefix: list) -> list:
        return self._collect(prefix, (node.get("prompt"),), terminators="")

    def _satisfaction_retry(self, prefix: list) -> list:
        invalid = self._setting(self.node, "invalid_prompt", "invalid_key")
        return self._collect(prefix + [Play((invalid,), self.lang)], (self.node.get("prompt"),), terminators="")

    def _on_satisfaction(self, event: DigitsCollected) -> list:
        node, digits = self.node, event.digits
        rating = SATISFACTION_RATINGS.get(digits)
        if rating is None:
            return self._fail_or_retry([], self._satisfaction_retry, "no key" if digits == "" else "invalid key")
        self._log(node.id, f"satisfaction: {rating}", digits)
        self.answers["satisfaction"] = digits
        self.outcome = f"satisfaction:{rating}"
        self._served("satisfaction")
        return self._enter(node.get("next"), [SaveSatisfaction(self.caller, rating),
                                              Play(("satisfaction_thanks",), self.lang)])

    # ------------------------------------------------------------ queue / transfer / hangup
    def _enter_queue(self, node: Node, prefix: list) -> list:
        if node.get("prompt"):
            prefix = prefix + [Play((node.get("prompt"),), self.lang)]
        return self._wait(prefix + [ToQueue(node.get("skill"))])

    def _busy_node(self) -> str:
        """Where a caller goes when the queue an agent transferred them to is busy: the tree's all-busy node."""
        named = str(self.tree.setting("busy_node", "all_busy"))
        if named in self.tree.nodes:
            return named
        for node in self.tree.nodes.values():
            if node.kind == "queue" and node.get("on_busy") in self.tree.nodes:
                return node.get("on_busy")
        return self.tree.start

    def _enter_named_queue(self, queue: str) -> list:
        self.steps += 1
        self.node = Node(QUEUE_TRANSFER_NODE, "queue", {"queue": queue, "on_busy": self._busy_node()})
        self.scratch = _Scratch()
        self._log(QUEUE_TRANSFER_NODE, f"enter queue {queue} (transferred by an agent)")
        return self._wait([ToQueue("", queue=queue)])

    def _on_queue(self, event: QueueResult) -> list:
        self._log(self.node.id, f"queue: {event.outcome}")
        if event.outcome == "answered":
            self._served("queue")
            self.outcome = f"queue:{self.node.get('skill') or self.node.get('queue')}"
            return self._wait([HangupCall()])
        if event.outcome == "transferred":
            # The ACD sent the caller on (an agent's blind transfer, an overflow number): the channel has
            # left the socket application, so the IVR neither plays nor hangs up any more.
            self.outcome = "queue_transferred"
            self.done = True
            self._expect = ()
            return []
        return self._enter(self.node.get("on_busy"))

    def _transfer_number(self, node: Node) -> str:
        return str(node.get("number") or self.tree.setting(node.get("setting"), ""))

    def _enter_transfer(self, node: Node, prefix: list) -> list:
        if node.get("prompt"):
            prefix = prefix + [Play((node.get("prompt"),), self.lang)]
        return self._wait(prefix + [Transfer(self._transfer_number(node))])

    def _on_transfer(self, event: TransferResult) -> list:
        self._log(self.node.id, "transferred" if event.ok else "transfer failed")
        if event.ok:
            self._served("transfer")
            self.outcome = "transferred"
            return self._wait([HangupCall()])
        return self._enter(self.node.get("on_fail"), [Play(("transfer_failed",), self.lang)])

    def _enter_hangup(self, node: Node, prefix: list) -> list:
        self.outcome = self.outcome or "completed"
        return self._wait(prefix + [HangupCall()])

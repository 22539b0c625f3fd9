"""The pure IVR engine: ``IvrEngine(tree).feed(event) -> [actions]``.

No I/O here: the runner performs each action and feeds back what happened. The contract with the runner:
every ``feed`` returns a list whose actions are carried out in order; only the LAST one is answered with an
event (Play/Say -> PromptDone, Collect -> DigitsCollected, Record -> RecordDone, CheckBlacklist ->
BlacklistChecked, CheckTime -> TimeChecked, CreateTicket -> TicketCreated, QueryStatus -> StatusFound,
LoadPoll -> PollLoaded, ToQueue -> QueueResult, Transfer -> TransferResult). Actions before it
(SetLanguage, RecordPollAnswer, RequestMaterial, DiscardRecording, Play...) need no answer. ``Hangup`` ends
the call. After the caller hangs up, the runner still carries out the service actions it is given (a
useful recording is kept as a ticket) but no telephony ones.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ivr.tree import CITIZEN_STATUSES, REPEAT, Node, Tree

log = logging.getLogger(__name__)

MAX_TRACE = 500
# The trace line of a step whose result (a complaint, an answer) the back office could not store because the
# database stayed away: the call record lists such a caller for a call-back (recorder.hooks.apply_trace).
NOT_STORED = "not stored: database away"
QUEUE_TRANSFER_NODE = "@queue"  # trace name of the queue an agent transferred a caller into


# ---------------------------------------------------------------- events (runner -> engine)
@dataclass(frozen=True)
class CallStarted:
    """A call entered the IVR."""

    caller: str
    destination: str = ""
    uuid: str = ""
    lang: str | None = None
    start_node: str | None = None  # an agent handing a caller back to a node (人工转自动)
    variables: tuple[tuple[str, str], ...] = ()  # call-specific texts, e.g. an outbound call's message
    queue: str = ""  # an agent blind-transferred the caller into this ACD queue: go straight there


@dataclass(frozen=True)
class Dtmf:
    """One key pressed outside a collect (only used while the engine waits for digits)."""

    digit: str


@dataclass(frozen=True)
class DigitsCollected:
    """What a Collect gathered; "" when the caller pressed nothing before the timeout."""

    digits: str


@dataclass(frozen=True)
class PromptDone:
    """The last Play/Say finished."""


@dataclass(frozen=True)
class RecordDone:
    """A recording ended. terminator: "#", "silence", "max", "hangup" or "". ``voiced_ms``: how much of it
    carries sound (None when unknown): five seconds of silence is an empty recording."""

    path: str
    duration_ms: int
    terminator: str = "#"
    voiced_ms: int | None = None


@dataclass(frozen=True)
class Timeout:
    """The runner's wait for the last action ran out (or nothing was pressed during a Collect)."""


@dataclass(frozen=True)
class Hangup:
    """The caller hung up."""


@dataclass(frozen=True)
class BlacklistChecked:
    blocked: bool


@dataclass(frozen=True)
class TimeChecked:
    state: str  # "open", "closed" or "holiday"


@dataclass(frozen=True)
class TicketCreated:
    number: str | None  # None: the ticket could not be created


@dataclass(frozen=True)
class StatusFound:
    status: str | None  # one of tree.CITIZEN_STATUSES, None when nothing matches number+phone/PIN


@dataclass(frozen=True)
class PollQuestion:
    id: int
    choices: str  # keys that answer it, e.g. "123"
    text: str = ""  # spoken by TTS
    prompt: str = ""  # or a prompt key


@dataclass(frozen=True)
class PollLoaded:
    poll_id: int | None
    questions: tuple[PollQuestion, ...] = ()


@dataclass(frozen=True)
class QueueResult:
    outcome: str  # "answered", "busy", "no_answer", "failed", "transferred" (the channel left the app)


@dataclass(frozen=True)
class TransferResult:
    ok: bool


@dataclass(frozen=True)
class FaxToneDetected:
    """The switch heard a fax machine's calling tone (CNG) on the line: go to the fax node."""


@dataclass(frozen=True)
class FaxDone:
    """A ReceiveFax ended: ``ok`` when pages were received and filed, ``ticket`` the new ticket's number."""

    ok: bool
    ticket: str | None = None


# ---------------------------------------------------------------- actions (engine -> runner)
@dataclass(frozen=True)
class Play:
    """Play items in order: a prompt key, "file:<path>" or "tts:<text>" (rendered and cached at call time),
    "kb:<id>" (a knowledge-base item's text by TTS)."""

    items: tuple[str, ...]
    lang: str = "zh"
    # Keys that stop it: None leaves the switch's setting; "" none (a must-hear prompt); ALL_KEYS for a
    # prompt before a menu, answered with Dtmf(key) instead of PromptDone when a key stopped it.
    keys: str | None = None


ALL_KEYS = "0123456789*#"


@dataclass(frozen=True)
class Say:
    """Read digits one by one from the per-digit prompts."""

    digits: str
    lang: str = "zh"


@dataclass(frozen=True)
class Collect:
    """Play items and gather digits (play_and_get_digits with one try: retries are the engine's)."""

    items: tuple[str, ...]
    lang: str = "zh"
    min_digits: int = 1
    max_digits: int = 1
    timeout_s: float = 5.0
    terminators: str = "#"
    digit_timeout_s: float = 3.0


@dataclass(frozen=True)
class Record:
    """Beep and record until # (or silence, or max_seconds)."""

    kind: str
    max_seconds: int = 120
    silence_seconds: int = 5
    terminators: str = "#"
    beep: bool = True


@dataclass(frozen=True)
class DiscardRecording:
    path: str


@dataclass(frozen=True)
class CheckBlacklist:
    caller: str


@dataclass(frozen=True)
class CheckTime:
    """Is a person available now? The tree's settings (ivr.schedule); days from the case engine's calendar.
    The defaults are the rule of a tree saved before office_hours and rest_days existed."""

    open_from: str = "08:00"
    open_until: str = "20:00"
    weekends_open: bool = False
    office_hours: bool = True
    rest_days: str = ""


@dataclass(frozen=True)
class CreateTicket:
    kind: str
    caller: str
    recording_path: str
    duration_ms: int
    confirmed: bool = True
    lang: str = "zh"
    destination: str = ""
    reason: str = ""  # voicemail: "busy", "closed" or ""


@dataclass(frozen=True)
class QueryStatus:
    number: str
    caller: str
    pin: str | None = None


@dataclass(frozen=True)
class LoadPoll:
    pass


@dataclass(frozen=True)
class RecordPollAnswer:
    poll_id: int
    question_id: int
    answer: str
    caller: str


@dataclass(frozen=True)
class RequestMaterial:
    topic: str
    channel: str  # "sms", "email", "fax"
    caller: str
    address: str = ""


@dataclass(frozen=True)
class SaveAnswer:
    """A collect node with ``store`` got a valid answer (e.g. the satisfaction key of an outbound call)."""

    name: str
    value: str


@dataclass(frozen=True)
class ToQueue:
    skill: str
    queue: str = ""  # a named ACD queue (a caller an agent transferred into it) instead of a skill


@dataclass(frozen=True)
class Transfer:
    number: str


@dataclass(frozen=True)
class ReceiveFax:
    """Receive a fax on this call (recorder.fax), filed as a ticket; answered with FaxDone."""


@dataclass(frozen=True)
class SaveSatisfaction:
    """The caller rated the service (1 satisfied, 2 basic, 3 unsatisfied) after an agent handed them back."""

    caller: str
    rating: str


@dataclass(frozen=True)
class SetLanguage:
    lang: str


@dataclass(frozen=True)
class HangupCall:
    """End the call (named HangupCall so it does not clash with the Hangup event)."""

    cause: str = "NORMAL_CLEARING"


# Answers that each blocking action expects.
ANSWERS: dict[type, tuple[type, ...]] = {
    Play: (PromptDone,), Say: (PromptDone,), Collect: (DigitsCollected, Dtmf, Timeout),
    Record: (RecordDone, Timeout), CheckBlacklist: (BlacklistChecked,), CheckTime: (TimeChecked,),
    CreateTicket: (TicketCreated,), QueryStatus: (StatusFound,), LoadPoll: (PollLoaded,),
    ToQueue: (QueueResult,), Transfer: (TransferResult,), ReceiveFax: (FaxDone,),
}
SERVICE_ACTIONS = (CreateTicket, QueryStatus, LoadPoll, RecordPollAnswer, RequestMaterial, DiscardRecording,
                   CheckBlacklist, CheckTime, SaveAnswer, SaveSatisfaction)
SATISFACTION_RATINGS = {"1": "satisfied", "2": "basic", "3": "unsatisfied"}  # 满意 / 基本满意 / 不满意
STATUS_PROMPTS = {status: f"status_{status}" for status in CITIZEN_STATUSES}
# Prompts the engine plays itself (the tree names the others); every language must have them.
ENGINE_PROMPTS = (
    "invalid_key", "too_many_steps", "transfer_failed", "record_confirm", "record_too_short", "record_cancelled",
    "acceptance_number", "ticket_thanks", "ticket_failed", "message_saved", "query_enter_number",
    "query_you_entered", "query_confirm", "query_enter_pin", "query_no_match", "query_too_many", "status_is",
    *STATUS_PROMPTS.values(), "consult_menu", "consult_send_offer", "consult_fax_number", "consult_request_noted",
    "poll_none", "poll_intro", "poll_thanks", "fax_failed", "satisfaction_thanks",
    *(f"digit_{d}" for d in "0123456789"),
)


@dataclass
class TraceEntry:
    """One step of a call: when, which node, what happened, keys pressed."""

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


class IvrEngine:
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
        node = self.node
        timeout = timeout if timeout is not None else float(self._setting(node, "timeout", 5)
                                                            if node.kind == "menu" else
                                                            self.tree.setting("menu_timeout", 5))
        return self._wait(prefix + [Collect(items, self.lang, min_digits, max_digits, timeout, terminators)])

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

    # ------------------------------------------------------------ record / mailbox / voicemail
    def _record_action(self) -> Record:
        node = self.node
        return Record(node.get("ticket_type", "complaint"), int(node.get("max_seconds", 120)),
                      int(node.get("silence_seconds", 5)))

    def _enter_record(self, node: Node, prefix: list) -> list:
        self.scratch.step = "recording"
        items = (node.get("prompt"),) if node.get("prompt") else ()
        head = [Play(items, self.lang)] if items else []
        return self._wait(prefix + head + [self._record_action()])

    _enter_mailbox = _enter_record
    _enter_voicemail = _enter_record

    def _confirms(self) -> bool:
        return self.node.kind != "voicemail" and self.node.get("confirm", True) is not False

    def _ask_confirm(self, prefix: list) -> list:
        self.scratch.step = "confirm"
        return self._collect(prefix, ("record_confirm",))

    def _re_record(self, prefix: list) -> list:
        self.scratch.step = "recording"
        return self._wait(prefix + [Play(("record_too_short",), self.lang), self._record_action()])

    def _create_ticket(self, confirmed: bool) -> list:
        path, ms = self.scratch.data["recording"]
        self.scratch.step = "creating"
        self._pending_recording = None  # from here the runner creates it even if the caller hangs up
        return self._wait([CreateTicket(self.node.get("ticket_type", "complaint"), self.caller, path, ms,
                                        confirmed=confirmed, lang=self.lang, destination=self.destination,
                                        reason=self.node.get("reason", ""))])

    def _on_record(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "recording":
            if isinstance(event, Timeout):
                return self._fail_or_retry([], self._re_record, "recording timed out")
            min_ms = int(float(node.get("min_seconds", 2)) * 1000)
            heard = event.duration_ms if event.voiced_ms is None else event.voiced_ms
            useful = heard >= min_ms and bool(event.path)
            self._log(node.id, f"recorded {event.duration_ms} ms ({event.terminator or 'end'})")
            if event.terminator == "hangup":
                if useful:
                    self._pending_recording = (event.path, event.duration_ms, node.get("ticket_type", "complaint"),
                                            node.get("reason", ""))
                self._expect = ()
                return []
            if not useful:
                prefix = [DiscardRecording(event.path)] if event.path else []
                return self._fail_or_retry(prefix, self._re_record, "recording empty or too short")
            s.data["recording"] = (event.path, event.duration_ms)
            self._pending_recording = (event.path, event.duration_ms, node.get("ticket_type", "complaint"),
                                            node.get("reason", ""))
            if not self._confirms():
                return self._create_ticket(confirmed=True)
            return self._ask_confirm([])
        if s.step == "confirm":
            digits = event.digits
            self._log(node.id, "confirm menu", digits)
            if digits == "1":
                return self._create_ticket(confirmed=True)
            if digits == "2":
                return self._ask_confirm([Play((f"file:{s.data['recording'][0]}",), self.lang)])
            if digits == "3":
                self._pending_recording = None
                self._log(node.id, "recording cancelled")
                return self._enter(node.get("on_cancel"),
                                   [DiscardRecording(s.data["recording"][0]),
                                    Play(("record_cancelled",), self.lang)])
            # No answer or a wrong key, several times: keep the recording (flagged unconfirmed), do not lose it.
            s.retries += 1
            self._log(node.id, "no key" if digits == "" else "invalid key")
            if s.retries >= self._max_retries():
                return self._create_ticket(confirmed=False)
            invalid = self._setting(node, "invalid_prompt", "invalid_key")
            return self._ask_confirm([Play((invalid,), self.lang)] if digits else [])
        if s.step == "creating":
            self._pending_recording = None
            if not event.number:
                self._log(node.id, "ticket could not be created")
                return self._enter(node.get("on_fail"), [Play(("ticket_failed",), self.lang)])
            self.tickets.append(event.number)
            self._log(node.id, f"ticket {event.number}")
            self._served("voicemail" if node.kind == "voicemail" else "ticket")
            s.step = "told"
            if node.kind == "voicemail":
                return self._wait([Play(("message_saved",), self.lang)])
            return self._wait([Play(("acceptance_number",), self.lang), Say(event.number, self.lang),
                               Play(("ticket_thanks",), self.lang)])
        if s.step == "told":
            return self._enter(node.get("next"))
        return []

    _on_mailbox = _on_record
    _on_voicemail = _on_record

    # ------------------------------------------------------------ status query
    def _enter_status_query(self, node: Node, prefix: list) -> list:
        self.scratch.data["wrong"] = 0
        return self._ask_number(prefix)

    def _ask_number(self, prefix: list) -> list:
        self.scratch.step = "number"
        return self._collect(prefix, ("query_enter_number",), min_digits=1, max_digits=8,
                             timeout=float(self.node.get("entry_timeout", 10)))

    def _wrong(self, prefix: list, reason: str) -> list:
        """A wrong number/PIN: three of them end politely (or go to a person, the node's on_fail)."""
        s = self.scratch
        s.data["wrong"] += 1
        self._log(self.node.id, reason)
        if s.data["wrong"] >= int(self._setting(self.node, "max_retries", 3)):
            self._log(self.node.id, "too many wrong attempts")
            return self._enter(self.node.get("on_fail"), prefix + [Play(("query_too_many",), self.lang)])
        return self._ask_number(prefix)

    def _on_status_query(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "number":
            digits = event.digits.rstrip("#")
            self._log(node.id, "number entered", digits)
            if len(digits) != 8 or not digits.isdigit():
                return self._wrong([Play((self._setting(node, "invalid_prompt", "invalid_key"),), self.lang)],
                                   "not an 8-digit number")
            s.data["number"] = digits
            s.step = "confirm"
            s.retries = 0
            return self._collect([Play(("query_you_entered",), self.lang), Say(digits, self.lang)],
                                 ("query_confirm",))
        if s.step == "confirm":
            self._log(node.id, "confirm", event.digits)
            if event.digits == "1":
                s.step = "lookup"
                return self._wait([QueryStatus(s.data["number"], self.caller, None)])
            if event.digits == "2":
                return self._ask_number([])
            return self._fail_or_retry([], lambda p: self._collect(
                p + [Play(("invalid_key",), self.lang)], ("query_confirm",)), "invalid key")
        if s.step in ("lookup", "lookup_pin"):
            if event.status in CITIZEN_STATUSES:
                self._log(node.id, f"status {event.status}")
                self._served("status")
                s.step = "told"
                return self._wait([Play(("status_is", STATUS_PROMPTS[event.status]), self.lang)])
            if s.step == "lookup":
                # The phone number does not match (or there is no such case: the caller cannot tell which).
                s.step = "pin"
                return self._collect([], ("query_enter_pin",), min_digits=1, max_digits=8,
                                     timeout=float(node.get("entry_timeout", 10)))
            return self._wrong([Play(("query_no_match",), self.lang)], "no match")
        if s.step == "pin":
            pin = event.digits.rstrip("#")
            self._log(node.id, "pin entered", "*" * len(pin))
            if not pin.isdigit():
                return self._wrong([Play(("query_no_match",), self.lang)], "no PIN")
            s.step = "lookup_pin"
            return self._wait([QueryStatus(s.data["number"], self.caller, pin)])
        if s.step == "told":
            return self._enter(node.get("next"))
        return []

    # ------------------------------------------------------------ consultation
    def _topics(self) -> dict[str, Mapping[str, Any]]:
        return {t["key"]: t for t in self.node.get("topics", [])}

    def _enter_consultation(self, node: Node, prefix: list) -> list:
        return self._ask_topic(prefix)

    def _ask_topic(self, prefix: list) -> list:
        self.scratch.step = "topic"
        return self._collect(prefix, (self.node.get("prompt") or "consult_menu",))

    def _ask_send(self, prefix: list) -> list:
        self.scratch.step = "send"
        return self._collect(prefix, ("consult_send_offer",))

    def _on_consultation(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "topic":
            digits = event.digits
            self._log(node.id, "topic key", digits)
            if digits == "0":
                return self._enter(node.get("next"))
            if digits == "*":
                return self._ask_topic([])
            topic = self._topics().get(digits)
            if topic is None:
                why = "no key" if digits == "" else "invalid key"
                return self._fail_or_retry([], lambda p: self._ask_topic(
                    p + ([Play(("invalid_key",), self.lang)] if digits else [])), why)
            s.data["topic"] = topic
            if topic.get("prompt"):
                item = topic["prompt"]
            elif topic.get("kb_item"):
                item = f"kb:{topic['kb_item']}"
            else:
                item = f"tts:{topic['text']}"
            # The topic alone, answered by PromptDone: a caller who hangs up during it was not served,
            # one who heard it to the end was (whatever they do with the send offer).
            s.step = "playing"
            return self._wait([Play((item,), self.lang)])
        if s.step == "playing":
            self._log(node.id, "topic played")
            self._served("consultation")
            return self._ask_send([])
        if s.step == "send":
            digits = event.digits
            topic = s.data["topic"]
            title = str(topic.get("title") or topic.get("prompt") or topic.get("kb_item"))
            self._log(node.id, "send offer", digits)
            if digits in ("1", "2"):
                channel = "sms" if digits == "1" else "email"
                return self._ask_topic([RequestMaterial(title, channel, self.caller, self.caller if digits == "1"
                                                        else ""),
                                        Play(("consult_request_noted",), self.lang)])
            if digits == "3":
                s.step = "fax"
                return self._collect([], ("consult_fax_number",), min_digits=5, max_digits=20,
                                     timeout=float(node.get("entry_timeout", 10)))
            if digits in ("0", ""):
                return self._ask_topic([])
            return self._fail_or_retry([], lambda p: self._ask_send(p + [Play(("invalid_key",), self.lang)]),
                                       "invalid key")
        if s.step == "fax":
            number = event.digits.rstrip("#")
            self._log(node.id, "fax number", number)
            if not (number.isdigit() and 5 <= len(number) <= 20):
                return self._fail_or_retry([], lambda p: self._ask_send(p + [Play(("invalid_key",), self.lang)]),
                                           "invalid fax number")
            title = str(s.data["topic"].get("title") or s.data["topic"].get("prompt"))
            return self._ask_topic([RequestMaterial(title, "fax", self.caller, number),
                                    Play(("consult_request_noted",), self.lang)])
        return []

    # ------------------------------------------------------------ poll
    def _enter_poll(self, node: Node, prefix: list) -> list:
        self.scratch.step = "load"
        return self._wait(prefix + [LoadPoll()])

    def _ask_question(self, prefix: list) -> list:
        s = self.scratch
        question: PollQuestion = s.data["questions"][s.data["index"]]
        item = question.prompt or f"tts:{question.text}"
        s.step = "question"
        return self._collect(prefix, (item,))

    def _on_poll(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "load":
            if event.poll_id is None or not event.questions:
                self._log(node.id, "no active poll")
                s.step = "told"
                return self._wait([Play(("poll_none",), self.lang)])
            s.data.update(poll=event.poll_id, questions=event.questions, index=0)
            return self._ask_question([Play(("poll_intro",), self.lang)])
        if s.step == "question":
            question: PollQuestion = s.data["questions"][s.data["index"]]
            digits = event.digits
            self._log(node.id, f"question {question.id}", digits)
            if len(digits) != 1 or digits not in question.choices:
                why = "no key" if digits == "" else "invalid key"
                return self._fail_or_retry([], lambda p: self._ask_question(
                    p + [Play(("invalid_key",), self.lang)]), why)
            answer = RecordPollAnswer(s.data["poll"], question.id, digits, self.caller)
            s.data["index"] += 1
            s.retries = 0
            if s.data["index"] >= len(s.data["questions"]):
                self._served("poll")
                s.step = "told"
                return self._wait([answer, Play(("poll_thanks",), self.lang)])
            return self._ask_question([answer])
        if s.step == "told":
            return self._enter(node.get("next"))
        return []

    # ------------------------------------------------------------ collect (generic digits into the trace)
    def _enter_collect(self, node: Node, prefix: list) -> list:
        high = int(node.get("max_digits", 8))
        return self._collect(prefix, (node.get("prompt"),), min_digits=int(node.get("min_digits", 1)),
                             max_digits=high, timeout=float(node.get("entry_timeout", 10)),
                             terminators="" if high == 1 else "#")

    def _on_collect(self, event: DigitsCollected) -> list:
        node = self.node
        digits = event.digits.rstrip("#")
        low, high = int(node.get("min_digits", 1)), int(node.get("max_digits", 8))
        choices = str(node.get("choices", ""))
        valid = digits.isdigit() and low <= len(digits) <= high and (not choices or digits in choices)
        if not valid:
            why = "no key" if digits == "" else "invalid entry"
            return self._fail_or_retry([], lambda p: self._enter_collect(node, p + (
                [Play((self._setting(node, "invalid_prompt", "invalid_key"),), self.lang)] if digits else [])), why)
        store = node.get("store")
        self._log(node.id, f"collected into {store or 'digits'}", digits)
        if store:
            self.answers[store] = digits
            return self._enter(node.get("next"), [SaveAnswer(store, digits)])
        return self._enter(node.get("next"))

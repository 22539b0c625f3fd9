"""What the IVR engine and its runner say to each other: the events the runner feeds (what happened on the
call, what a service answered) and the actions the engine returns (what to play, collect, record, ask a
service). Frozen dataclasses, no logic; ``ANSWERS`` maps each blocking action to the events that answer it
(the contract is in ivr/engine.py's docstring). ``ivr.engine`` re-exports every name, so ``from ivr import
engine as e; e.Play(...)`` keeps working.
"""
from __future__ import annotations

from dataclasses import dataclass


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

    @property
    def prompts(self) -> tuple[str, ...]:
        """The per-digit prompt keys read, in order (anything but a digit is not read)."""
        return tuple(f"digit_{d}" for d in self.digits if d.isdigit())


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

"""Domain events: FreeSWITCH events translated into small frozen dataclasses the rest of the app uses.

FreeSWITCH event names (CHANNEL_ANSWER, BACKGROUND_JOB, CUSTOM sofia::register ...) appear only here and
in the rest of switch/; ivr/, acd/ and recorder/ see ChannelAnswered, JobDone, Registered ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping


@dataclass(frozen=True, kw_only=True)
class SwitchEvent:
    """Base: which FreeSWITCH it came from, the channel (Unique-ID, or ""), and every header."""

    server: str
    uuid: str = ""
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False, hash=False)


@dataclass(frozen=True, kw_only=True)
class ChannelCreated(SwitchEvent):
    """A channel exists (inbound call arriving or an originate leg)."""

    caller: str = ""
    destination: str = ""
    direction: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelAnswered(SwitchEvent):
    """The channel was answered."""


@dataclass(frozen=True, kw_only=True)
class ChannelBridged(SwitchEvent):
    """The channel was bridged to other_uuid."""

    other_uuid: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelUnbridged(SwitchEvent):
    """The bridge with other_uuid ended."""

    other_uuid: str = ""


@dataclass(frozen=True, kw_only=True)
class ChannelHangup(SwitchEvent):
    """The channel hung up; complete=True for the final record (with billing variables)."""

    cause: str = ""
    hangup_side: str = ""        # "caller" when the far end hung up, "switch" when we did, "" unknown
    complete: bool = False
    billsec: int = 0


@dataclass(frozen=True, kw_only=True)
class DtmfReceived(SwitchEvent):
    """The caller pressed a key."""

    digit: str = ""
    source: str = ""


@dataclass(frozen=True, kw_only=True)
class ExecuteComplete(SwitchEvent):
    """A dialplan application finished; application_uuid is the Event-UUID the sender chose."""

    application: str = ""
    application_uuid: str = ""
    response: str = ""


@dataclass(frozen=True, kw_only=True)
class PlaybackStarted(SwitchEvent):
    """A file started playing on the channel."""

    path: str = ""


@dataclass(frozen=True, kw_only=True)
class PlaybackStopped(SwitchEvent):
    """A file stopped playing (played out, interrupted by a key, or by uuid_break)."""

    path: str = ""
    status: str = ""


@dataclass(frozen=True, kw_only=True)
class RecordStarted(SwitchEvent):
    """Recording to path started."""

    path: str = ""


@dataclass(frozen=True, kw_only=True)
class RecordStopped(SwitchEvent):
    """Recording to path stopped; duration_ms from record_ms when FreeSWITCH reports it."""

    path: str = ""
    duration_ms: int | None = None
    completion_cause: str = ""


@dataclass(frozen=True, kw_only=True)
class JobDone(SwitchEvent):
    """A bgapi job finished: ok unless the body starts with -ERR."""

    job_uuid: str = ""
    ok: bool = False
    body: str = ""
    command: str = ""


@dataclass(frozen=True, kw_only=True)
class Registered(SwitchEvent):
    """A SIP phone (an agent's extension) registered."""

    user: str = ""
    domain: str = ""
    contact: str = ""


@dataclass(frozen=True, kw_only=True)
class Unregistered(SwitchEvent):
    """A SIP registration ended (unregister or expiry)."""

    user: str = ""
    domain: str = ""
    contact: str = ""


@dataclass(frozen=True, kw_only=True)
class FaxResult(SwitchEvent):
    """A fax was sent (direction "tx") or received ("rx")."""

    success: bool = False
    pages: int = 0
    result_text: str = ""
    path: str = ""
    direction: str = ""


def _int(value: str | None) -> int:
    try:
        return int(value) if value else 0
    except ValueError:
        return 0


def _hangup_side(h: Mapping[str, str]) -> str:
    disposition = h.get("variable_sip_hangup_disposition", "")
    if disposition.startswith("recv_"):
        return "caller"
    if disposition.startswith("send_"):
        return "switch"
    return ""


def _hangup(h, server, complete):
    return ChannelHangup(server=server, uuid=h.get("Unique-ID", ""), raw=h,
                         cause=h.get("Hangup-Cause", "") or h.get("variable_hangup_cause", ""),
                         hangup_side=_hangup_side(h), complete=complete, billsec=_int(h.get("variable_billsec")))


def _record_stop(h, server):
    ms = h.get("variable_record_ms")
    return RecordStopped(server=server, uuid=h.get("Unique-ID", ""), raw=h, path=h.get("Record-File-Path", ""),
                         duration_ms=int(ms) if ms and ms.isdigit() else None,
                         completion_cause=h.get("Record-Completion-Cause", ""))


def _job(h, server, body=""):
    body = body or h.get("_body", "")
    return JobDone(server=server, uuid="", raw=h, job_uuid=h.get("Job-UUID", ""),
                   ok=not body.startswith("-ERR"), body=body, command=h.get("Job-Command", ""))


def _registration(cls, h, server):
    return cls(server=server, uuid="", raw=h, user=h.get("from-user", "") or h.get("username", ""),
               domain=h.get("from-host", "") or h.get("domain", "") or h.get("realm", ""),
               contact=h.get("contact", ""))


def _fax(direction):
    def build(h, server):
        return FaxResult(server=server, uuid=h.get("Unique-ID", ""), raw=h,
                         success=h.get("fax-success", h.get("fax_success", "")) == "1",
                         pages=_int(h.get("fax-document-transferred-pages", h.get("fax_document_transferred_pages"))),
                         result_text=h.get("fax-result-text", h.get("fax_result_text", "")),
                         path=h.get("variable_fax_filename") or h.get("fax_filename") or h.get("fax-filename", ""),
                         direction=direction)
    return build


def _uuid(h):
    return h.get("Unique-ID", "")


_BY_NAME: dict[str, Callable[[Mapping[str, str], str], SwitchEvent]] = {
    "CHANNEL_CREATE": lambda h, s: ChannelCreated(
        server=s, uuid=_uuid(h), raw=h, caller=h.get("Caller-Caller-ID-Number", ""),
        destination=h.get("Caller-Destination-Number", ""), direction=h.get("Call-Direction", "")),
    "CHANNEL_ANSWER": lambda h, s: ChannelAnswered(server=s, uuid=_uuid(h), raw=h),
    "CHANNEL_BRIDGE": lambda h, s: ChannelBridged(
        server=s, uuid=_uuid(h), raw=h, other_uuid=h.get("Other-Leg-Unique-ID", "") or h.get("Bridge-B-Unique-ID", "")),
    "CHANNEL_UNBRIDGE": lambda h, s: ChannelUnbridged(
        server=s, uuid=_uuid(h), raw=h, other_uuid=h.get("Other-Leg-Unique-ID", "") or h.get("Bridge-B-Unique-ID", "")),
    "CHANNEL_HANGUP": lambda h, s: _hangup(h, s, False),
    "CHANNEL_HANGUP_COMPLETE": lambda h, s: _hangup(h, s, True),
    "DTMF": lambda h, s: DtmfReceived(server=s, uuid=_uuid(h), raw=h, digit=h.get("DTMF-Digit", ""),
                                      source=h.get("DTMF-Source", "")),
    "CHANNEL_EXECUTE_COMPLETE": lambda h, s: ExecuteComplete(
        server=s, uuid=_uuid(h), raw=h, application=h.get("Application", ""),
        application_uuid=h.get("Application-UUID", ""), response=h.get("Application-Response", "")),
    "PLAYBACK_START": lambda h, s: PlaybackStarted(server=s, uuid=_uuid(h), raw=h, path=h.get("Playback-File-Path", "")),
    "PLAYBACK_STOP": lambda h, s: PlaybackStopped(server=s, uuid=_uuid(h), raw=h, path=h.get("Playback-File-Path", ""),
                                                  status=h.get("Playback-Status", "")),
    "RECORD_START": lambda h, s: RecordStarted(server=s, uuid=_uuid(h), raw=h, path=h.get("Record-File-Path", "")),
    "RECORD_STOP": _record_stop,
    "BACKGROUND_JOB": _job,
}

_BY_SUBCLASS: dict[str, Callable[[Mapping[str, str], str], SwitchEvent]] = {
    "sofia::register": lambda h, s: _registration(Registered, h, s),
    "sofia::unregister": lambda h, s: _registration(Unregistered, h, s),
    "sofia::expire": lambda h, s: _registration(Unregistered, h, s),
    "spandsp::rxfaxresult": _fax("rx"),
    "spandsp::txfaxresult": _fax("tx"),
}

# Events to_domain can translate: everything else can be skipped without parsing it.
DOMAIN_EVENT_NAMES = frozenset(_BY_NAME) | {"CUSTOM"}

# Event names the outbound session subscribes to on top of `myevents` (which lacks them), and what an
# inbound connection subscribes to by default.  Kept here so FreeSWITCH names stay inside switch/.
OUTBOUND_EXTRA_EVENTS = ("PLAYBACK_START", "PLAYBACK_STOP", "RECORD_START", "RECORD_STOP", "DTMF",
                         "BACKGROUND_JOB", "CUSTOM", "spandsp::rxfaxresult", "spandsp::txfaxresult")
INBOUND_DEFAULT_EVENTS = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
                          "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "DTMF", "RECORD_START", "RECORD_STOP",
                          "BACKGROUND_JOB", "CUSTOM", "sofia::register", "sofia::unregister", "sofia::expire",
                          "spandsp::rxfaxresult", "spandsp::txfaxresult")


def to_domain(headers: Mapping[str, str], server: str, body: str = "") -> SwitchEvent | None:
    """Translate one event's headers (and body) into a domain event; None for events the app ignores."""
    name = headers.get("Event-Name", "")
    if name == "CUSTOM":
        build = _BY_SUBCLASS.get(headers.get("Event-Subclass", ""))
        return build(headers, server) if build else None
    if name == "BACKGROUND_JOB":
        return _job(headers, server, body)
    build = _BY_NAME.get(name)
    return build(headers, server) if build else None

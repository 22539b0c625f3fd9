"""Event subscription state of one ESL connection (inbound or outbound), as mod_event_socket keeps it."""
from __future__ import annotations

import logging
import re

from gevent.lock import Semaphore

from . import wire

log = logging.getLogger(__name__)

# The fixed list `myevents` subscribes to (mod_event_socket.c), filtered to the controlled channel. It has no
# CHANNEL_CALLSTATE: the captured outbound sockets never see one although each answer and hang-up fires it.
MYEVENTS = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING", "CHANNEL_PARK",
    "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
})

# Event names the real switch knows; `event plain NOPE` is accepted but delivers nothing.
KNOWN_EVENTS = MYEVENTS | frozenset({
    "CHANNEL_CALLSTATE", "CUSTOM", "CLONE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "API", "LOG", "INBOUND_CHAN", "OUTBOUND_CHAN",
    "STARTUP", "SHUTDOWN", "PUBLISH", "UNPUBLISH", "TALK", "NOTALK", "SESSION_CRASH", "MODULE_LOAD",
    "MODULE_UNLOAD", "DTMF", "MESSAGE", "PRESENCE_IN", "NOTIFY_IN", "PRESENCE_OUT", "PRESENCE_PROBE",
    "MESSAGE_WAITING", "MESSAGE_QUERY", "ROSTER", "CODEC", "BACKGROUND_JOB", "DETECTED_SPEECH",
    "DETECTED_TONE", "PRIVATE_COMMAND", "HEARTBEAT", "TRAP", "ADD_SCHEDULE", "DEL_SCHEDULE",
    "EXE_SCHEDULE", "RE_SCHEDULE", "RELOADXML", "NOTIFY", "PHONE_FEATURE", "PHONE_FEATURE_SUBSCRIBE",
    "SEND_MESSAGE", "RECV_MESSAGE", "REQUEST_PARAMS", "CHANNEL_DATA", "GENERAL", "COMMAND",
    "SESSION_HEARTBEAT", "CLIENT_DISCONNECTED", "SERVER_DISCONNECTED", "SEND_INFO", "RECV_INFO",
    "RECV_RTCP_MESSAGE", "SEND_RTCP_MESSAGE", "CALL_SECURE", "NAT", "RECORD_START", "RECORD_STOP",
    "PLAYBACK_START", "PLAYBACK_STOP", "CALL_UPDATE", "FAILURE", "SOCKET_DATA", "MEDIA_BUG_START",
    "MEDIA_BUG_STOP", "CONFERENCE_DATA_QUERY", "CONFERENCE_DATA", "CALL_SETUP_REQ", "CALL_SETUP_RESULT",
    "CALL_DETAIL", "DEVICE_STATE", "TEXT", "SHUTDOWN_REQUESTED", "ALL",
})


class Listener:
    """Format, subscriptions, filters and the write side of one connection."""

    def __init__(self, sock):
        self.sock = sock
        self.fmt = "plain"
        self.events: set[str] = set()
        self.all_events = False
        self.subclasses: set[str] = set()
        self.filters: list[tuple[str, str]] = []
        self._session_uuid: str | None = None   # set by myevents: only this channel's events
        self.registry = None                    # the switch, told when the scope changes
        self.closed = False
        self.keep_frames = True
        self.sent: list[bytes] = []             # every frame written, for tests and shape checks
        self.muted = False                      # a hung switch: nothing is written, the socket stays open
        self._lock = Semaphore()

    @property
    def session_uuid(self) -> str | None:
        return self._session_uuid

    @session_uuid.setter
    def session_uuid(self, value: str | None) -> None:
        old, self._session_uuid = self._session_uuid, value
        if self.registry is not None and old != value:
            self.registry._rescope(self, old, value)

    # -- writing -------------------------------------------------------------------------------------
    def send(self, data: bytes) -> bool:
        """Write one whole frame; False when the peer is gone."""
        if self.closed:
            return False
        if self.muted:
            return True
        with self._lock:
            try:
                self.sock.sendall(data)
            except OSError as exc:
                log.debug("fake switch: peer gone while sending: %s", exc)
                self.closed = True
                return False
        if self.keep_frames:
            self.sent.append(data)
        return True

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self.closed and self.sock is None:
            return
        self.closed = True
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.shutdown(2)
            except OSError:
                pass
            sock.close()

    # -- subscriptions -----------------------------------------------------------------------------
    @property
    def listening(self) -> bool:
        return self.all_events or bool(self.events) or bool(self.subclasses)

    def subscribe(self, words: list[str]) -> None:
        """Add event names; after CUSTOM every word is a subclass (`CUSTOM` alone adds none)."""
        custom = False
        for w in words:
            if custom:
                self.subclasses.add(w)
                continue
            up = w.upper()
            if up == "CUSTOM":
                custom = True
            elif up == "ALL":
                self.all_events = True
            elif up in KNOWN_EVENTS:
                self.events.add(up)
            elif "::" in w:
                # A subclass without CUSTOM before it is taken as a subclass, as the real switch does.
                self.subclasses.add(w)

    def nix(self, words: list[str]) -> None:
        """`nixevent`: drop names and subclasses."""
        custom = False
        for w in words:
            if custom:
                self.subclasses.discard(w)
                continue
            up = w.upper()
            if up == "CUSTOM":
                custom = True
            elif up == "ALL":
                self.all_events = False
                self.events.clear()
                self.subclasses.clear()
            else:
                self.events.discard(up)

    def clear(self) -> None:
        """`noevents`."""
        self.events.clear()
        self.subclasses.clear()
        self.all_events = False

    def wants(self, name: str, subclass: str | None, headers: list[tuple[str, str]],
              job_owner: str | None = None) -> bool:
        """Whether an event goes to this connection (subscription, myevents channel, filters)."""
        if name == "CUSTOM":
            if not (self.all_events or (subclass and subclass in self.subclasses)):
                return False
        elif not (self.all_events or name in self.events):
            return False
        if self.session_uuid:
            if name == "BACKGROUND_JOB":
                if job_owner != self.session_uuid:
                    return False
            else:
                uid = _header(headers, "Unique-ID")
                if uid != self.session_uuid:
                    return False
        if self.filters:
            return any(_filter_match(headers, k, v) for k, v in self.filters)
        return True

    def deliver(self, name: str, subclass: str | None, headers: list[tuple[str, str]],
                body: str | None, job_owner: str | None = None) -> None:
        if self.closed or not self.wants(name, subclass, headers, job_owner):
            return
        self.send(wire.event_frame(self.fmt, headers, body))


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k == name:
            return v
    return None


def _filter_match(headers: list[tuple[str, str]], key: str, value: str) -> bool:
    actual = _header(headers, key)
    if actual is None:
        return False
    if len(value) > 1 and value.startswith("/") and value.endswith("/"):
        return re.search(value[1:-1], actual) is not None
    return actual == value

"""Errors raised by the ESL layer; the rest of the app catches these, never greenswitch's own."""
from __future__ import annotations


class SwitchError(Exception):
    """Base class of everything switch/ raises."""


class ProtocolError(SwitchError):
    """The peer sent bytes that are not a valid ESL frame (framing, size cap, encoding)."""


class SwitchTimeout(SwitchError):
    """A wait for a reply or an event ran past its timeout."""


class SwitchDisconnected(SwitchError):
    """The event socket is not connected (or was lost while waiting)."""


class AuthenticationFailed(SwitchDisconnected):
    """FreeSWITCH refused the event-socket password (or the access list rejected us)."""


class CommandFailed(SwitchError):
    """FreeSWITCH answered a command with -ERR."""

    def __init__(self, command: str, reply: str):
        super().__init__(f"{command!r} failed: {reply}")
        self.command = command
        self.reply = reply


class CallHangup(SwitchError):
    """The call ended (caller hung up, channel gone, socket closed) while the call's greenlet waited."""

    def __init__(self, cause: str = "", uuid: str = ""):
        super().__init__(f"call {uuid or '?'} hung up ({cause or 'unknown cause'})")
        self.cause = cause
        self.uuid = uuid

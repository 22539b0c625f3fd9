"""The channel handle: ``conn.channel(uuid)`` (switch.inbound.InboundConnection.channel) gives one channel's
verbs (hold, kill, transfer, setvar, record, broadcast, bridge ...), each one command built by
switch.commands and sent over the inbound connection.
"""
from __future__ import annotations

from switch import commands


class Channel:
    """One channel on a switch, with verbs (as switchio gives its sessions): each sends one command built by
    switch.commands over ``conn`` (anything with ``api(command, timeout=)``) and returns FreeSWITCH's reply
    text ("+OK ..." / "-ERR ..."), so the caller decides what a refusal means. A bad uuid or argument raises
    commands.CommandError before anything is sent."""

    def __init__(self, conn, uuid: str, timeout: float = 10.0):
        self.conn = conn
        self.uuid = commands.uuid(uuid)
        self.timeout = timeout

    def _api(self, command: str) -> str:
        return self.conn.api(command, timeout=self.timeout)

    def hold(self) -> str:
        """Hold this leg: its partner hears music."""
        return self._api(commands.uuid_hold(self.uuid))

    def unhold(self) -> str:
        """Take this leg off hold."""
        return self._api(commands.uuid_hold(self.uuid, "off"))

    def kill(self, cause: str = "") -> str:
        """Hang up (with a hang-up cause, else FreeSWITCH's default)."""
        return self._api(commands.uuid_kill(self.uuid, cause))

    def transfer(self, destination: str, context: str = "default", *, leg: str = "", dialplan: str = "XML") -> str:
        """Transfer to a dialplan destination (see commands.uuid_transfer for leg and inline)."""
        return self._api(commands.uuid_transfer(self.uuid, destination, context, leg=leg, dialplan=dialplan))

    def setvar(self, variable: str, value: str | None = None) -> str:
        """Set (None: unset) a channel variable."""
        return self._api(commands.uuid_setvar(self.uuid, variable, value))

    def getvar(self, variable: str) -> str:
        """A channel variable's raw reply (its value, or _undef_)."""
        return self._api(commands.uuid_getvar(self.uuid, variable))

    def broadcast(self, application: str, argument: str, side: str = "aleg") -> str:
        """Run an application on this leg (aleg), its partner (bleg) or both."""
        return self._api(commands.uuid_broadcast(self.uuid, application, argument, side))

    def record_start(self, path: str) -> str:
        """Start recording to ``path`` (on the switch)."""
        return self._api(commands.uuid_record(self.uuid, "start", path))

    def record_stop(self, path: str) -> str:
        """Stop the recording to ``path``."""
        return self._api(commands.uuid_record(self.uuid, "stop", path))

    def bridge(self, other: str) -> str:
        """Bridge this channel to another existing one."""
        return self._api(commands.uuid_bridge(self.uuid, other))

    def stop_playback(self) -> str:
        """Stop what the channel plays, queued playbacks too (uuid_break all)."""
        return self._api(commands.uuid_break(self.uuid))

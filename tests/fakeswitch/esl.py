"""ESL command handling shared by inbound connections and outbound sockets, and the inbound session.

Reply texts are the real ones (mod_event_socket.c; the common ones are in the captures).
"""
from __future__ import annotations

import logging
import re

import gevent

from . import wire
from .channel import new_uuid
from .listener import Listener

log = logging.getLogger(__name__)

FORMATS = ("plain", "json", "xml")
_UUID_RE = re.compile(r"^[0-9a-fA-F-]{8,}$")


class EslConnection(Listener):
    """One ESL connection seen from the switch: reads commands, answers them, receives events."""

    owned_uuid: str | None = None   # the channel an outbound socket controls

    def __init__(self, switch, sock):
        super().__init__(sock)
        self.sw = switch
        self.reader = wire.CommandReader(sock)
        self.commands: list[wire.Command] = []   # every command received, for tests
        self.dropped = False
        self.greenlet = None

    def serve(self, where: str) -> None:
        """Read and answer commands until the client closes, the socket fails or a command is too large."""
        while not self.closed:
            try:
                cmd = self.reader.read()
            except wire.CommandTooLarge:
                log.info("fake switch: oversized command %s, closing", where)
                break
            except OSError:
                break
            if cmd is None:
                break
            self.commands.append(cmd)
            self.sw.changed.pulse()
            self._handle(cmd)

    # -- test hooks ----------------------------------------------------------------------------------
    def inject(self, data: bytes) -> bool:
        """Write raw bytes to the client (malformed frames, partial frames...)."""
        return self.send(data)

    def drop(self) -> None:
        """Close the TCP connection abruptly: no notice, as when the switch dies or the network breaks."""
        self.dropped = True
        self.close()

    # -- commands shared by both modes --------------------------------------------------------------
    def handle_common(self, cmd: wire.Command) -> bool:
        """Answer a command valid in both modes; False when the command is not one of them."""
        word, _, rest = cmd.line.partition(" ")
        lw = word.lower()
        rest = rest.strip()
        if lw == "api":
            body = self.sw.api(rest, owner=self.owned_uuid)
            self.send(wire.api_response(body))
        elif lw == "bgapi":
            job = cmd.header("Job-UUID") or new_uuid()
            self.send(wire.command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
            gevent.spawn(self.sw.run_job, rest, job, self.owned_uuid)
        elif lw == "event":
            self._event(rest)
        elif lw == "noevents":
            if self.listening:
                self.clear()
                self.send(wire.command_reply("+OK no longer listening for events"))
            else:
                self.send(wire.command_reply("-ERR not listening for events"))
        elif lw == "nixevent":
            self.nix(rest.split())
            self.send(wire.command_reply("+OK events nixed"))
        elif lw == "filter":
            self._filter(rest)
        elif lw == "divert_events":
            on = rest.lower() == "on"
            self.send(wire.command_reply("+OK events diverted" if on else "+OK events not diverted"))
        elif lw == "log":
            self.send(wire.command_reply(f"+OK log level {rest or 'debug'} [7]"))
        elif lw == "nolog":
            self.send(wire.command_reply("+OK no longer logging"))
        elif lw == "sendevent":
            self._sendevent(rest, cmd)
        elif lw == "exit":
            self.send(wire.command_reply("+OK bye"))
            self.send(wire.disconnect_notice(self.owned_uuid))
            self.close()
        else:
            return False
        return True

    def _event(self, rest: str) -> None:
        words = rest.split()
        events = []
        for w in words:
            if w.lower() in FORMATS:
                self.fmt = "json" if w.lower() == "json" else ("xml" if w.lower() == "xml" else "plain")
            else:
                events.append(w)
        if not events:
            self.send(wire.command_reply("-ERR no keywords supplied"))
            return
        self.subscribe(events)
        self.send(wire.command_reply(f"+OK event listener enabled {self.fmt}"))

    def _filter(self, rest: str) -> None:
        parts = rest.split(None, 2)
        if parts and parts[0].lower() == "delete":
            if len(parts) >= 2 and parts[1].lower() == "all":
                self.filters.clear()
                self.send(wire.command_reply("+OK filter deleted. [all]=[]"))
                return
            if len(parts) < 2:
                self.send(wire.command_reply("-ERR invalid syntax"))
                return
            key = parts[1]
            value = parts[2] if len(parts) > 2 else None
            self.filters = [(k, v) for k, v in self.filters if not (k == key and (value is None or v == value))]
            self.send(wire.command_reply(f"+OK filter deleted. [{key}]=[{value or ''}]"))
            return
        if len(parts) < 2:
            self.send(wire.command_reply("-ERR invalid syntax"))
            return
        key, value = parts[0], rest.split(None, 1)[1]
        self.filters.append((key, value))
        self.send(wire.command_reply(f"+OK filter added. [{key}]=[{value}]"))

    def _sendevent(self, rest: str, cmd: wire.Command) -> None:
        name = (rest.split() or ["CUSTOM"])[0].upper()
        headers = [(k, v) for k, v in cmd.headers if k.lower() != "content-length"]
        subclass = next((v for k, v in headers if k == "Event-Subclass"), None)
        ev_uuid = new_uuid()
        self.sw.emit(name, headers + [("Event-UUID", ev_uuid)], body=cmd.body or None, subclass=subclass,
                     origin=("mod_event_socket.c", "parse_command", "1802"))
        self.send(wire.command_reply(f"+OK {ev_uuid}"))

    def sendmsg(self, uuid: str | None, cmd: wire.Command) -> None:
        """sendmsg: execute / hangup / unicast on a channel. Always +OK once the channel was known."""
        ch = self.sw.channels.get(uuid) if uuid else None
        if ch is None and uuid and uuid in self.sw.gone:
            self.send(wire.command_reply("+OK"))
            return
        if ch is None:
            self.send(wire.command_reply(f"-ERR invalid session id [{uuid or ''}]"))
            return
        self.send(wire.command_reply("+OK"))
        call_command = (cmd.header("call-command") or "").lower()
        if ch.hung_up:
            return
        if call_command == "execute":
            app = cmd.header("execute-app-name") or ""
            arg = cmd.header("execute-app-arg")
            if arg is None:
                ctype = (cmd.header("content-type") or "").lower()
                arg = cmd.body if ctype.startswith("text/plain") or cmd.body else ""
            loops = cmd.header("loops")
            times = int(loops) if loops and loops.isdigit() else 1
            for n in range(max(1, times)):
                ch.runner.enqueue(app, arg, cmd.header("Event-UUID"), loop=(n + 1, max(1, times)))
        elif call_command == "hangup":
            self.sw.hangup(ch, cmd.header("hangup-cause") or "NORMAL_CLEARING", by="app")
        elif call_command in ("unicast", "nomedia", "xferext"):
            log.info("fake switch: sendmsg %s accepted and ignored", call_command)


class InboundSession(EslConnection):
    """A client connected to the fake's event socket (port `esl_port`)."""

    def __init__(self, switch, sock, address):
        super().__init__(switch, sock)
        self.address = address
        self.authed = False

    def run(self) -> None:
        """Greet, authenticate, then answer commands until either side closes."""
        self.send(wire.auth_request())
        try:
            self.serve(f"from {self.address}")
        finally:
            self.close()
            self.sw._inbound_closed(self)

    def _handle(self, cmd: wire.Command) -> None:
        word, _, rest = cmd.line.partition(" ")
        lw = word.lower()
        if not self.authed:
            if lw == "auth":
                if rest.strip() == self.sw.password:
                    self.authed = True
                    self.send(wire.command_reply("+OK accepted"))
                else:
                    self.send(wire.command_reply("-ERR invalid"))
                    self.send(wire.disconnect_notice(None))
                    self.close()
            elif lw == "exit":
                self.handle_common(cmd)
            else:
                self.send(wire.command_reply("-ERR command not found"))
            return
        if self.handle_common(cmd):
            return
        if lw == "sendmsg":
            self.sendmsg(rest.strip() or cmd.header("Unique-ID"), cmd)
        elif lw == "myevents":
            uid = None
            for w in rest.split():
                if w.lower() in FORMATS:
                    self.fmt = "json" if w.lower() == "json" else "plain"
                elif _UUID_RE.match(w):
                    uid = w
            if not uid:
                self.send(wire.command_reply("-ERR invalid uuid"))
                return
            self.session_uuid = uid
            self.subscribe(sorted(_myevents()))
            self.send(wire.command_reply("+OK Events Enabled"))
        elif lw in ("linger", "nolinger"):
            self.send(wire.command_reply("-ERR not controlling a session"))
        else:
            self.send(wire.command_reply("-ERR command not found"))


def _myevents():
    from .listener import MYEVENTS
    return MYEVENTS

"""The framed ESL connection both modes share: greenswitch's ESLProtocol with our reader, send and dispatch.

greenswitch.esl.ESLProtocol gives the shape (a reader greenlet, a FIFO of AsyncResults for command
replies, `connected`, `_lingering`, the auth-request event) and InboundESL/OutboundSession build on it.
We keep that shape and those classes, and replace the parts that fall short:

* its reader uses readline() and reads bodies without a cap, and dies on the first non-UTF-8 byte ->
  `receive_events` feeds switch.codec.FrameParser (bounded, byte-exact, ProtocolError on bad framing);
* its `send` waits for the reply forever, and two greenlets sending at once can interleave bytes ->
  `send` holds a lock while writing, and waits with a timeout.  Replies still match first-in-first-out
  (the event socket answers commands strictly in order); a waiter that timed out stays in the FIFO so
  the late reply is consumed by it instead of being handed to the next command;
* when the socket closes, its pending waiters are never woken (inbound) -> every waiter is failed with
  the error the mode chooses (SwitchDisconnected inbound, CallHangup outbound);
* its process_events greenlet polls the queue once a second -> subclasses dispatch events themselves.
"""
from __future__ import annotations

import logging
import socket as _stdsocket
import time

import gevent
import gevent.event
import gevent.lock
from gevent import monkey, socket

from switch.codec import (
    API_RESPONSE, AUTH_REQUEST, COMMAND_REPLY, DISCONNECT_NOTICE, EVENT_JSON, EVENT_PLAIN, LOG_DATA, RUDE_REJECTION,
    Frame, FrameParser, encode_command,
)
from switch.admission import REPLY_LATENCY
from switch.errors import ProtocolError, SwitchDisconnected, SwitchError, SwitchTimeout

log = logging.getLogger(__name__)

RECV_SIZE = 65536
# Commands whose reply never came stay queued (so a late reply is not handed to the next command); this
# many unanswered commands means the peer is stuck: drop the connection rather than queue forever.
MAX_UNANSWERED = 1000
# A reply slower than this is logged (the admission door reads them all).
SLOW_REPLY_SECONDS = 1.0


_RECV_BUFFERS: dict[int, memoryview] = {}
_thread_ident = monkey.get_original("_thread", "get_ident")


def _recv_buffer() -> memoryview:
    """The one receive buffer of this OS thread's readers. recv(65536) allocated 64 KiB from the C heap for
    every read and shrank it to what came: at 150 calls the heap's free and dirtied share grew with the
    reads (the minute's trim gave 8 MiB back and it came back within the minute). Every reader of a thread
    runs on its hub, and each one's bytes are copied into its parser before it can switch (issue 15
    item 11)."""
    ident = _thread_ident()
    view = _RECV_BUFFERS.get(ident)
    if view is None:
        view = _RECV_BUFFERS[ident] = memoryview(bytearray(RECV_SIZE))
    return view


class FramedProtocol:
    """Mixin placed before a greenswitch protocol class in the MRO; see the module docstring for why."""

    name: str = "esl"

    def _setup_framing(self, name: str, reply_timeout: float, max_header_bytes: int | None = None,
                       max_body_bytes: int | None = None) -> None:
        # events stay unparsed until a mode reads them: most of a call's events are only looked at by name
        kw = {"lazy_events": True}
        if max_header_bytes:
            kw["max_header_bytes"] = max_header_bytes
        if max_body_bytes:
            kw["max_body_bytes"] = max_body_bytes
        self._parser = FrameParser(**kw)
        self._send_lock = gevent.lock.Semaphore()
        self._reader: gevent.Greenlet | None = None
        self._closed_event = gevent.event.Event()
        self.name = name
        self.reply_timeout = reply_timeout
        self.close_reason = ""
        self.defects = 0
        self.rejection = ""

    # --- greenswitch overrides ------------------------------------------------------------------------

    def start_event_handlers(self) -> None:
        """Start only our reader; greenswitch's polling process_events greenlet is not used."""
        try:
            self.sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        except OSError:
            pass    # not a TCP socket (socketpair in tests): nothing to tune
        self._reader = gevent.spawn(self.receive_events)

    def receive_events(self) -> None:
        """Read the socket until it closes, feeding frames to handle_event; then fail every waiter."""
        reason = "closed by peer"
        try:
            while self._read_once():
                pass
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
            log.warning("%s: %s; closing the connection", self.name, exc)
        except OSError as exc:
            reason = f"socket error: {exc}"
        except gevent.GreenletExit:
            reason = "closed locally"
        finally:
            self._shutdown(reason)

    def _read_once(self) -> bool:
        """One read and its frames handled; False when the peer closed. A method of its own so that nothing
        of the last read (the last frame: a few KiB of an event) stays referenced from the reader's frame
        while it waits for the next (issue 15 item 11)."""
        view = _recv_buffer()
        size = self.sock.recv_into(view)
        if not size:
            self._parser.close()
            return False
        for frame in self._parser.feed(view[:size]):   # copied into the parser's buffer before any switch
            self.handle_event(frame)
        return True

    def handle_event(self, frame: Frame) -> None:
        """Dispatch one frame: replies to the FIFO, events and notices to the subclass hooks."""
        content_type = frame.content_type
        if content_type == COMMAND_REPLY or content_type == API_RESPONSE:
            # a reply with a defect is still delivered so the FIFO stays aligned with the commands
            if frame.defects:
                self._report_defect(frame)
            if self._commands_sent:
                self._commands_sent.pop(0).set(frame)
            else:
                log.warning("%s: reply without a pending command: %r", self.name, frame.reply_text or frame.body[:80])
            return
        if content_type == EVENT_PLAIN or content_type == EVENT_JSON:
            self.on_event_frame(frame)      # parsed (and a defect reported) only if the mode reads it
            return
        if frame.defects:
            self._report_defect(frame)
            return
        if content_type == AUTH_REQUEST:
            self._auth_request_event.set()
        elif content_type == DISCONNECT_NOTICE:
            if frame.headers.get("Content-Disposition") == "linger":
                self._lingering = True
            self.on_disconnect_notice(frame)
        elif content_type == RUDE_REJECTION:
            self.rejection = frame.body.strip() or "rejected"
            self._auth_request_event.set()
        elif content_type == LOG_DATA:
            pass    # we never ask for logs
        else:
            log.debug("%s: ignoring %s frame", self.name, content_type)

    def send(self, command: str, headers=None, body: str | None = None, timeout: float | None = None) -> Frame:
        """Write one command and wait (with a timeout) for its reply frame.

        Same name and first argument as greenswitch's ESLProtocol.send, so its OutboundSession.connect(),
        myevents() and linger() work unchanged on top of this.
        """
        data = encode_command(command, headers, body)
        if not self.connected:
            raise self._lost_error(self.close_reason or "not connected")
        timeout = self.reply_timeout if timeout is None else timeout
        if len(self._commands_sent) >= MAX_UNANSWERED:
            self._abort(f"{len(self._commands_sent)} commands without a reply")
            raise self._lost_error(self.close_reason)
        result = gevent.event.AsyncResult()
        started = time.monotonic()
        try:
            with gevent.Timeout(timeout):
                with self._send_lock:
                    self._commands_sent.append(result)
                    try:
                        self.sock.sendall(data)
                    except BaseException:
                        # a half-written command leaves the stream in an unknown state: drop the connection
                        self._abort(f"send of {command.split(' ', 1)[0]!r} failed")
                        raise
        except gevent.Timeout:
            raise SwitchTimeout(f"{self.name}: could not write {command.split(' ', 1)[0]!r} within {timeout}s") from None
        except OSError as exc:
            raise self._lost_error(f"socket error: {exc}") from None
        try:
            reply = result.get(timeout=timeout)
        except gevent.Timeout:
            raise SwitchTimeout(f"{self.name}: no reply to {command.split(' ', 1)[0]!r} within {timeout}s") from None
        if not command.startswith("api "):
            # How long the switch takes to answer (an `api` reply also waits for the command's own work):
            # switch.admission refuses new calls when it climbs.
            took = time.monotonic() - started
            REPLY_LATENCY.record(took)
            if took > SLOW_REPLY_SECONDS:
                log.info("%s: slow reply to %r: %.1f s", self.name, command.split("\n", 1)[0][:60], took)
        return reply

    def stop(self) -> None:
        """Close the socket and end the reader (greenswitch's stop() sends exit and joins without timeout)."""
        self._abort("closed locally")
        reader = self._reader
        if reader is not None and reader is not gevent.getcurrent():
            reader.join(timeout=5)
            if not reader.dead:
                reader.kill(block=True, timeout=1)

    # --- hooks for the modes ----------------------------------------------------------------------------

    def on_event_frame(self, frame: Frame) -> None:
        """An event arrived (runs in the reader greenlet: must not block); see parsed_event()."""

    def parsed_event(self, frame: Frame) -> dict[str, str] | None:
        """The frame's event headers, or None after reporting a malformed event."""
        event = frame.event
        if event is None:
            self._report_defect(frame)
        return event

    def on_disconnect_notice(self, frame: Frame) -> None:
        """A text/disconnect-notice arrived."""

    def on_closed(self, reason: str) -> None:
        """The socket is gone; every pending waiter has been failed."""

    def _lost_error(self, reason: str) -> SwitchError:
        return SwitchDisconnected(f"{self.name}: {reason}")

    # --- internals ------------------------------------------------------------------------------------------

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until the reader has finished; True when it has."""
        return self._closed_event.wait(timeout)

    def _report_defect(self, frame: Frame) -> None:
        self.defects += 1
        log.warning("%s: skipping a %s frame: %s", self.name, frame.content_type, "; ".join(frame.defects))

    def _abort(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        self.connected = False
        sock = getattr(self, "sock", None)
        if sock is None:
            return      # never connected
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass    # already closed
        try:
            sock.close()
        except OSError:
            pass

    def _shutdown(self, reason: str) -> None:
        if not self.close_reason:
            self.close_reason = reason
        self.connected = False
        self._run = False
        try:
            self.sock.close()
        except OSError:
            pass
        error = self._lost_error(self.close_reason)
        pending, self._commands_sent[:] = list(self._commands_sent), []
        for waiter in pending:
            if not waiter.ready():
                waiter.set_exception(error)
        self._auth_request_event.set()
        try:
            self.on_closed(self.close_reason)
        finally:
            self._closed_event.set()

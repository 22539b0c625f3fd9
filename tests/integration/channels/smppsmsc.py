"""An operator's SMSC for the Kannel tests that need what fakesmsc cannot do: delivery receipts that come
back later, over SMPP 3.4, the way an operator's do.

fakesmsc makes its delivery report inside bearerbox at the moment it hands the message over, so no report
is ever pending across a bearerbox restart. This SMSC answers Kannel's ``bind_transceiver`` and
``submit_sm`` (a message id per message), keeps the receipts until the test releases them
(``deliver_sm`` with ``esm_class`` 0x04 and the ``id:... stat:DELIVRD`` text of SMPP 3.4 appendix B), and
can go offline (close the link and refuse binds) so that Kannel queues what it is given.

Plain threads and sockets: run by the tests (not monkey-patched) and by bench/channels.py (where they are
greenlets).
"""
from __future__ import annotations

import datetime as dt
import socket
import struct
import threading
from dataclasses import dataclass

BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER = 0x01, 0x02, 0x09
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x04, 0x05, 0x06, 0x15
GENERIC_NACK, RESP = 0x80000000, 0x80000000
ESME_ROK, ESME_RINVCMDID, ESME_RBINDFAIL = 0x00, 0x03, 0x0D


@dataclass(frozen=True)
class Submitted:
    """One submit_sm as the SMSC got it."""

    message_id: str
    source: str
    destination: str
    data_coding: int
    esm_class: int
    short_message: bytes

    @property
    def text(self) -> str:
        """The text of a single-part message (UCS-2 for data_coding 8, else read as Latin-1)."""
        body = self.short_message
        if self.esm_class & 0x40:  # a user data header precedes the text
            body = body[1 + body[0]:]
        return body.decode("utf-16-be" if self.data_coding == 8 else "latin-1")


def _cstring(body: bytes, at: int) -> tuple[str, int]:
    end = body.index(b"\0", at)
    return body[at:end].decode("latin-1"), end + 1


def parse_sm(body: bytes) -> dict:
    """The mandatory fields of a submit_sm / deliver_sm body."""
    f = {}
    f["service_type"], at = _cstring(body, 0)
    f["source_ton"], f["source_npi"] = body[at], body[at + 1]
    f["source"], at = _cstring(body, at + 2)
    f["dest_ton"], f["dest_npi"] = body[at], body[at + 1]
    f["destination"], at = _cstring(body, at + 2)
    f["esm_class"], f["protocol_id"], f["priority"] = body[at], body[at + 1], body[at + 2]
    _schedule, at = _cstring(body, at + 3)
    _validity, at = _cstring(body, at)
    f["registered_delivery"], _replace, f["data_coding"], _default_id, length = body[at:at + 5]
    f["short_message"] = body[at + 5:at + 5 + length]
    return f


def deliver_sm_body(source: str, destination: str, esm_class: int, short_message: bytes,
                    data_coding: int = 0) -> bytes:
    return (b"\0" + bytes([1, 1]) + source.encode() + b"\0" + bytes([1, 1]) + destination.encode() + b"\0"
            + bytes([esm_class, 0, 0]) + b"\0" + b"\0" + bytes([0, 0, data_coding, 0, len(short_message)])
            + short_message)


def receipt_text(message_id: str, stat: str = "DELIVRD", when: dt.datetime | None = None) -> bytes:
    """The delivery receipt text of SMPP 3.4 appendix B."""
    stamp = (when or dt.datetime.now()).strftime("%y%m%d%H%M")
    err = "000" if stat == "DELIVRD" else "001"
    return (f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} submit date:{stamp} "
            f"done date:{stamp} stat:{stat} err:{err} text:").encode("ascii")


class SmppSmsc:
    """An SMPP 3.4 SMSC on a free 127.0.0.1 port. ``submitted`` lists every submit_sm in arrival order;
    ``release_receipts()`` sends the receipts held so far; ``go_offline()`` / ``go_online()``."""

    def __init__(self, system_id: str = "hotline", password: str = "smscpass", hold_receipts: bool = True):
        self.system_id, self.password, self.hold_receipts = system_id, password, hold_receipts
        self.submitted: list[Submitted] = []
        self.binds = 0
        self.acked_receipts = 0
        self._held: list[Submitted] = []
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._online = True
        self._stopped = False
        self._next_id = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]

    def start(self) -> "SmppSmsc":
        threading.Thread(target=self._accept, name="smpp-smsc", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopped = True
        self.go_offline()
        try:
            self._listener.close()
        except OSError:
            pass

    def go_offline(self) -> None:
        """Close every link and refuse new binds until ``go_online()``: Kannel keeps what it gets queued."""
        with self._lock:
            self._online = False
            links, self._links = self._links, []
        for link in links:
            link.close()

    def go_online(self) -> None:
        with self._lock:
            self._online = True

    @property
    def bound(self) -> int:
        with self._lock:
            return sum(1 for link in self._links if link.bound)

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    def release_receipts(self, stat: str = "DELIVRD") -> int:
        """Send a receipt for every message held so far over a bound link; returns how many."""
        with self._lock:
            links = [link for link in self._links if link.bound]
            if not links:
                raise RuntimeError("no bound link to send receipts on")
            held, self._held = self._held, []
        for item in held:
            links[0].deliver(deliver_sm_body(item.destination, item.source, 0x04, receipt_text(item.message_id, stat)))
        return len(held)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                sock, _address = self._listener.accept()
            except OSError:
                return
            link = _Link(self, sock)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=link.run, name="smpp-link", daemon=True).start()

    def _bind(self, system_id: str, password: str) -> int:
        with self._lock:
            if not self._online or system_id != self.system_id or password != self.password:
                return ESME_RBINDFAIL
            self.binds += 1
            return ESME_ROK

    def _submit(self, fields: dict) -> str:
        with self._lock:
            self._next_id += 1
            item = Submitted(f"smsc{self._next_id:08d}", fields["source"], fields["destination"],
                             fields["data_coding"], fields["esm_class"], fields["short_message"])
            self.submitted.append(item)
            if fields["registered_delivery"] & 0x03:
                self._held.append(item)
        if not self.hold_receipts and fields["registered_delivery"] & 0x03:
            self.release_receipts()
        return item.message_id


class _Link:
    """One ESME connection (Kannel's bearerbox)."""

    def __init__(self, smsc: SmppSmsc, sock: socket.socket):
        self.smsc, self.sock, self.bound = smsc, sock, False
        self._write = threading.Lock()
        self._sequence = 0x7000_0000

    def close(self) -> None:
        self.bound = False
        for step in (lambda: self.sock.shutdown(socket.SHUT_RDWR), self.sock.close):
            try:
                step()
            except OSError:
                pass

    def send_pdu(self, command: int, status: int, sequence: int, body: bytes = b"") -> None:
        with self._write:
            self.sock.sendall(struct.pack(">IIII", 16 + len(body), command, status, sequence) + body)

    def deliver(self, body: bytes) -> None:
        with self._write:
            self._sequence += 1
            sequence = self._sequence
        self.send_pdu(DELIVER_SM, ESME_ROK, sequence, body)

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def run(self) -> None:
        try:
            while True:
                length, command, _status, sequence = struct.unpack(">IIII", self._read(16))
                body = self._read(length - 16) if length > 16 else b""
                self._handle(command, sequence, body)
                if command == UNBIND:
                    break
        except (OSError, ConnectionError, struct.error, ValueError):
            pass
        finally:
            self.close()
            with self.smsc._lock:
                if self in self.smsc._links:
                    self.smsc._links.remove(self)

    def _handle(self, command: int, sequence: int, body: bytes) -> None:
        if command in (BIND_TRANSCEIVER, BIND_TRANSMITTER, BIND_RECEIVER):
            system_id, at = _cstring(body, 0)
            password, _at = _cstring(body, at)
            status = self.smsc._bind(system_id, password)
            self.send_pdu(command | RESP, status, sequence, b"smppsmsc\0")
            if status != ESME_ROK:
                raise ConnectionError("bind refused")
            self.bound = True
        elif command == SUBMIT_SM:
            if not self.bound:
                self.send_pdu(SUBMIT_SM | RESP, ESME_RBINDFAIL, sequence, b"\0")
                return
            message_id = self.smsc._submit(parse_sm(body))
            self.send_pdu(SUBMIT_SM | RESP, ESME_ROK, sequence, message_id.encode() + b"\0")
        elif command == ENQUIRE_LINK:
            self.send_pdu(ENQUIRE_LINK | RESP, ESME_ROK, sequence)
        elif command == UNBIND:
            self.send_pdu(UNBIND | RESP, ESME_ROK, sequence)
        elif command == DELIVER_SM | RESP:
            with self.smsc._lock:
                self.smsc.acked_receipts += 1
        elif command & RESP:
            pass  # answers to our own requests need nothing
        else:
            self.send_pdu(GENERIC_NACK, ESME_RINVCMDID, sequence)

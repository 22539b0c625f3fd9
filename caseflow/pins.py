"""The ticket's query PIN (6 digits, issue 11): drawn at creation, given to the citizen once (the entry desk's
message, the SMS and e-mail receipts) and stored only as a keyed hash, checked by the phone's status query and
the website's look-up.

A 6-digit PIN has a million values: a plain or unkeyed copy in a database dump opens every citizen's case, and
even a salted SHA-256 of one falls in a second. Stored as ``p1$salt$HMAC-SHA256`` under the product's secret
key (core.secret_codes, as the website's query codes), a dump alone tests nothing. Keys rotate as the query
codes' do: HOTLINE_SECRET_KEY_PREVIOUS still verifies, and a successful check hashes the PIN again under the
current key, as it does a PIN stored plain by a version before this one (exactly the ``PIN_LENGTH`` digits
generate_pin always drew; any other stored value without the hash's form opens nothing).

The process's keys are installed once by its composition root (``install``: hotline.product, webui.app), like
core.alarms' sink: every writer of a ticket (IVR, desks, SMS, e-mail, fax, chat, Open311) calls
``services.create_ticket``, and none of them holds the configuration. Receipts that carry the PIN are queued
inside the ticket's transaction by the writers the composition root connects (``connect_receipt``): the
history followers that run later cannot know the PIN any more.
"""
from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import peewee

from core import secret_codes

log = logging.getLogger(__name__)

PIN_LENGTH = 6         # digits of a PIN (caseflow.values.generate_pin), stored plain by a version before the hash
PIN_FORM = "p1"        # a stored PIN "p1$salt$hmac"; a version before this one stored the digits themselves
PIN_LABEL = "query-pin"  # the HMAC's domain: a query code's hash can never pass for a PIN's
_PLAIN = re.compile(rf"[0-9]{{{PIN_LENGTH}}}\Z")  # ASCII digits only: [0-9], never \d (full-width ones)
CONVERT_BATCH = 400    # plain PINs hashed per UPDATE by convert_plain (SQLite's bound-variable limit)


class PinKeyError(RuntimeError):
    """No key installed: a PIN can be neither stored nor checked (the process's start did not call install)."""


@dataclass(frozen=True)
class PinKeys:
    """The key PINs are hashed under (``current``: HOTLINE_SECRET_KEY) and the keys it was rotated from."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @classmethod
    def from_config(cls, config) -> "PinKeys":
        """The configuration's HOTLINE_SECRET_KEY and HOTLINE_SECRET_KEY_PREVIOUS (comma-separated)."""
        return cls(str(config.secret_key).encode(), secret_codes.previous_keys(config.extra))


Receipt = Callable[..., object]  # receipt(ticket, pin, clock): queue what carries the PIN to the citizen

_lock = threading.Lock()
_keys: Optional[PinKeys] = None
_receipts: list[Receipt] = []


def install(keys: Optional[PinKeys]) -> None:
    """Hash and check PINs under ``keys`` from now on in this process (None: none, a PIN is then refused)."""
    global _keys
    if keys is not None and not keys.current:
        raise PinKeyError("a ticket's PIN needs the product's secret key (HOTLINE_SECRET_KEY)")
    with _lock:
        _keys = keys


def installed() -> PinKeys:
    """The process's keys, or PinKeyError."""
    keys = _keys
    if keys is None:
        raise PinKeyError("no PIN key installed: the process's start calls caseflow.pins.install")
    return keys


def connect_receipt(receipt: Receipt) -> None:
    """Call ``receipt(ticket, pin, clock)`` inside each new ticket's transaction from now on (once per
    receipt, a second connect of the same one is ignored)."""
    with _lock:
        if receipt not in _receipts:
            _receipts.append(receipt)


def disconnect_receipt(receipt: Optional[Receipt] = None) -> None:
    """Stop calling ``receipt`` (every one when None)."""
    with _lock:
        if receipt is None:
            _receipts.clear()
        elif receipt in _receipts:
            _receipts.remove(receipt)


def receipts() -> tuple[Receipt, ...]:
    """The connected receipt writers."""
    return tuple(_receipts)


def digits(value) -> str:
    """Only the digits of a PIN as typed or keyed (spaces, dashes and a closing # dropped), at most 32."""
    return re.sub(r"[^0-9]", "", str(value or ""))[:32]


def hash_pin(pin: str, key: bytes, salt: Optional[str] = None) -> str:
    """p1$salt$HMAC-SHA256 of the PIN's digits under ``key``."""
    salt = salt or secret_codes.new_salt()
    return f"{PIN_FORM}${salt}${secret_codes.keyed_digest(key, PIN_LABEL, salt, digits(pin))}"


def is_plain(stored: str) -> bool:
    """A PIN stored by a version before the keyed hash: exactly PIN_LENGTH ASCII digits, the only PINs it ever
    drew (an empty, shorter, longer or otherwise malformed value is no PIN and opens nothing)."""
    return isinstance(stored, str) and bool(_PLAIN.match(stored))


def match(stored: str, typed, keys: PinKeys) -> Optional[str]:
    """How ``typed`` matches the stored PIN: "current" (hashed under the current key), "stale" (under a
    previous key, or stored plain: worth hashing again), or None. Compared in constant time."""
    typed = digits(typed)
    stored = stored or ""
    if is_plain(stored):  # compared in constant time, as the hashes are
        return "stale" if secret_codes.same(stored, typed) else None
    form, _, rest = stored.partition("$")
    salt = rest.partition("$")[0]
    if form != PIN_FORM or not salt or not typed:
        return None
    for n, key in enumerate((keys.current, *keys.previous)):
        if secret_codes.same(stored, hash_pin(typed, key, salt)):
            return "current" if n == 0 else "stale"
    return None


def verify(ticket, typed) -> bool:
    """True if ``typed`` is the PIN of ``ticket`` (None: False, after the same hashing time), under the
    process's installed keys (``installed``: the one source, for the phone's status query and the website's
    look-up alike, as for creation). A PIN stored plain or under a previous key is hashed again under the
    current key (one UPDATE, only if the row still holds what was read)."""
    from caseflow.models import Ticket

    keys = installed()
    if ticket is None or not ticket.query_pin:
        hash_pin("0", keys.current)  # an unknown number costs what a known one does
        return False
    found = match(ticket.query_pin, typed, keys)
    if found == "stale":
        fresh = hash_pin(typed, keys.current)
        Ticket.update(query_pin=fresh).where((Ticket.id == ticket.id)
                                             & (Ticket.query_pin == ticket.query_pin)).execute()
        ticket.query_pin = fresh
    return found is not None


def convert_plain(batch: Optional[int] = None) -> int:
    """Hash every PIN still stored plain under the installed current key (migration 0027, once); returns how
    many. Batches of ``batch`` rows (CONVERT_BATCH), each read and written (one UPDATE) in a transaction of its
    own: outside any (the migration), each is committed as it ends, so writers of the table wait for a batch at
    most and an interrupted run is taken up where it stopped (a hashed PIN is never selected again). The key is
    needed only when a plain PIN is found (PinKeyError without one installed)."""
    from caseflow.models import Ticket
    from core.db import database

    batch, done, last = batch or CONVERT_BATCH, 0, 0
    while True:
        with database.atomic():
            rows = list(Ticket.select(Ticket.id, Ticket.query_pin)
                        .where((Ticket.id > last) & (Ticket.query_pin != "") & ~Ticket.query_pin.contains("$"))
                        .order_by(Ticket.id).limit(batch).tuples())
            if not rows:
                return done
            plain = [(tid, pin) for tid, pin in rows if is_plain(pin)]
            if plain:
                key = installed().current
                hashed = peewee.Case(Ticket.id, [(tid, hash_pin(pin, key)) for tid, pin in plain])
                # not a row a look-up hashed meanwhile (caseflow.pins.verify): it holds its own hash already
                Ticket.update(query_pin=hashed).where(Ticket.id.in_([tid for tid, _ in plain])
                                                      & ~Ticket.query_pin.contains("$")).execute()
                done += len(plain)
        last = rows[-1][0]

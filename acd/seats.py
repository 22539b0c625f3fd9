"""Each seat's own SIP password (座席密码): made by the product, kept sealed, given to FreeSWITCH's directory and to
the signed-in agent's browser phone only, reset by an administrator.

What is stored: a random salt per seat (acd.models.SeatSecret). The password is HMAC-SHA256 of the seat and its
salt under a key derived from HOTLINE_SECRET_KEY, so the database (or a backup of it) alone gives no password
away, and nothing needs decrypting. A reset draws a new salt. Changing HOTLINE_SECRET_KEY changes every seat's
password: the product writes the directory again at its start, so switch and desks follow.

Which seats: those of the FreeSWITCH directory as the ACD administration knows them (HOTLINE_AGENT_EXTENSIONS,
else the shipped seat list: webui.acd_forms.directory_extensions), passed in as a callable.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from pathlib import Path
from typing import Callable, Iterable

from acd.models import SeatSecret, utcnow
from core.db import database

log = logging.getLogger(__name__)

# Letters and digits that cannot be mistaken for one another when typed into a desk phone's menu.
ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
LENGTH = 20  # about 115 bits
_KEY_LABEL = b"hotline seat passwords v1"


class UnknownSeat(LookupError):
    """The extension is not one of the directory's seats."""


class CredentialsNotWritten(RuntimeError):
    """A reset reached the directory (and the switches) but not Kamailio's credentials table (``subscribers``):
    there the old password still works until the table is written again (the product's next start, a reset).
    ``password`` is the new one, to show like a successful reset's."""

    def __init__(self, extension: str, password: str):
        super().__init__(f"seat {extension}: the new password is not in Kamailio's credentials table")
        self.extension, self.password = extension, password


def seat_key(secret_key: str) -> bytes:
    """The key seat passwords are derived under (apart from the session signing key by its label)."""
    if not secret_key:
        raise ValueError("seat passwords need the product's secret key (HOTLINE_SECRET_KEY)")
    return hmac.new(secret_key.encode("utf-8"), _KEY_LABEL, hashlib.sha256).digest()


def derive(key: bytes, extension: str, salt: str) -> str:
    """The password of ``extension`` with ``salt``: LENGTH characters of ALPHABET."""
    digest = hmac.new(key, f"{extension}\n{salt}".encode("utf-8"), hashlib.sha256).digest()
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(LENGTH):
        number, index = divmod(number, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


def password_for(secret_key: str, extension: str) -> str | None:
    """The seat's current password, or None when the product has not made one (yet)."""
    row = SeatSecret.get_or_none(SeatSecret.extension == extension)
    return None if row is None else derive(seat_key(secret_key), extension, row.salt)


class SeatPasswords:
    """The seats' passwords and the directory file FreeSWITCH reads (switch.directory).

    ``seats()`` -> the directory's extensions; ``folder``: where the file goes (Config.seats_dir), under
    ``file_name``; ``reload()`` asks the running switches to read it again (None: nobody to ask, a switch reads
    it at its start); ``subscribers({extension: password})``, when given, is handed every seat's password at
    each publish (Kamailio's credentials table, hotline.kamailio.subscriber_writer).
    """

    def __init__(self, secret_key: str, seats: Callable[[], Iterable[str]], folder: Path,
                 reload: Callable[[], object] | None = None, file_name: str = "seats.xml",
                 subscribers: Callable[[dict[str, str]], object] | None = None):
        self.key = seat_key(secret_key)
        self.seats = seats
        self.folder = Path(folder)
        self.reload = reload
        self.file_name = file_name
        self.subscribers = subscribers
        self.subscribers_behind = False  # the last hand-over to ``subscribers`` failed: catch_up() tries again

    def password(self, extension: str) -> str | None:
        """The seat's password, None when it has none."""
        row = SeatSecret.get_or_none(SeatSecret.extension == extension)
        return None if row is None else derive(self.key, extension, row.salt)

    def ensure(self) -> list[str]:
        """Give every seat without a password one; the extensions that got one."""
        with database.atomic():
            have = {row.extension for row in SeatSecret.select(SeatSecret.extension)}
            made = sorted(set(self.seats()) - have)
            for extension in made:
                SeatSecret.create(extension=extension, salt=secrets.token_hex(16))
        if made:
            log.info("seat passwords made for %d seats", len(made))
        return made

    def reset(self, extension: str, operator_no: str) -> str:
        """A new password for ``extension`` (UnknownSeat if it is not a seat), written into the directory and
        the switches told, then Kamailio's table (CredentialsNotWritten when that fails); returns it. The caller
        audits."""
        if extension not in set(self.seats()):
            raise UnknownSeat(extension)
        salt = secrets.token_hex(16)
        with database.atomic():
            updated = (SeatSecret.update(salt=salt, changed_at=utcnow(), changed_by=operator_no[:32])
                       .where(SeatSecret.extension == extension).execute())
            if not updated:
                SeatSecret.create(extension=extension, salt=salt, changed_by=operator_no[:32])
        password = derive(self.key, extension, salt)
        passwords, _ = self._write_directory()
        try:
            self._hand(passwords)
        except Exception as exc:
            raise CredentialsNotWritten(extension, password) from exc
        return password

    def rows(self) -> list[SeatSecret]:
        """The directory's seats that have a password, in extension order."""
        seats = set(self.seats())
        found = [row for row in SeatSecret.select() if row.extension in seats]
        return sorted(found, key=lambda row: (len(row.extension), row.extension))

    def publish(self) -> bool:
        """Write the directory file for every seat with a password and, when it changed, tell the switches; hand
        the passwords to ``subscribers`` (every time: its table may have been lost); True when the file changed.
        A failure of ``subscribers`` is raised after the file is written and the switches told."""
        passwords, changed = self._write_directory()
        self._hand(passwords)
        return changed

    def _write_directory(self) -> tuple[dict[str, str], bool]:
        from switch.directory import seats_xml, write_seats

        passwords = {row.extension: derive(self.key, row.extension, row.salt) for row in self.rows()}
        changed = write_seats(self.folder, seats_xml(passwords), self.file_name)
        if changed:
            log.info("seat directory written for %d seats: %s", len(passwords), self.folder)
            if self.reload is not None:
                self.reload()
        return passwords, changed

    def _hand(self, passwords: dict[str, str]) -> None:
        if self.subscribers is None:
            return
        try:
            self.subscribers(passwords)
        except Exception as exc:
            self.subscribers_behind = True
            log.error("seat passwords not written to Kamailio's credentials table: %s", exc)
            raise
        if self.subscribers_behind:
            log.info("seat passwords written to Kamailio's credentials table again")
        self.subscribers_behind = False

    def catch_up(self) -> bool:
        """Publish again when the last hand-over to ``subscribers`` failed (the product's job, every minute), so
        a reset or a start during an outage of Kamailio's database does not leave old passwords working there;
        True when it tried."""
        if not self.subscribers_behind:
            return False
        self.publish()
        return True

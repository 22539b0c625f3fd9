"""The seats' part of FreeSWITCH's user directory, rendered by the product: one ``<user>`` per seat with its own
SIP password, written to the folder freeswitch-conf includes in product mode (vars.xml hotline_seats_dir,
seats/product.xml), and ``reloadxml`` so a running switch reads it.

Why a rendered file rather than mod_xml_curl: freeswitch-conf loads no HTTP directory module (the list is
checked by tests/live/test_freeswitch_conf.py), and a file keeps the switch working while the app is down.
The file holds the passwords in clear because FreeSWITCH needs them (an ``a1-hash`` depends on the realm the
phone names, which the internal profile takes from the request: challenge-realm auto_from); it is written
with mode 0640 and replaced atomically, so a switch never reads half a file.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Mapping
from xml.sax.saxutils import quoteattr

log = logging.getLogger(__name__)

FILE_NAME = "seats.xml"
_EXTENSION_RE = re.compile(r"^[0-9]{2,16}\Z")
# What a rendered password may hold: FreeSWITCH's pre-processor would act on a dollar sign even in the value.
_PASSWORD_RE = re.compile(r"^[A-Za-z0-9._-]{12,64}\Z")


class DirectoryError(ValueError):
    """A seat or password that cannot go into the directory; the message names it."""


def seats_xml(passwords: Mapping[str, str]) -> str:
    """The ``<include>`` file of ``<user>`` blocks, in extension order, for ``{extension: password}``."""
    lines = ["<include>",
             "  <!-- Written by the hotline product (acd.seats, switch.directory): one user per seat with its own",
             "       password.  Do not edit: the product writes it again at its start and on a password reset. -->"]
    for extension in sorted(passwords, key=lambda e: (len(e), e)):
        password = passwords[extension]
        if not _EXTENSION_RE.match(extension):
            raise DirectoryError(f"seat {extension!r} is not an extension (2 to 16 digits)")
        if not _PASSWORD_RE.match(password or ""):
            raise DirectoryError(f"seat {extension}: a password of 12 to 64 letters, digits and . _ - is needed")
        lines += [f"  <user id={quoteattr(extension)}>",
                  f"    <params><param name=\"password\" value={quoteattr(password)}/></params>",
                  "    <variables>",
                  f"      <variable name=\"effective_caller_id_name\" value={quoteattr('Agent ' + extension)}/>",
                  f"      <variable name=\"effective_caller_id_number\" value={quoteattr(extension)}/>",
                  "    </variables>",
                  "  </user>"]
    lines.append("</include>")
    return "\n".join(lines) + "\n"


def write_seats(folder: Path, text: str, name: str = FILE_NAME) -> bool:
    """Put ``text`` into ``folder``/``name`` (made when missing) atomically; True when it changed."""
    folder = Path(folder)
    path = folder / name
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".seats-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


class DirectoryReloads:
    """Tells every switch of ``pool`` to read the directory again once after each change: the connected ones at
    once (``changed()``), the others when they connect (``on_connected`` callbacks), so a switch that was away
    while a seat's password was reset does not keep the old one."""

    def __init__(self, pool):
        self.pool = pool
        self.generation = 0
        self._seen: dict[str, int] = {}
        for conn in pool.all():
            conn.on_connected(lambda conn=conn: self._catch_up(conn))

    def changed(self) -> None:
        """The file changed: reload it where connected now."""
        self.generation += 1
        for conn in self.pool.all():
            self._catch_up(conn)

    def _catch_up(self, conn) -> None:
        from switch.inbound import CONNECTED

        generation = self.generation
        if conn.state != CONNECTED or self._seen.get(conn.name, 0) >= generation:
            return
        if not reload_directory([conn]):
            self._seen[conn.name] = generation


def reload_directory(connections: Iterable) -> list[str]:
    """Ask every connected switch to read its XML again (``reloadxml``); the names of those that could not,
    each logged. A switch that is down reads the file when it starts."""
    failed = []
    for conn in connections:
        try:
            reply = conn.api("reloadxml")
        except Exception as exc:    # a switch down or slow: it reads the file when it (re)starts
            log.warning("%s: reloadxml for the seats' passwords failed: %s", conn.name, exc)
            failed.append(conn.name)
            continue
        if not reply.startswith("+OK"):
            log.warning("%s: reloadxml for the seats' passwords answered %r", conn.name, reply.strip()[:200])
            failed.append(conn.name)
    return failed

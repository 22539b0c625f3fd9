"""Benchmark: message channels. E-mail part: ``--mails`` inbound mails (default 2,000) delivered into a real
Dovecot's Maildir and read over IMAP into tickets by channels.imap.MailReader + channels.mailflow, with the app
"crashing" half-way (after a mail became a ticket but before it was moved: the worst moment) and a new
reader taking over, as after a restart. Prints the rate and how many were lost or duplicated, on SQLite and
on PostgreSQL when reachable (``--pg ""`` skips it). Needs Debian dovecot-imapd; asserts nothing.

    .venv/bin/python bench/channels.py [--mails 2000] [--pg postgresql://postgres@127.0.0.1:5432/test | --pg ""]
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DEFAULT_PG, open_backend  # noqa: E402


class Crash(Exception):
    """The app stopping between handling a mail and filing it."""


def mail(n: int) -> bytes:
    subject = base64.b64encode(f"第{n}号诉求：路灯不亮".encode("gbk")).decode()
    return (f"From: c{n}@example.cn\r\nTo: 12345@hotline.example\r\nSubject: =?gbk?B?{subject}?=\r\n"
            f"Date: Wed, 4 Mar 2026 10:00:00 +0800\r\nMessage-ID: <bench{n}@example.cn>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() + \
        base64.encodebytes(f"东区一街道第{n}号路灯坏了三天。".encode("gbk"))


def run_email(backend: str, mails: int, pg_url: str) -> dict:
    from caseflow.models import Ticket
    from channels.imap import MailReader
    from channels.models import Message
    from channels.service import EmailChannel
    from tests.integration.channels.mailservers import Dovecot, make_settings

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        database, cleanup = open_backend(backend, folder, pg_url, "mail")
        dovecot = Dovecot(folder / "dovecot").start()
        try:
            for n in range(mails):
                dovecot.deliver(mail(n))
            settings = make_settings(folder, dovecot=dovecot, HOTLINE_EMAIL_FLOOD_PER_HOUR="100000")
            channel = EmailChannel(settings, folder / "att")
            filed = {"n": 0}

            class CrashingReader(MailReader):
                def _file(self, client, uid):
                    if filed["n"] == mails // 2:
                        raise Crash()
                    filed["n"] += 1
                    super()._file(client, uid)

            started = time.monotonic()
            first = CrashingReader(settings, channel.handle)
            try:
                first.run_once()
            except Crash:
                first.client.shutdown()  # the process is gone: no logout
            second = channel.reader()  # the restarted app
            second.run_once()
            second.close()
            elapsed = time.monotonic() - started
            with database.connection_context():
                tickets = Ticket.select().where(Ticket.channel == "email").count()
                numbers = {m.address for m in Message.select().where(Message.direction == "in")}
            return {"backend": backend, "mails": mails, "seconds": elapsed, "rate": mails / elapsed,
                    "tickets": tickets, "lost": mails - len(numbers), "duplicated": tickets - len(numbers)}
        finally:
            dovecot.stop()
            database.close()
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    from tests.integration.channels.mailservers import dovecot_missing

    if dovecot_missing():
        print(f"e-mail part skipped: {dovecot_missing()}")
        return
    backends = ["sqlite"]
    if args.pg:
        try:
            import psycopg2

            psycopg2.connect(args.pg, connect_timeout=3).close()
            backends.append("postgres")
        except Exception as error:  # noqa: BLE001 - no PostgreSQL here: SQLite only
            print(f"PostgreSQL not reachable ({str(error).strip()[:80]}): SQLite only")
    print(f"\nInbound e-mail through Dovecot (IMAP) to tickets, app crashed after {args.mails // 2} and restarted"
          f" ({dt.date.today()})")
    print(f"{'backend':<10}{'mails':>8}{'seconds':>10}{'mails/s':>10}{'tickets':>9}{'lost':>6}{'duplicated':>12}")
    for backend in backends:
        r = run_email(backend, args.mails, args.pg)
        print(f"{r['backend']:<10}{r['mails']:>8}{r['seconds']:>10.1f}{r['rate']:>10.1f}{r['tickets']:>9}"
              f"{r['lost']:>6}{r['duplicated']:>12}")


if __name__ == "__main__":
    main()

"""Benchmark: message channels. Prints two tables, asserts nothing.

SMS part: ``--sms`` tickets (default 10,000) created one after another by a "desk" thread while the SMS
round (channels.notices + channels.outbox, as channels.service runs it) queues each acceptance receipt and
hands it to a real Kannel (bearerbox + smsbox, Debian kannel) whose SMSC is fakesmsc (kannel-extras);
Kannel is stopped and started again when half the receipts have left. Delivery reports come back to the
app's /sms/dlr over HTTP. Prints per backend: receipts sent per second, lost and duplicated (counted at
fakesmsc), delivery reports missing, and p50/p99 from ticket creation to the receipt leaving (handed to
Kannel) and to its delivery report.

E-mail part: ``--mails`` inbound mails (default 2,000) delivered into a real Dovecot's Maildir and read over
IMAP into tickets by channels.imap.MailReader + channels.mailflow, with the app "crashing" half-way (after
a mail became a ticket but before it was moved: the worst moment) and a new reader taking over, as after a
restart. Prints the rate and how many were lost or duplicated.

Both run on SQLite and on PostgreSQL when reachable (``--pg ""`` skips it); ``--sms 0`` or ``--mails 0``
skips a part. Needs Debian kannel + kannel-extras and dovecot-imapd (a missing one skips its part, saying so).

    .venv/bin/python bench/channels.py [--sms 10000] [--rate 0] [--mails 2000] [--pg postgresql://postgres@127.0.0.1:5432/test | --pg ""]
        [--backend both|sqlite|postgres] [--keep DIR]

``--keep DIR`` keeps, per backend, Kannel's directory of the SMS part (configuration, bearerbox's and smsbox's
logs and access logs, the spools, fakesmsc's output) and ``dlr-requests.log`` (each report request: when it
reached the app, when the app answered, the status, id and type), to follow one message from sendsms to its
report.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # as run.py: the product's database layer waits in gevent, so threads must be greenlets

import argparse
import base64
import datetime as dt
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import peewee  # noqa: E402

from bench.common import DEFAULT_PG, available_backends, open_backend, pct  # noqa: E402

SMS_SECRET = "bench-sms-secret-0123456789"


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

            started, cpu_started = time.monotonic(), time.process_time()
            first = CrashingReader(settings, channel.handle)
            try:
                first.run_once()
            except Crash:
                first.client.shutdown()  # the process is gone: no logout
            second = channel.reader()  # the restarted app
            second.run_once()
            second.close()
            elapsed, cpu_used = time.monotonic() - started, time.process_time() - cpu_started
            load = os.getloadavg()[0]
            with database.connection_context():
                tickets = Ticket.select().where(Ticket.channel == "email").count()
                numbers = {m.address for m in Message.select().where(Message.direction == "in")}
            return {"backend": backend, "mails": mails, "seconds": elapsed, "rate": mails / elapsed,
                    "tickets": tickets, "lost": mails - len(numbers), "duplicated": tickets - len(numbers),
                    "load": load, "cpu_ms": cpu_used * 1000 / mails}
        finally:
            dovecot.stop()
            database.close()
            cleanup()


def run_sms(backend: str, count: int, pg_url: str, rate: float = 0.0, drain_timeout: float = 600.0,
            pool: int = 8, limit: float = 200.0, keep: Optional[Path] = None) -> dict:
    """``count`` tickets, their receipts through a real Kannel + fakesmsc restarted half-way (see the module
    docstring); returns the figures of one row of the SMS table. ``keep``: a folder that gets Kannel's
    directory (logs, spools, fakesmsc's output) and ``dlr-requests.log`` (every report request with the app's
    answer) after the run, to trace a missing report."""
    import shutil
    import threading
    from urllib.parse import parse_qs

    from caseflow import services
    from caseflow.models import Ticket
    from channels import kannel, notices
    from channels.models import Message
    from channels.outbox import Outbox
    from channels.settings import SmsSettings
    from core.clock import Clock
    from core.config import load_config
    from tests.integration.channels.conftest import fakesmsc_messages
    from webui.app import Services, create_app
    from webui.server import HttpServer

    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        database, cleanup = open_backend(backend, folder, pg_url, "sms")
        config = load_config({"database_url": str(database.database), "mode": "test", "load_demo": False,
                              "var_dir": str(folder / "var"), "secret_key": "b" * 40,
                              "HOTLINE_SMS_SECRET": SMS_SECRET, "HOTLINE_SMS_DAILY_CAP": "0",
                              "HOTLINE_SMS_QUIET_HOURS": "off", "HOTLINE_SMS_CONCURRENCY": str(pool),
                              "HOTLINE_SMS_RATE": str(int(limit))})
        settings = SmsSettings.from_config(config)
        lent = {"sms_settings": settings} if "sms_settings" in Services.__dataclass_fields__ else \
            {"extra": {"sms_settings": settings}}  # the typed field, or the older extra mapping
        app = create_app(config, Services(clock=Clock(config.tz), **lent))
        # As the product's start does: each ticket's receipt is queued with the ticket (caseflow.pins keeps only
        # the PIN's hash, so the history scan below no longer queues receipts).
        from channels import receipts
        receipts.connect(config, sms_settings=settings)
        reports: dict[int, float] = {}  # message id -> when its 'delivered' report reached the app
        requests: list[str] = []  # with ``keep``: every report request and the app's answer

        def wsgi(environ, start_response):
            if environ.get("PATH_INFO") != "/sms/dlr":
                return app(environ, start_response)
            query = parse_qs(environ.get("QUERY_STRING", ""))
            if query.get("type") == ["1"] and query.get("id", [""])[0].isdigit():
                reports.setdefault(int(query["id"][0]), time.time())
            if keep is None:
                return app(environ, start_response)

            arrived = time.time()

            def answer(status, headers, *rest):
                requests.append(f"{arrived:.3f} {time.time():.3f} {status.split()[0]} id={query.get('id', [''])[0]} "
                                f"type={query.get('type', [''])[0]}")
                return start_response(status, headers, *rest)
            return app(environ, answer)

        # Served as the product serves (webui.server on gevent, a greenlet and a connection per request);
        # smsbox calls it with at most max-pending-requests reports at once (kannel-conf).
        server = HttpServer(("127.0.0.1", 0), wsgi)
        server.start()
        base = f"http://127.0.0.1:{server.server_port}"
        ks = kannel.KannelSettings.free_ports(inbound_url=f"{base}/sms/inbound", secret=SMS_SECRET)
        runner = kannel.KannelRunner(ks, folder / "kannel").start()
        clock = Clock(config.tz)
        created, paced = threading.Event(), threading.Event()  # paced is never set: a timed wait
        try:
            with database.connection_context():
                notices.start_cursor()
            client = kannel.KannelClient(ks.sendsms_url, ks.sendsms_user, ks.sendsms_password,
                                         dlr_url=f"{base}/sms/dlr?secret={SMS_SECRET}", timeout=10)
            box = Outbox(client.send, settings, clock=clock)

            conflicts = {"desk": 0, "round": 0}  # SQLite: a transaction refused on a stale snapshot, run again

            def desk():
                with database.connection_context():
                    n = 0
                    while n < count:
                        if rate:  # paced: the n-th ticket is due at n / rate seconds
                            pause = started + n / rate - time.monotonic()
                            if pause > 0:
                                paced.wait(pause)
                        try:
                            services.create_ticket(f"第{n}号：小区路灯不亮", citizen_phone=f"139{n:08d}",
                                                   actor_label="bench", clock=clock)
                            n += 1
                        except peewee.OperationalError:
                            conflicts["desk"] += 1
                created.set()

            started, cpu_started = time.monotonic(), time.process_time()
            threading.Thread(target=desk, daemon=True).start()
            restarted, down_rounds, restart_at = False, 0, None
            with database.connection_context():
                while True:
                    try:
                        notices.scan_history(settings, clock)
                        counts = box.run_once()
                    except peewee.OperationalError:  # as channels.service: the round fails, the next one runs
                        conflicts["round"] += 1
                        continue
                    left = Message.select().where((Message.purpose == "receipt")
                                                  & Message.status.in_(("queued", "sending"))).count()
                    sent = Message.select().where((Message.purpose == "receipt")
                                                  & Message.status.in_(("sent", "delivered"))).count()
                    if not restarted and sent >= count // 2:
                        restart_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                        runner.stop()  # Kannel goes away (once fakesmsc has read what it holds) with more coming
                        down_rounds = box.run_once()["retry"]
                        runner.start()
                        restarted = True
                    # Every receipt queued and none left to send (a receipt failed for want of Kannel's answer
                    # is counted as failed, not waited for).
                    if created.is_set() and left == 0 and \
                            Message.select().where(Message.purpose == "receipt").count() >= count:
                        break
                    if not counts["sent"]:
                        # Nothing was due: let the desk and the backoff move on. A timed wait on ``paced`` (never
                        # set): ``created`` is set once the desk is done, and its wait then returns at once
                        # without yielding, so this loop spun and the web server never ran.
                        paced.wait(0.05)
                sending_done, cpu_used = time.monotonic(), time.process_time() - cpu_started
                load = os.getloadavg()[0]
                drain_until = time.monotonic() + drain_timeout
                seen, quiet_since = -1, time.monotonic()
                # Until every report is in, or none came for 30 s (a report Kannel lost stays missing).
                while time.monotonic() < drain_until and len(reports) < count \
                        and time.monotonic() - quiet_since < 30:
                    if len(reports) != seen:
                        seen, quiet_since = len(reports), time.monotonic()
                    # The reports come from Kannel's process: nothing to wait on here. Not ``created.wait``:
                    # set by now, it returned at once without yielding to the web server, which then read no
                    # report until this loop gave up (the 1-3 reports "missing" on SQLite, sent last).
                    paced.wait(0.2)
            # Counted once Kannel has stopped: stopping waits until fakesmsc has printed every message bearerbox
            # handed it. Read before, a receipt fakesmsc (another process, behind on a loaded machine) had not
            # printed yet counted as lost although its 'delivered' report was in (bearerbox's fake SMSC reports
            # at hand-over): the 5 and 15 "lost" of the PostgreSQL runs, which end as soon as the last report is.
            runner.stop()
            got = fakesmsc_messages(runner.received())
            elapsed = sending_done - started
            with database.connection_context():
                rows = list(Message.select(Message.id, Message.address, Message.sent_at, Ticket.created_at)
                            .join(Ticket, on=(Message.ticket == Ticket.id))
                            .where(Message.purpose == "receipt").tuples())
                failed = Message.select().where((Message.purpose == "receipt") & (Message.status == "failed")).count()
            epoch = dt.timezone.utc
            to_sent = [(sent_at - made).total_seconds() * 1000 for _id, _a, sent_at, made in rows if sent_at]
            # When the messages whose report never came left, from the restart: where a report goes missing.
            no_report = sorted(round((sent_at - restart_at).total_seconds(), 1) for mid, _a, sent_at, _m in rows
                               if mid not in reports and sent_at and restart_at)
            to_dlr = [(reports[mid] - made.replace(tzinfo=epoch).timestamp()) * 1000
                      for mid, _a, _s, made in rows if mid in reports]
            receipts = [to for to, _text in got if to.startswith("139")]
            return {"backend": backend, "sms": count, "seconds": elapsed, "rate": count / elapsed,
                    "lost": count - len(set(receipts)), "duplicated": len(receipts) - len(set(receipts)),
                    "failed": failed, "no_dlr": count - len(reports), "no_dlr_at": no_report[:10], "down_rounds": down_rounds,
                    "conflicts": conflicts["desk"] + conflicts["round"], "load": load,
                    "cpu_ms": cpu_used * 1000 / count,
                    "p50_sent": pct(to_sent, 50), "p99_sent": pct(to_sent, 99),
                    "p50_dlr": pct(to_dlr, 50), "p99_dlr": pct(to_dlr, 99)}
        finally:
            runner.stop()
            server.stop(timeout=5)
            if keep is not None:
                shutil.copytree(folder / "kannel", keep / f"kannel-{backend}", dirs_exist_ok=True)
                (keep / f"kannel-{backend}" / "dlr-requests.log").write_text("\n".join(requests) + "\n")
            database.close()
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=10000)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="tickets created per second in the SMS part (0: as fast as the desk can)")
    parser.add_argument("--pool", type=int, default=8, help="HOTLINE_SMS_CONCURRENCY: sendsms calls at once")
    parser.add_argument("--sms-rate", type=int, default=200, help="HOTLINE_SMS_RATE: messages a second at most")
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--pg", default=DEFAULT_PG)
    parser.add_argument("--backend", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument("--keep", type=Path, default=None,
                        help="SMS part: copy Kannel's directory and a log of the report requests here")
    args = parser.parse_args()
    from channels.kannel import binaries_missing
    from tests.integration.channels.mailservers import dovecot_missing

    backends = [b for b in available_backends(args.pg) if args.backend in ("both", b)]
    if args.sms and binaries_missing():
        print(f"SMS part skipped: Kannel not installed ({', '.join(binaries_missing())} missing)")
    elif args.sms:
        pace = f"{args.rate:g} tickets/s" if args.rate else "tickets as fast as the desk makes them"
        print(f"\nSMS receipts through Kannel + fakesmsc, Kannel restarted half-way, {pace} ({dt.date.today()}); "
              f"the outbox sends {args.pool} at once, at most {args.sms_rate}/s; latencies in s from ticket creation")
        print("issue 12 aim: 10,000 SMS, 0 lost, 0 duplicated, every receipt out within 3 minutes (180 s), "
              "aim seconds")
        print(f"{'backend':<10}{'sms':>7}{'seconds':>9}{'sms/s':>8}{'lost':>6}{'dup':>5}{'failed':>8}"
              f"{'no DLR':>8}{'p50 sent':>10}{'p99 sent':>10}{'p50 DLR':>10}{'p99 DLR':>10}{'conflicts':>11}"
              f"{'aim met':>9}{'cpu ms/sms':>12}{'load':>6}")
        print("(cpu ms/sms: this process's CPU time while sending, desk included, per SMS; load: the machine's "
              "1-minute load average when sending ended)")
        for backend in backends:
            r = run_sms(backend, args.sms, args.pg, rate=args.rate, pool=args.pool, limit=args.sms_rate,
                        keep=args.keep)
            met = r["sms"] >= 10000 and r["lost"] == 0 and r["duplicated"] == 0 and r["p99_sent"] <= 180_000
            print(f"{r['backend']:<10}{r['sms']:>7}{r['seconds']:>9.1f}{r['rate']:>8.1f}{r['lost']:>6}"
                  f"{r['duplicated']:>5}{r['failed']:>8}{r['no_dlr']:>8}{r['p50_sent'] / 1000:>10.1f}"
                  f"{r['p99_sent'] / 1000:>10.1f}{r['p50_dlr'] / 1000:>10.1f}{r['p99_dlr'] / 1000:>10.1f}"
                  f"{r['conflicts']:>11}{'yes' if met else 'no':>9}{r['cpu_ms']:>12.1f}{r['load']:>6.1f}",
                  flush=True)
            if r["no_dlr_at"]:
                print(f"  no report for messages sent at {r['no_dlr_at']} s from the restart", flush=True)
    if args.mails and dovecot_missing():
        print(f"e-mail part skipped: {dovecot_missing()}")
    elif args.mails:
        print(f"\nInbound e-mail through Dovecot (IMAP) to tickets, app crashed after {args.mails // 2} and "
              f"restarted ({dt.date.today()})")
        print(f"{'backend':<10}{'mails':>8}{'seconds':>10}{'mails/s':>10}{'tickets':>9}{'lost':>6}{'duplicated':>12}"
              f"{'cpu ms/mail':>13}{'load':>6}")
        for backend in backends:
            r = run_email(backend, args.mails, args.pg)
            print(f"{r['backend']:<10}{r['mails']:>8}{r['seconds']:>10.1f}{r['rate']:>10.1f}{r['tickets']:>9}"
                  f"{r['lost']:>6}{r['duplicated']:>12}{r['cpu_ms']:>13.1f}{r['load']:>6.1f}", flush=True)


if __name__ == "__main__":
    main()

from gevent import monkey; monkey.patch_all()  # noqa: E702 - must run before anything imports socket/threading
"""Start the hotline: web UI, outbound socket server for FreeSWITCH, ESL connections, ACD and scheduler.

On PostgreSQL two (or more) of these processes make an active/standby pair (core.leader): the one holding the
active lock runs everything; the others wait, built but connected to no switch, and the first to take the lock
after the active is gone starts (docs/reliability.md, "The app killed"). Only the active creates or upgrades the
schema: a standby whose version changes it waits unbuilt, migrates once active, then builds (Product.stand_by).
With SQLite one process runs alone.

``python run.py --web-worker`` runs a web worker instead (hotline.worker): the web UI alone, for PostgreSQL.

SIGTERM/SIGINT: stop accepting calls, let calls in progress finish, exit 0 (a standby just exits).
Exit 75 (EX_TEMPFAIL): the active lost its lock and stopped at once; the service manager starts it again,
and it comes back as a standby. Exit 2: a configuration error.
"""
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from core.config import ConfigError, load_config  # noqa: E402
from core.heap import freeze_startup_objects  # noqa: E402
from core.leader import LeadershipError  # noqa: E402
from core.logsetup import configure_logging  # noqa: E402

log = logging.getLogger("hotline")

EXIT_LOST_LOCK = 75


def lost_lock() -> None:
    """The active lock is gone: another process may take over once its fence is over, so this one must
    not act any more. Exiting at once is the surest way: the kernel closes the outbound socket server
    (FreeSWITCH's dialplan goes on to the other app's address), every call's socket (callers in the menu
    follow the same path) and the event-socket connections, and no greenlet can send another command."""
    logging.shutdown()
    os._exit(EXIT_LOST_LOCK)


def peewee_without_psycopg2(config) -> None:
    """On SQLite, import peewee (and playhouse's URL parser, which loads its PostgreSQL extensions) as if
    psycopg2 were not installed. They import it eagerly when it is, and with it libpq and the wheel's own
    libssl, libcrypto and Kerberos: 6 MiB of the call process's resident memory for a database it never opens
    (issue 15 item 11). Only peewee's import is steered: a later
    ``import psycopg2`` (Kamailio's PostgreSQL tables, hotline.kamailio) loads it as usual."""
    if not config.database_url.startswith("sqlite") or "peewee" in sys.modules:
        return
    hidden = [name for name in ("psycopg2", "psycopg") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # `import name` raises ImportError, which peewee takes as "not installed"
    try:
        import peewee  # noqa: F401
        import playhouse.db_url  # noqa: F401
    finally:
        for name in hidden:
            sys.modules.pop(name, None)


def main() -> int:
    configure_logging()
    try:
        config = load_config()
    except ConfigError as error:
        log.error("configuration: %s", error)
        return 2
    peewee_without_psycopg2(config)
    from hotline.product import Product

    product = Product(config, demo_history=True)
    stopping = Event()
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    gevent.signal_handler(signal.SIGINT, stopping.set)
    try:
        leadership = product.leadership(on_lost=lost_lock)
    except LeadershipError as error:
        log.error("configuration: %s", error)
        return 2
    from hotline.schema import NewerSchema

    try:
        if leadership is None:
            product.build()
        elif not product.stand_by(leadership, stopping):
            # The schema is changed only under the active lock (a standby never migrates under a running active).
            log.info("stopped while standing by")
            return 0
    except NewerSchema as error:  # an older release on a database a newer one upgraded: refused, said why
        log.error("%s", error)
        if leadership is not None:
            leadership.release()
        return 2
    for operator_no, name, roles, password in product.demo_accounts:
        log.info("demo account 工号 %s %s (%s) password %s", operator_no, name, roles, password)
    product.start()
    # the start's objects (modules, the app, the trees, the caches) out of the collector's full passes, as a web
    # worker's (core.heap): each pass walked them all and stopped every call of the process meanwhile
    freeze_startup_objects()
    stopping.wait()
    log.info("stopping: no new calls; waiting for calls in progress")
    product.stop()
    if leadership is not None:
        # Only now: until every call of this process is over, a standby must not act on the switches.
        leadership.release()
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--web-worker"]:
        # A web worker instead (hotline.worker): the web UI alone, any number of them behind a reverse proxy.
        from hotline.worker import main as web_worker

        sys.exit(web_worker())
    if sys.argv[1:]:
        print("usage: python run.py [--web-worker]", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())

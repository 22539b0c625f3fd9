from gevent import monkey; monkey.patch_all()  # noqa: E702 - must run before anything imports socket/threading
"""A web worker: the web UI alone, in a process of its own; run any number behind a reverse proxy.

    HOTLINE_HTTP=127.0.0.1:8091 HOTLINE_CALL_PROCESS=http://127.0.0.1:8080 python run.py --web-worker
    (or python -m hotline.worker)

Stateless but for the database (PostgreSQL; SQLite has one process, run.py): sessions are signed cookies
checked against the user's session version in the database, so any worker serves any browser and a restarted
worker loses nobody's login (every worker needs the same HOTLINE_SECRET_KEY). The agent desk's event stream
listens on PostgreSQL's LISTEN/NOTIFY (core.pubsub, webui.desk_feed); the pages that drive the running ACD are
passed on to the call process, HOTLINE_CALL_PROCESS, the active app's web address(es) (webui.forward). The
worker never changes the schema: it waits until the call process (run.py) has created or upgraded it.

SIGTERM/SIGINT: stop accepting, finish the requests in progress (event streams are cut after 5 s), exit 0.
"""
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402

from core.clock import Clock  # noqa: E402
from core.config import ConfigError, load_config  # noqa: E402
from core.db import DbTimeouts, bind_database, database, is_postgres  # noqa: E402
from core.heap import freeze_startup_objects  # noqa: E402
from core.logsetup import configure_logging  # noqa: E402
from core.pubsub import open_bus  # noqa: E402

log = logging.getLogger("hotline.worker")


def build(config, stopping: Event | None = None):
    """The worker's Flask app, its Services (bus, forwarder) and the bus; waits for the schema."""
    from hotline.schema import NewerSchema, pending
    from channels import receipts
    from webui.app import Services, create_app
    from webui.blueprints.portal import warm_up as portal_warm_up
    from webui.forward import CallProcessForwarder, parse_call_process
    from webui.security import proxy_hops

    bind_database(config.database_url, DbTimeouts.from_config(config))
    if not is_postgres():
        raise ConfigError("a web worker needs PostgreSQL (HOTLINE_DATABASE_URL=postgresql://...): with SQLite "
                          "the web UI runs inside the one app process (run.py)")
    addresses = parse_call_process(str(config.extra.get("HOTLINE_CALL_PROCESS", "")))
    announced = False
    while True:
        try:
            missing = pending()
        except NewerSchema:
            raise  # not a database that is not up yet: this release must not serve it
        except Exception as exc:  # noqa: BLE001 - the database is not up yet: wait for it
            missing = f"database not reachable ({exc})"
        if not missing:
            break
        if not announced:
            log.warning("waiting for the call process (run.py) to create or upgrade the database: %s", missing)
            announced = True
        if stopping is not None and stopping.wait(2.0):
            return None
        if stopping is None:
            gevent.sleep(2.0)
    if config.shared_dir is not None:
        # The recordings, faxes and attachments this worker serves are the call process's files.
        from core.shared_files import check, database_identity

        with database.connection_context():
            identity = database_identity(database.obj)
        check(config, identity, create=False)
    bus = open_bus(config.database_url).start()
    forwarder = CallProcessForwarder(addresses, trusted_hops=proxy_hops(config.extra.get("HOTLINE_TRUST_PROXY", "")))
    services = Services(clock=Clock(config.tz), bus=bus, forward=forwarder)
    app = create_app(config, services)
    # The receipts carrying a new ticket's PIN (the entry desk's, the website's tickets), queued with the ticket.
    receipts.connect(config)
    portal_warm_up(app)  # before serving (and before main's heap freeze keeps what it made)
    return app, services


def main() -> int:
    from webui.server import HttpLimits, HttpServer

    configure_logging()
    try:
        config = load_config()
    except ConfigError as error:
        log.error("configuration: %s", error)
        return 2
    stopping = Event()
    gevent.signal_handler(signal.SIGTERM, stopping.set)
    gevent.signal_handler(signal.SIGINT, stopping.set)
    from hotline.schema import NewerSchema

    try:
        built = build(config, stopping)
    except (ConfigError, NewerSchema) as error:
        log.error("%s", error)
        return 2
    if built is None:
        return 0
    app, services = built
    freeze_startup_objects()  # the start's objects out of the collector's full passes (core.heap)
    host, port = config.http
    web = HttpServer((host, port), app, HttpLimits.from_config(config))
    web.start()
    log.info("web worker on http://%s:%s; call process at %s", host, web.server_port,
             ", ".join(f"http://{h}:{p}" for h, p in services.forward.addresses))
    stopping.wait()
    log.info("web worker stopping")
    web.stop(timeout=5)
    services.bus.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

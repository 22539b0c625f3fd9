"""The phone side of a browser test or bench, in one background thread: the protocol-level fake FreeSWITCH, an
inbound ESL pool, the ACD, the outbound socket server taking callers into the queue "consult", and the web app
on gevent's WSGI server, all in that thread's gevent hub (as in production, where run.py runs them in one
process). The calling thread drives Chromium and hands work to the hub through ``Telephony.run_in_hub``.

Shared by the desk's browser tests (test_agent_desk, test_softphone, test_chat) and bench/desk.py, so the bench
measures the stack the tests check. ``fresh_database`` makes the SQLite database and configuration they run on,
``running`` starts the thread and stops it afterwards.
"""
from __future__ import annotations

import queue
import threading
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT = 15.0


class Telephony(threading.Thread):
    """Fake switch + inbound pool + ACD + outbound server + the web app, all in this thread's hub.

    ``extensions``: the fake switch's scripted agent phones (they answer after a tick and stay on the line);
    ``call_seconds``: how long a caller's session waits for its hang-up; ``on_notice``: subscribed to the
    ACD's notices when given (called in the hub); ``hub_timeout``: ``run_in_hub``'s default wait.
    After ``start()``, wait on ``ready`` and raise ``error`` if it is set; ``url`` is the web app's address.
    """

    def __init__(self, config, folder: Path, extensions=("1001", "1002"), call_seconds: float = 60.0,
                 on_notice=None, hub_timeout: float = 10.0, name: str = "telephony"):
        super().__init__(name=name, daemon=True)
        self.config, self.folder = config, folder
        self.extensions, self.call_seconds = tuple(extensions), call_seconds
        self.on_notice, self.hub_timeout = on_notice, hub_timeout
        self.ready = threading.Event()
        self.error = None
        self.hub_loop = None

    def run(self):
        import gevent
        import gevent.event
        from gevent.pywsgi import WSGIServer

        from acd.dispatcher import Acd, AcdSettings
        from core.config import EslEndpoint
        from switch.errors import CallHangup
        from switch.inbound import SwitchPool
        from switch.outbound import OutboundServer
        from tests.fakeswitch import FakeSwitch
        from webui.app import Services, create_app

        try:
            self.fs = FakeSwitch(password="ClueCon", record_dir=self.folder / "fs", time_scale=0.01)
            self.fs.start()
            for extension in self.extensions:
                self.fs.add_agent(extension, answer_delay=1, talk_seconds=None)
            self.pool = SwitchPool([EslEndpoint("127.0.0.1", self.fs.esl_port, "ClueCon")])
            self.pool.start()
            self.pool.all()[0].wait_connected(5)
            self.acd = Acd(self.pool, settings=AcdSettings(reconcile_interval=3600))
            self.acd.start()
            if self.on_notice is not None:
                self.acd.subscribe(self.on_notice)

            def handle(session):
                try:
                    session.answer()
                    self.acd.enter_queue(session, "consult")
                    session.wait_hangup(timeout=self.call_seconds)
                except CallHangup:
                    pass

            self.outbound = OutboundServer("127.0.0.1", 0, handle)
            self.outbound.start()
            app = create_app(self.config, Services(acd=self.acd))
            self.web = WSGIServer(("127.0.0.1", 0), app, log=None)
            self.web.start()
            self.url = f"http://127.0.0.1:{self.web.server_port}"
            self.hub_loop = gevent.get_hub().loop
            self._halt = gevent.event.Event()
        except Exception as error:  # noqa: BLE001 - reported to the calling thread
            self.error = error
            self.ready.set()
            return
        self.ready.set()
        self._halt.wait()
        self.web.stop(timeout=2)
        self.outbound.stop(drain_timeout=2)
        self.acd.stop()
        self.pool.stop()
        self.fs.stop()

    def run_in_hub(self, fn, *args, timeout: float | None = None):
        """fn(*args) in a greenlet of this thread's hub; its result (or exception) in the calling thread."""
        import gevent

        results: queue.Queue = queue.Queue()

        def call():
            try:
                results.put((True, fn(*args)))
            except Exception as error:  # noqa: BLE001 - re-raised in the caller's thread
                results.put((False, error))

        self.hub_loop.run_callback_threadsafe(lambda: gevent.spawn(call))
        ok, value = results.get(timeout=self.hub_timeout if timeout is None else timeout)
        if not ok:
            raise value
        return value

    def stop(self):
        if self.hub_loop is not None:
            self.hub_loop.run_callback_threadsafe(self._halt.set)
        self.join(10)


def fresh_database(folder: Path, file_name: str, secret_key: str, **values):
    """(database, config): a new SQLite database ``folder/file_name`` with the product's schema, bound as
    core.db's database, and a test configuration on it (no demo data) with ``values`` added."""
    from core import db as core_db
    from core.config import load_config
    from hotline.schema import all_models, create_schema

    url = f"sqlite:///{folder / file_name}"
    database = core_db.bind_database(url)
    create_schema(all_models())
    config = load_config({"database_url": url, "var_dir": str(folder / "var"), "mode": "test",
                          "secret_key": secret_key, "load_demo": False, **values})
    return database, config


@contextmanager
def running(config, folder: Path, **options):
    """A started ``Telephony(config, folder, **options)`` (its start error raised), stopped on leaving."""
    thread = Telephony(config, folder, **options)
    thread.start()
    assert thread.ready.wait(START_TIMEOUT), "telephony thread did not start"
    if thread.error is not None:
        raise thread.error
    try:
        yield thread
    finally:
        thread.stop()

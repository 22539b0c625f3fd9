"""The phone side of a browser test or bench, in one background thread: the protocol-level fake FreeSWITCH, an
inbound ESL pool, the ACD, the outbound socket server taking callers into the queue "consult", and the web app
on gevent's WSGI server, all in that thread's gevent hub (as in production, where run.py runs them in one
process). The calling thread drives Chromium and hands work to the hub through ``Telephony.run_in_hub``.

Shared by tests/browser/test_agent_desk.py and bench/desk.py, so the bench measures the stack the tests check.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path


class Telephony(threading.Thread):
    """Fake switch + inbound pool + ACD + outbound server + the web app, all in this thread's hub.

    ``extensions``: the fake switch's scripted agent phones (they answer after a tick and stay on the line);
    ``call_seconds``: how long a caller's session waits for its hang-up; ``on_notice``: subscribed to the
    ACD's notices when given (called in the hub); ``hub_timeout``: ``run_in_hub``'s default wait.
    After ``start()``, wait on ``ready`` and raise ``error`` if it is set; ``url`` is the web app's address.
    """

    def __init__(self, config, folder: Path, extensions=("1001",), call_seconds: float = 60.0,
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

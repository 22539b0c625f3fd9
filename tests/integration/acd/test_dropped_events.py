"""Events the inbound connection drops (its queue full) make the ACD reconcile with that switch, through the
same hook as a reconnect; /healthz shows the count per switch. Over the wire with the fake FreeSWITCH."""
from __future__ import annotations

import gevent.event

from acd.dispatcher import Acd, AcdSettings
from core.config import EslEndpoint
from switch.inbound import SwitchPool
from tests.integration.acd.conftest import wait_for


def test_dropped_events_make_the_acd_reconcile_that_switch_and_show_in_healthz(app, client, prompts, fakeswitch):
    """Should reconcile the switch whose events were dropped (once for the burst), and report the count."""
    pool = SwitchPool([EslEndpoint("127.0.0.1", fakeswitch.esl_port, "ClueCon")], max_queued_events=3,
                      resync_interval=3600)
    pool.start()
    conn = pool.all()[0]
    acd = Acd(pool, settings=AcdSettings(reconcile_interval=3600), prompts=prompts)
    reconciled = []
    reconcile = acd.reconcile

    def counting(server):
        reconciled.append(server)
        return reconcile(server)

    acd.reconcile = counting
    try:
        assert conn.wait_connected(5)
        acd.start()
        wait_for(lambda: reconciled == [conn.name], what="the reconcile at start")
        stall = gevent.event.Event()
        conn.subscribe(lambda event: stall.wait(10))  # after the ACD's: holds up the event queue
        for n in range(20):
            fakeswitch.add_agent(f"2{n:03d}", registered=True)
        wait_for(lambda: conn.dropped_events >= 16, what="events dropped")
        assert reconciled == [conn.name]
        stall.set()
        wait_for(lambda: len(reconciled) == 2, what="the reconcile after the drops")
        assert reconciled[1] == conn.name

        app.extensions["hotline"].services.switch_status = pool.status
        body = client.get("/healthz").get_json()
        assert body["dropped_events"][conn.name] == conn.dropped_events >= 16
        assert body["switches"][conn.name] == "connected"
    finally:
        acd.stop()
        pool.stop()

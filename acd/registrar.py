"""Agents' registrations read from Kamailio (docs/kamailio.md) instead of from each FreeSWITCH.

With Kamailio in front, agents' desk phones register there, not on a switch: its location table (PostgreSQL,
shared by every Kamailio of the hotline) says who is registered. ``KamailioRegistrations`` reads it every
``interval`` seconds and marks each agent registered or not with the server name ``switch.kamailio.REGISTRAR``,
whose dial route (``sofia/internal/<extension>@<Kamailio>``) every FreeSWITCH can use: the caller's server
rings the agent through Kamailio, so such agents need no hotline-peer route. Phones registered directly on a
switch (the browser phone over WSS, a site without Kamailio) are still learned from that switch's events and
reconciliation; an agent registered in both places is taken as Kamailio's.

A failed read (the database away) changes nothing: Kamailio cannot look anyone up either, and the last known
state is the best guess until the next read succeeds. Polling, not events: Kamailio has no event the app could
subscribe to that survives the app's restart; a read is one indexed query, and with the default 2 s a phone
that registers is offered calls within about 2 s.
"""
from __future__ import annotations

import logging
from typing import Callable

import gevent

from switch.kamailio import REGISTRAR

log = logging.getLogger(__name__)


class KamailioRegistrations:
    """Keeps ``acd``'s agents' registrations in step with Kamailio's location table.

    ``fetch`` returns {extension: contact} (switch.kamailio.read_registrations over a connection);
    ``route`` is the dial template that reaches those phones from any switch (switch.kamailio.dial_route).
    """

    def __init__(self, acd, fetch: Callable[[], dict[str, str]], route: str, interval: float = 2.0):
        self.acd, self.fetch, self.route, self.interval = acd, fetch, route, interval
        self.failing = False
        self._loop: gevent.Greenlet | None = None

    def start(self) -> None:
        """Offer Kamailio's phones from every switch, read the registrations now and then every interval."""
        self.acd.peer_routes[REGISTRAR] = self.route
        self.poll()
        self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=False)
            self._loop = None

    def _run(self) -> None:
        while True:
            gevent.sleep(self.interval)
            self.poll()

    def poll(self) -> dict | None:
        """One read: agents found marked registered (through Kamailio), those of Kamailio's that are gone
        unregistered. Returns the counts, or None when the read failed (nothing changed)."""
        try:
            registrations = self.fetch()
        except Exception as exc:  # noqa: BLE001 - a database or driver error must not end the watch
            if not self.failing:
                log.error("cannot read the registrations from Kamailio's location table: %s (agents kept as "
                          "they were until it answers)", exc)
            self.failing = True
            return None
        if self.failing:
            log.info("Kamailio's registrations readable again")
            self.failing = False
        report = {"registered": 0, "unregistered": 0}
        self.acd.peer_routes[REGISTRAR] = self.route
        for agent in list(self.acd.agents.values()):
            contact = registrations.get(agent.extension) if agent.extension else None
            if contact is not None:
                report["registered"] += 1
                if not agent.registered or agent.server != REGISTRAR or agent.contact != contact[:255]:
                    self.acd.set_registered(agent.id, True, REGISTRAR, contact)
            elif agent.registered and agent.server == REGISTRAR:
                report["unregistered"] += 1
                self.acd.set_registered(agent.id, False)
        return report

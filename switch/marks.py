"""Marks the app sets on a channel before sending it back into the outbound socket (an agent's hand-back
to an IVR node, a blind transfer into a queue), and the ledger that lets the runner trust only those.

Channel data come from whoever connects to the socket, so a mark counts only when the app itself set it on
that very channel. Here, on the switch floor, because both the ACD (which sets them) and the IVR (which
claims them) use it and neither may import the other's side (docs/architecture.md).
"""
from __future__ import annotations

import collections
import logging
import time

log = logging.getLogger(__name__)


# The channel variables that send a caller re-entering the socket somewhere (ivr.runner reads them).
MARKS = ("hotline_ivr_node", "hotline_queue")


class HandBackLedger:
    """The marks the app set on channels it is sending back into the socket, by channel uuid.

    ``expect`` before the ``uuid_setvar``; the runner ``claim``s once when the channel comes back, and acts
    only on a mark whose value the channel carries as the app set it. Entries expire after ``ttl`` seconds
    (a transfer re-enters within a second) and there are never more than ``max_entries``.
    """

    def __init__(self, ttl: float = 300.0, clock=time.monotonic, max_entries: int = 10000):
        self.ttl = ttl
        self.clock = clock
        self.max_entries = max_entries
        self._marks: collections.OrderedDict[str, tuple[float, str, str]] = collections.OrderedDict()

    def expect(self, call_uuid: str, variable: str, value: str) -> None:
        """The app is about to mark ``call_uuid`` with ``variable=value`` and send it back into the socket."""
        if variable not in MARKS:
            raise ValueError(f"not a hand-back mark: {variable!r}")
        self._marks.pop(call_uuid, None)
        self._marks[call_uuid] = (self.clock(), variable, value)
        while len(self._marks) > self.max_entries:
            self._marks.popitem(last=False)

    def claim(self, call_uuid: str, channel: dict) -> dict[str, str]:
        """The marks of ``call_uuid`` to act on ({variable: value}, at most one); forgets the expectation.

        ``channel`` is the call's channel data (``variable_<name>`` keys). A mark the app did not set, set
        on another channel, expired or with another value is left out and logged.
        """
        now = self.clock()
        while self._marks:
            oldest = next(iter(self._marks.values()))[0]
            if now - oldest <= self.ttl:
                break
            self._marks.popitem(last=False)
        expected = self._marks.pop(call_uuid, None)
        claimed = {}
        for variable in MARKS:
            value = channel.get(f"variable_{variable}", "")
            if not value:
                continue
            if expected is not None and expected[1:] == (variable, value):
                claimed[variable] = value
            else:
                log.warning("call %s carries %s=%r that the app did not set on it; ignored", call_uuid,
                            variable, value[:64])
        return claimed

"""Agents hand a caller back to an IVR node (人工转自动): mark the channel, then transfer it to 12345,
which the dialplan sends into the app's socket again; the runner starts at the marked node.

The runner acts on a mark only when the app itself set it on that very channel (HandBackLedger): channel
data come from whoever connects to the socket, and a forged ``hotline_ivr_node`` or ``hotline_queue`` must
not move a caller anywhere.
"""
from __future__ import annotations

import collections
import logging
import re
import time
from dataclasses import dataclass

from switch import commands

log = logging.getLogger(__name__)

NODE_RE = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")
UUID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}\Z")


# What the desk shows for each kind of hand-back node (zh, en); other kinds show their node id.
KIND_LABELS = {
    "satisfaction": ("满意度评价", "Satisfaction rating"),
    "status_query": ("工单查询", "Case status query"),
    "fax": ("传真受理", "Receive a fax"),
    "poll": ("民意调查", "Opinion poll"),
    "mailbox": ("市长信箱", "Mayor's mailbox"),
}


@dataclass(frozen=True)
class HandBackTarget:
    """A node an agent may hand a caller to, with its labels for the desk."""

    node: str
    kind: str
    label_zh: str
    label_en: str


def targets(tree) -> list[HandBackTarget]:
    """The nodes of ``tree`` marked ``handback = true``, in the tree file's order."""
    from ivr.tree import handback_nodes

    out = []
    for node, kind in handback_nodes(tree):
        zh, en = KIND_LABELS.get(kind, (node, node))
        out.append(HandBackTarget(node, kind, zh, en))
    return out


def active_targets(trees=None) -> list[HandBackTarget]:
    """Hand-back targets of the active default tree (the agent desk's "back to IVR" menu); reads the database."""
    from ivr.store import TreeStore

    _version, tree = (trees or TreeStore(skills=None)).active_tree("default")
    return targets(tree)


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


class HandBackError(ValueError):
    """Bad call or node name, or the switch refused."""


def hand_back(connection, call_uuid: str, node: str, tree=None, number: str = "12345",
              ledger: HandBackLedger | None = None) -> None:
    """Send the caller on ``call_uuid`` (the citizen's leg) to IVR ``node``; the agent's leg is released.

    ``ledger`` (the runner's) learns the mark first, so the call is started at ``node`` when it comes back."""
    if not UUID_RE.match(call_uuid or ""):
        raise HandBackError(f"not a call id: {call_uuid!r}")
    if not NODE_RE.match(node or "") or (tree is not None and node not in tree.nodes):
        raise HandBackError(f"no IVR node {node!r}")
    if tree is not None and node not in {t.node for t in targets(tree)}:
        raise HandBackError(f"IVR node {node!r} does not take callers from agents (handback = true)")
    if ledger is not None:
        ledger.expect(call_uuid, "hotline_ivr_node", node)
    for command in (commands.uuid_setvar(call_uuid, "hotline_ivr_node", node),
                    commands.uuid_transfer(call_uuid, commands.phone(number))):
        reply = connection.api(command)
        if not reply.strip().startswith("+OK"):
            raise HandBackError(f"{command.split()[0]}: {reply.strip()[:200]}")

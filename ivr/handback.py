"""Agents hand a caller back to an IVR node (人工转自动): mark the channel, then transfer it to 12345,
which the dialplan sends into the app's socket again; the runner starts at the marked node.

The runner acts on a mark only when the app itself set it on that very channel (HandBackLedger): channel
data come from whoever connects to the socket, and a forged ``hotline_ivr_node`` or ``hotline_queue`` must
not move a caller anywhere.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from switch import commands
from switch.marks import HandBackLedger

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

"""Agents hand a caller back to an IVR node (人工转自动): mark the channel, then transfer it to 12345,
which the dialplan sends into the app's socket again; the runner starts at the marked node."""
from __future__ import annotations

import re

NODE_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
UUID_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class HandBackError(ValueError):
    """Bad call or node name, or the switch refused."""


def hand_back(connection, call_uuid: str, node: str, tree=None, number: str = "12345") -> None:
    """Send the caller on ``call_uuid`` (the citizen's leg) to IVR ``node``; the agent's leg is released."""
    if not UUID_RE.match(call_uuid or ""):
        raise HandBackError(f"not a call id: {call_uuid!r}")
    if not NODE_RE.match(node or "") or (tree is not None and node not in tree.nodes):
        raise HandBackError(f"no IVR node {node!r}")
    for command in (f"uuid_setvar {call_uuid} hotline_ivr_node {node}",
                    f"uuid_transfer {call_uuid} {number} XML default"):
        reply = connection.api(command)
        if not reply.strip().startswith("+OK"):
            raise HandBackError(f"{command.split()[0]}: {reply.strip()[:200]}")

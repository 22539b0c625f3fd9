"""What a trace shows to whom: digit runs a caller typed (acceptance numbers, phone numbers) are masked for
roles that do not need them; PINs are never stored (the engine logs stars)."""
from __future__ import annotations

import re

# Roles that see the keys as typed: the administrator and the centre's leaders auditing a complaint
# about the IVR. Agents, team leads and centre staff see long numbers masked (they have the ticket links).
KEY_ROLES = ("admin", "centre_leader")
LONG_DIGITS = re.compile(r"\d{5,}")


def mask_digits(text: str) -> str:
    """Mask every run of 5 or more digits but its last two: 20260105 -> ******05."""
    return LONG_DIGITS.sub(lambda m: "*" * (len(m.group()) - 2) + m.group()[-2:], text or "")


def steps_for(steps: list[dict], user) -> list[dict]:
    """Trace steps as ``user`` may see them (masked unless they hold one of KEY_ROLES)."""
    if user is not None and user.has_role(*KEY_ROLES):
        return steps
    return [{**step, "keys": mask_digits(str(step.get("keys", ""))), "what": mask_digits(str(step.get("what", "")))}
            for step in steps]

"""Helpers more than one blueprint uses, in a module of their own so blueprints import it and not each
other (ticket pages link IVR traces, the IVR pages reuse the catalogue helper)."""
from __future__ import annotations

# Who may read an IVR call trace (the IVR pages' trace views; ticket pages link a trace for these roles).
TRACE_ROLES = ("admin", "team_lead", "centre", "centre_leader", "agent")


def own_messages(messages: dict) -> dict:
    """Drop ids the base catalogue already translates, so each id has one wording (no redefinition)."""
    try:
        from webui.i18n import MESSAGES as base
    except ImportError:  # pragma: no cover - the skeleton always has it
        return messages
    return {lang: {k: v for k, v in table.items() if k not in base.get(lang, {})}
            for lang, table in messages.items()}

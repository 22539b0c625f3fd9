"""Readers of FreeSWITCH's text answers (pure, no I/O): channel lists, registrations, a global variable.

The builders of the commands that ask for these are in switch.commands (show_channels, sofia_registrations,
global_getvar); the ACD's reconciliation sends them and reads the answers here.
"""
from __future__ import annotations

import json

__all__ = ["parse_channels", "parse_sofia_registrations", "parse_show_registrations", "parse_peer_uri"]


def parse_sofia_registrations(text: str) -> dict[str, str]:
    """``sofia status profile X reg`` -> {user: contact}. Reflects live registrations (unlike ``show``)."""
    out: dict[str, str] = {}
    user = ""
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "user":
            user = value.split("@", 1)[0]
            out[user] = ""
        elif key == "contact" and user:
            out[user] = value
    return out


def parse_show_registrations(text: str) -> dict[str, str]:
    """``show registrations`` CSV -> {reg_user: url} (may be stale; a fallback only)."""
    out: dict[str, str] = {}
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines or "," not in lines[0]:
        return out
    header = lines[0].split(",")
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) < len(header):
            continue
        row = dict(zip(header, cells))
        if row.get("reg_user"):
            out[row["reg_user"]] = row.get("url", "")
    return out


def parse_channels(text: str) -> set[str]:
    """``show channels as json`` -> set of channel uuids; raises ValueError on an unreadable reply."""
    text = (text or "").strip()
    if not text or text.startswith("-ERR"):
        raise ValueError(f"unreadable channel list: {text[:80]!r}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(f"unreadable channel list: {text[:80]!r}") from None
    if not isinstance(data, dict):
        raise ValueError("unreadable channel list: not an object")
    rows = data.get("rows") or []
    return {str(row.get("uuid")) for row in rows if isinstance(row, dict) and row.get("uuid")}


def parse_peer_uri(text: str) -> str | None:
    """A server's ``global_getvar hotline_peer_uri`` reply -> the dial template, or None when it has none."""
    uri = (text or "").strip()
    if not uri or uri.startswith("-") or "{extension}" not in uri or any(c in uri for c in " ,[]"):
        return None
    return uri

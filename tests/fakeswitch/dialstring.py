"""Dial strings and originate's arguments read as FreeSWITCH reads them: {global} and [per-leg] variable
blocks, `a|b` (in turn) and `a,b` (at once) outside those blocks, the call URL and switch_separate_string's
words, and the kind of a single target (user/, sofia/gateway/, sofia/<profile>/, loopback/, error/).
Pure functions, no I/O; the strings they read are those of the captures' `bgapi originate` lines
(tests/transcripts/inbound_plain_and_json.txt, acd_bridge_eavesdrop_record_transfer_conference.txt) and of
the product's dial templates."""
from __future__ import annotations


def strip_vars(dial: str) -> tuple[dict, str]:
    """Split a leading {a=b,c='d e'} or [..] block off a dial string."""
    variables: dict[str, str] = {}
    while dial[:1] in ("{", "["):
        close = "}" if dial[0] == "{" else "]"
        end = dial.find(close)
        if end < 0:
            break
        for item in _split_top(dial[1:end], ","):
            k, _, v = item.partition("=")
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
                v = v[1:-1]
            if k.strip():
                variables[k.strip()] = v
        dial = dial[end + 1:]
    return variables, dial


def _split_top(s: str, sep: str) -> list[str]:
    out, cur, quote = [], "", ""
    for c in s:
        if quote:
            cur += c
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
            cur += c
        elif c == sep:
            out.append(cur)
            cur = ""
        else:
            cur += c
    if cur:
        out.append(cur)
    return out


def split_outside_brackets(dial: str, sep: str) -> list[str]:
    """Split a dial string at ``sep`` where it is not inside a [per-leg] or {global} variable block."""
    parts, cur, depth = [], "", 0
    for c in dial:
        if c in "[{":
            depth += 1
        elif c in "]}":
            depth = max(0, depth - 1)
        if c == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    parts.append(cur)
    return [p for p in parts if p.strip()]


def split_dial(arg: str) -> tuple[str, list[str]]:
    """originate's arguments: the call URL (which may contain spaces inside {...}) and the rest."""
    arg = arg.strip()
    depth = 0
    quote = ""
    for i, c in enumerate(arg):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"" and depth:
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        elif c.isspace() and depth == 0:
            return arg[:i], _separate(arg[i:])
    return arg, []


def _separate(text: str) -> list[str]:
    """switch_separate_string on ' ': words, where a '...' or "..." span is one word without its quotes (so
    `'&socket(127.0.0.1:8084 async full)'` stays one argument; unquoted, its spaces split it)."""
    words, word, quote, started = [], "", "", False
    for c in text:
        if quote:
            if c == quote:
                quote = ""
            else:
                word += c
        elif c in "'\"":
            quote, started = c, True
        elif c.isspace():
            if word or started:
                words.append(word)
            word, started = "", False
        else:
            word += c
    if word or started:
        words.append(word)
    return words


def dial_target(dial: str) -> tuple[str, str | None]:
    """(number, kind) for a single dial string; kind is user, gateway, loopback, error or None."""
    parts = dial.split("/")
    if parts[0] == "user" and len(parts) >= 2:
        return parts[1].split("@")[0], "user"
    if parts[0] == "sofia" and len(parts) >= 3:
        if parts[1] == "gateway" and len(parts) >= 4:
            return parts[3].split("@")[0], "gateway"
        target = "/".join(parts[2:])
        target = target[4:] if target.startswith("sip:") else target
        return target.split("@")[0], "user"
    if parts[0] == "loopback" and len(parts) >= 2:
        return parts[1], "loopback"
    if parts[0] == "error":
        return (parts[1] if len(parts) > 1 else ""), "error"
    return "", None

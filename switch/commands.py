"""FreeSWITCH API commands and dial strings, built in one place under one escaping rule (pure, no I/O).

Every command the app sends over the event socket is a line of text FreeSWITCH splits again: the API line
at spaces (``originate`` honours single quotes, ``uuid_setvar`` keeps the rest of the line as the value),
a variables block ``{a=1,b=2}`` / ``[a=1]`` at commas and its closing bracket, a dial string at ``,``
(ring all) and ``|`` (one after the other), the ESL frame at the newline. So a value that carries one of
those characters changes what the switch does. The rule, the same everywhere:

* identifiers are validated, never repaired: a channel uuid is ASCII letters, digits and ``-`` (1-64, as
  FreeSWITCH's own and the ones the app chooses); an extension is ASCII digits; a phone number is ASCII
  digits with an optional leading ``+``; a variable name is ``[A-Za-z_][A-Za-z0-9_-]*``;
* a variable value may not hold ``, ' " { } [ ] < > | \\ ^``, a newline or another control character
  (a ``${name}`` expansion is allowed: FreeSWITCH expands it when the command runs). Inside ``originate``
  a value with a space is single-quoted, as the API line is split at spaces;
* anything else bad raises ``CommandError`` saying which part and why.

Data from outside that is only shown (a caller's number as caller id, a queue name as a tag) is cleaned
instead with ``scrub`` (what the ACD's ``_safe`` did: only ``[0-9A-Za-z_.+*#@-]``, 64 characters), and a
free text for a quoted value with ``text``. The channel handle (switch.channel.Channel) sends these.
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping

__all__ = [
    "CommandError", "uuid", "extension", "phone", "name", "value", "scrub", "scrub_path", "text",
    "variables", "leg", "user", "gateway", "from_template", "ring_all", "one_after_another", "app",
    "originate", "uuid_kill", "uuid_transfer", "uuid_hold", "uuid_setvar", "uuid_getvar", "uuid_record",
    "uuid_broadcast", "uuid_bridge", "uuid_send_info", "inline", "uuid_break", "transfer_data", "conference_room", "global_getvar",
    "show_channels", "show_channels_count", "sofia_registrations",
]


class CommandError(ValueError):
    """A part of a FreeSWITCH command that would change its meaning (or is not what it claims to be)."""


# fullmatch with explicit ASCII classes: \d and \w match other scripts' digits and letters, $ a final newline
_ROOM = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,63}")
_UUID = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]{0,63}")
_DIGITS = re.compile(r"[0-9]{1,32}")
_PHONE = re.compile(r"\+?[0-9]{1,32}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")  # '-': sip_h_X-Name, hotline_op_<leg uuid>
_EXPANSION = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:\$\{[A-Za-z_][A-Za-z0-9_]*\})?\}")
_VALUE_BAD = re.compile(r"[,'\"{}\[\]<>|\\^\x00-\x1f\x7f]")
_PATH_BAD = re.compile(r"[\s,\[\]{}'\"$]")
_SCRUB = re.compile(r"[^0-9A-Za-z_.+*#@-]")
_CAUSE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_LEG_SIDES = ("aleg", "bleg", "both")


def _check(pattern: re.Pattern, text, what: str) -> str:
    if not isinstance(text, str) or not pattern.fullmatch(text):
        raise CommandError(f"not a {what}: {text!r}")
    return text


def uuid(text: str) -> str:
    """A channel uuid: ASCII letters, digits and '-', 1-64 characters."""
    return _check(_UUID, text, "channel uuid")


def extension(text: str) -> str:
    """An extension (directory user): ASCII digits only."""
    return _check(_DIGITS, text, "extension (digits 0-9)")


def phone(text: str) -> str:
    """A phone number: ASCII digits, an optional leading '+'."""
    return _check(_PHONE, text, "phone number (digits 0-9, optional leading +)")


def name(text: str) -> str:
    """A channel variable name."""
    return _check(_NAME, text, "variable name")


def value(text) -> str:
    """A variable value (int or str) that cannot end its block or line; ${name} expansions allowed."""
    text = str(text) if isinstance(text, int) and not isinstance(text, bool) else text
    if not isinstance(text, str):
        raise CommandError(f"not a variable value: {text!r}")
    bad = _VALUE_BAD.search(_EXPANSION.sub("", text))
    if bad:
        raise CommandError(f"variable value {text[:80]!r} holds {bad.group()!r}, which FreeSWITCH would split at")
    return text


def scrub(text: str | None) -> str:
    """Outside data shown by the switch (a caller's number, a queue name): only [0-9A-Za-z_.+*#@-], 64 long."""
    return _SCRUB.sub("", text or "")[:64]


def scrub_path(path: str | None) -> str:
    """A file path inside a dial string: without spaces, separators, brackets, quotes or '$'."""
    return _PATH_BAD.sub("", path or "")


def text(free: str | None) -> str:
    """Free text (a fax header) for a value: what ``value`` refuses (quotes, commas, brackets, line ends
    ...) becomes a space."""
    return _VALUE_BAD.sub(" ", free or "").strip()


# --- variables and dial strings -------------------------------------------------------------------------

def _pairs(pairs: Mapping[str, object] | Iterable[tuple[str, object]], quote_spaces: bool) -> str:
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    out = []
    for key, val in items:
        val = value(val)
        if quote_spaces and " " in val:
            val = f"'{val}'"
        out.append(f"{name(key)}={val}")
    return ",".join(out)


def variables(pairs: Mapping[str, object] | Iterable[tuple[str, object]], *, quote_spaces: bool = False) -> str:
    """``{a=1,b=2}``: variables for every leg of an originate or bridge (empty pairs: empty string)."""
    body = _pairs(pairs, quote_spaces)
    return f"{{{body}}}" if body else ""


def leg(pairs: Mapping[str, object] | Iterable[tuple[str, object]], target: str) -> str:
    """``[a=1,b=2]target``: one leg of a dial string with variables of its own."""
    body = _pairs(pairs, False)
    return f"[{body}]{target}" if body else target


def user(ext: str) -> str:
    """``user/<extension>``: a phone registered as directory user ``ext`` on this switch."""
    return f"user/{extension(ext)}"


def gateway(gateway_name: str, number: str) -> str:
    """``sofia/gateway/<gateway>/<number>``: a number through a carrier gateway."""
    return f"sofia/gateway/{name(gateway_name)}/{phone(number)}"


def from_template(template: str, **fields: str) -> str:
    """A configured dial template (``sofia/internal/{extension}@host``, ``[v=1]loopback/{number}/default``)
    with its fields filled in: ``extension`` must be an extension and ``number`` a phone number. The template
    is configuration and may carry its own variables blocks, but no space or line end (the originate line
    is split at spaces) and no field left unfilled."""
    checks = {"extension": extension, "number": phone}
    if any(ch.isspace() for ch in template):
        raise CommandError(f"dial template {template!r} holds a space or line end")
    out = template
    for key, val in fields.items():
        if key not in checks:
            raise CommandError(f"unknown dial template field {key!r}")
        out = out.replace("{" + key + "}", checks[key](val))
    unfilled = [key for key in checks if "{" + key + "}" in out]
    if unfilled:
        raise CommandError(f"dial template {template!r} leaves {', '.join(unfilled)} unfilled")
    return out


def ring_all(legs: Iterable[str]) -> str:
    """Legs rung at once (``,``): the first to answer wins."""
    return ",".join(legs)


def one_after_another(legs: Iterable[str]) -> str:
    """Legs tried in turn (``|``): the next when one fails."""
    return "|".join(legs)


def app(application: str, argument: str = "") -> str:
    """``&app(argument)``: the application an originated leg runs once answered."""
    name(application)
    if any(ch in argument for ch in "\r\n\x00'"):
        raise CommandError(f"application argument {argument!r} holds a line end or a quote")
    return f"&{application}({argument})"


def inline(application: str, argument: str) -> str:
    """``app:argument``: one application for an inline transfer (``uuid_transfer ... inline``)."""
    if not argument or any(ch.isspace() or ch == "," for ch in argument):
        raise CommandError(f"inline argument {argument!r} is empty or holds a space or comma")
    return f"{name(application)}:{argument}"


def originate(dial: str, application: str, pairs: Mapping[str, object] | Iterable[tuple[str, object]] = ()) -> str:
    """``originate {vars}<dial> <&app(...)>``: values with spaces are quoted, as is an application argument
    with spaces (the API line is split at spaces; unquoted, ``&socket(h:p async full)`` would lose
    ``async full``)."""
    if not dial or any(ch.isspace() for ch in dial):
        raise CommandError(f"dial string {dial!r} is empty or holds a space")
    if any(ch in application for ch in "\r\n'"):
        raise CommandError(f"application {application!r} holds a line end or a quote")
    if " " in application:
        application = f"'{application}'"
    return f"originate {variables(pairs, quote_spaces=True)}{dial} {application}"


# --- commands on one channel --------------------------------------------------------------------------

def uuid_kill(channel: str, cause: str = "") -> str:
    """Hang the channel up, with a hang-up cause (NORMAL_CLEARING ...) or FreeSWITCH's default."""
    if cause:
        _check(_CAUSE, cause, "hang-up cause")
    return f"uuid_kill {uuid(channel)}" + (f" {cause}" if cause else "")


def transfer_data(destination: str, context: str = "default", dialplan: str = "XML") -> str:
    """``<destination> XML <context>``: where a transfer sends a channel (also the ``transfer`` app's data)."""
    if not destination or _VALUE_BAD.search(destination) or " " in destination:
        raise CommandError(f"not a transfer destination: {destination!r}")
    return f"{destination} {name(dialplan)} {name(context)}"


def uuid_transfer(channel: str, destination: str, context: str = "default", *, leg: str = "",
                  dialplan: str = "XML") -> str:
    """Send the channel (``leg='-both'``: and its partner; ``'-bleg'``: its partner) to a dialplan
    destination; ``dialplan='inline'`` runs ``destination`` as ``app:args`` inline."""
    if leg not in ("", "-both", "-bleg"):
        raise CommandError(f"uuid_transfer leg must be -both or -bleg, not {leg!r}")
    side = f"{leg} " if leg else ""
    if dialplan == "inline":
        if not destination or any(ch.isspace() for ch in destination) or "\n" in destination:
            raise CommandError(f"not an inline destination: {destination!r}")
        return f"uuid_transfer {uuid(channel)} {side}{destination} inline"
    return f"uuid_transfer {uuid(channel)} {side}{transfer_data(destination, context, dialplan)}"


def uuid_hold(channel: str, how: str = "on") -> str:
    """Hold (``on``: music to the partner), ``off`` (resume) or ``toggle``."""
    if how not in ("on", "off", "toggle"):
        raise CommandError(f"uuid_hold takes on, off or toggle, not {how!r}")
    return f"uuid_hold {uuid(channel)}" if how == "on" else f"uuid_hold {how} {uuid(channel)}"


def uuid_setvar(channel: str, variable: str, val: str | None = None) -> str:
    """Set a channel variable (None: unset it). The value is the rest of the line, taken as given (spaces
    and ``${...}`` included: FreeSWITCH stores it unexpanded); only a line end is refused."""
    command = f"uuid_setvar {uuid(channel)} {name(variable)}"
    if val is None:
        return command
    val = str(val)
    if not val or any(ch in val for ch in "\r\n\x00"):
        raise CommandError(f"uuid_setvar value {val!r} is empty or holds a line end")
    return f"{command} {val}"


def uuid_getvar(channel: str, variable: str) -> str:
    """Read a channel variable (FreeSWITCH answers its value, or _undef_)."""
    return f"uuid_getvar {uuid(channel)} {name(variable)}"


def _path(path: str) -> str:
    if not path or any(ch.isspace() for ch in path):
        raise CommandError(f"not a file path without spaces: {path!r}")
    return path


def uuid_record(channel: str, action: str, path: str) -> str:
    """Start or stop recording the channel to ``path`` (a path on the switch's side)."""
    if action not in ("start", "stop"):
        raise CommandError(f"uuid_record takes start or stop, not {action!r}")
    return f"uuid_record {uuid(channel)} {action} {_path(path)}"


def uuid_broadcast(channel: str, application: str, argument: str, side: str = "aleg") -> str:
    """Run ``application::argument`` on the channel (``aleg``), its partner (``bleg``) or ``both``."""
    if side not in _LEG_SIDES:
        raise CommandError(f"uuid_broadcast side must be one of {', '.join(_LEG_SIDES)}, not {side!r}")
    if any(ch.isspace() for ch in argument):
        raise CommandError(f"uuid_broadcast argument {argument!r} holds a space")
    return f"uuid_broadcast {uuid(channel)} {name(application)}::{argument} {side}"


def uuid_bridge(channel: str, other: str) -> str:
    """Bridge two existing channels."""
    return f"uuid_bridge {uuid(channel)} {uuid(other)}"


def uuid_send_info(channel: str, payload: str) -> str:
    """Send a SIP INFO on the channel's dialog (a phone or a test caller reads it as a cue)."""
    return f"uuid_send_info {uuid(channel)} {text(payload)}"


def uuid_break(channel: str, everything: bool = True) -> str:
    """Stop what the channel plays (``all``: its queued playbacks too)."""
    return f"uuid_break {uuid(channel)}" + (" all" if everything else "")


def conference_room(room: str, profile: str) -> str:
    """``room@profile``: a conference the ``conference`` application joins."""
    return f"{_check(_ROOM, room, 'conference room name')}@{name(profile)}"


# --- switch-wide queries ---------------------------------------------------------------------------------

def global_getvar(variable: str) -> str:
    """Read a global variable of the switch's configuration."""
    return f"global_getvar {name(variable)}"


def show_channels(as_json: bool = True) -> str:
    """The switch's channel list (reconciliation)."""
    return "show channels as json" if as_json else "show channels"


def show_channels_count() -> str:
    """How many channels the switch has (the dialer's pacing)."""
    return "show channels count"


def sofia_registrations(profile: str, user: str = "") -> str:
    """The live registrations of a SIP profile (those whose user contains ``user``, when given)."""
    return f"sofia status profile {name(profile)} reg" + (f" {extension(user)}" if user else "")

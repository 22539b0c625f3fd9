"""The one dial-out policy: which numbers the platform may call, for whom and why (toll-fraud guard).

Every path that makes the switch dial a number asks ``DialOut.authorise`` first and dials what it returns:
agent outbound calls and call-backs, blind/attended transfers and three-way to a number or a department
phone, queue overflow to a number, the IVR's forward to a duty phone, outbound campaigns, faxes (typed on a
ticket or keyed by a caller for material). A refusal raises ``DialRefused`` (zh / en, for the desk and the
forms) and is stored in ``DialOutLog`` with who, what and why; so is every allowed call of a capped actor
(a staff member, a caller), which is what the daily cap counts.

The rules are pure (``normalise``, ``classify``, ``DialPolicy.classes_for``, ``decide``); ``DialOut`` adds
the stored cap and the log. Shipped default: domestic numbers only (seats, emergency, local, mobile,
long-distance); international and premium/special-service numbers need a rule from the administrator.
It lives in the recorder, the floor below every path that dials (the ACD and the IVR above it, faxes here),
with its log beside the call records (docs/architecture.md):

  HOTLINE_DIALOUT_RULES      ``purpose/role=class,class;...`` with ``*`` for any (most specific wins:
                             purpose/role, purpose/*, */role, */*), e.g. ``transfer/team_lead=...,international``
  HOTLINE_DIALOUT_DAILY_CAP  external calls a staff member may place a day (0: no cap; default 200)
  HOTLINE_DIALOUT_CALLER_CAP numbers a caller's keyed requests may dial a day (material faxes; default 3)
  HOTLINE_DIALOUT_TEMPLATE   how an external number is dialled (default ``sofia/gateway/carrier/{number}``)
  HOTLINE_AREA_CODE          the centre's own area code (``0571``): 0571xxxxxxxx counts as local
  HOTLINE_EXTENSION_LENGTH   longest seat extension (default 4)
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from recorder.models import DialOutLog
from switch import commands

log = logging.getLogger(__name__)

CLASSES = ("internal", "emergency", "local", "mobile", "domestic", "international", "premium", "unknown")
CLASS_LABELS = {"internal": "内部分机", "emergency": "紧急电话", "local": "本地", "mobile": "手机",
                "domestic": "国内长途", "international": "国际", "premium": "特服/声讯", "unknown": "无法识别"}
DOMESTIC = frozenset({"internal", "emergency", "local", "mobile", "domestic"})
UNCAPPED = frozenset({"internal", "emergency"})  # own seats and 110/119/120/122 never count against the cap
PURPOSES = ("outbound", "call_back", "call_team_lead", "transfer", "three_way", "overflow", "ivr_forward",
            "campaign", "fax", "material_fax")
DEFAULT_RULES = "*/*=" + ",".join(c for c in CLASSES if c in DOMESTIC)
DEFAULT_TEMPLATE = "sofia/gateway/carrier/{number}"

EMERGENCY = frozenset({"110", "119", "120", "122"})
_MOBILE = re.compile(r"1[3-9][0-9]{9}\Z")
_PREMIUM = (re.compile(r"16[089][0-9]{4,}\Z"),          # 1600/1680/1690 information lines (声讯台)
            re.compile(r"9[56][0-9]{3,6}\Z"),           # 95xxx/96xxx service numbers
            re.compile(r"1[0-9]{2,5}\Z"),               # 1xx, 1xxxx, 1xxxxx short codes (114, 10086, 116114)
            re.compile(r"0[1-9][0-9]{1,2}16[089][0-9]{4,5}\Z"))  # area code + 168/160/169 info line
_DOMESTIC = (re.compile(r"0[1-9][0-9]{8,10}\Z"), re.compile(r"[48]00[0-9]{7}\Z"))
_LOCAL = re.compile(r"[2-9][0-9]{6,7}\Z")


class DialRefused(ValueError):
    """A dial-out the policy refuses; the message says why in zh-CN and English."""


def normalise(raw: str) -> str:
    """Digits as the carrier gets them: separators dropped, +86/0086 made national (0 before an area code),
    any other + made 00. ValueError for anything but digits after that."""
    text = re.sub(r"[ \-().]", "", str(raw or ""))  # a tab or line end stays, and is refused
    for prefix in ("+86", "0086"):
        if text.startswith(prefix) and len(text) > len(prefix):
            rest = text[len(prefix):]
            text = rest if _MOBILE.match(rest) or rest.startswith("0") else "0" + rest
            break
    else:
        if text.startswith("+"):
            text = "00" + text[1:]
    if not re.fullmatch(r"[0-9]{3,24}", text):
        raise ValueError(f"not a phone number: {str(raw)[:40]!r}")
    return text


def classify(number: str, extension_length: int = 4, area_code: str = "") -> str:
    """The class of a normalised number under Chinese numbering (see CLASSES)."""
    if number in EMERGENCY:
        return "emergency"
    if number.startswith("00"):
        return "international"
    if len(number) <= extension_length and not (len(number) == 3 and number.startswith("1")):
        return "internal"
    if _MOBILE.match(number):
        return "mobile"
    if any(p.match(number) for p in _PREMIUM):
        return "premium"
    if area_code and number.startswith(area_code) and _LOCAL.match(number[len(area_code):]):
        return "local"
    if any(p.match(number) for p in _DOMESTIC):
        return "domestic"
    if _LOCAL.match(number):
        return "local"
    return "unknown"


def parse_rules(text: str) -> dict[tuple[str, str], frozenset[str]]:
    """``purpose/role=class,class;...`` -> {(purpose, role): classes}; ValueError naming what is wrong."""
    rules: dict[tuple[str, str], frozenset[str]] = {}
    for part in (text or "").split(";"):
        if not part.strip():
            continue
        key, eq, value = part.partition("=")
        purpose, slash, role = key.strip().partition("/")
        if not eq or not slash or not purpose or not role:
            raise ValueError(f"HOTLINE_DIALOUT_RULES: {part.strip()!r} is not purpose/role=classes")
        if purpose != "*" and purpose not in PURPOSES:
            raise ValueError(f"HOTLINE_DIALOUT_RULES: unknown purpose {purpose!r} (one of {', '.join(PURPOSES)})")
        classes = frozenset(c.strip() for c in value.split(",") if c.strip())
        unknown = sorted(classes - set(CLASSES))
        if unknown:
            raise ValueError(f"HOTLINE_DIALOUT_RULES: unknown number class {', '.join(unknown)}")
        rules[(purpose, role.strip())] = classes
    return rules


@dataclass(frozen=True)
class DialPolicy:
    """Allowed number classes per purpose and role, the daily caps and the carrier's dial template."""

    rules: dict = field(default_factory=lambda: parse_rules(DEFAULT_RULES))
    daily_cap: int = 200
    caller_cap: int = 3
    template: str = DEFAULT_TEMPLATE
    area_code: str = ""
    extension_length: int = 4
    tz: str = "Asia/Shanghai"

    @classmethod
    def from_config(cls, config) -> "DialPolicy":
        """From the HOTLINE_DIALOUT_* settings (config.extra); a bad value is a ValueError that names it."""
        extra = getattr(config, "extra", {}) or {}

        def integer(name, default):
            raw = str(extra.get(name, "") or "").strip()
            if not raw:
                return default
            if not raw.isascii() or not raw.isdigit():
                raise ValueError(f"{name} must be a whole number, got {raw!r}")
            return int(raw)

        rules = parse_rules(DEFAULT_RULES)
        rules.update(parse_rules(extra.get("HOTLINE_DIALOUT_RULES", "")))
        gateway = extra.get("HOTLINE_GATEWAY", "") or "carrier"
        template = extra.get("HOTLINE_DIALOUT_TEMPLATE", "") or f"sofia/gateway/{gateway}/{{number}}"
        if "{number}" not in template:
            raise ValueError(f"HOTLINE_DIALOUT_TEMPLATE {template!r} has no {{number}}")
        area = str(extra.get("HOTLINE_AREA_CODE", "") or "").strip()
        if area and not re.fullmatch(r"0[1-9][0-9]{1,2}", area):
            raise ValueError(f"HOTLINE_AREA_CODE must look like 010 or 0571, got {area!r}")
        return cls(rules=rules, daily_cap=integer("HOTLINE_DIALOUT_DAILY_CAP", cls.daily_cap),
                   caller_cap=integer("HOTLINE_DIALOUT_CALLER_CAP", cls.caller_cap), template=template,
                   area_code=area, extension_length=integer("HOTLINE_EXTENSION_LENGTH", cls.extension_length) or 4,
                   tz=getattr(config, "tz", cls.tz) or cls.tz)

    def classes_for(self, purpose: str, roles) -> frozenset[str]:
        """The classes ``roles`` may dial for ``purpose``: per role the most specific rule, then the union."""
        allowed: set[str] = set()
        for role in (tuple(roles) or ("system",)):
            for key in ((purpose, role), (purpose, "*"), ("*", role), ("*", "*")):
                if key in self.rules:
                    allowed |= self.rules[key]
                    break
        return frozenset(allowed)

    def describe(self) -> list[tuple[str, str, list[str]]]:
        """The rules as (purpose, role, classes) rows, for the admin page."""
        return [(p, r, [c for c in CLASSES if c in classes]) for (p, r), classes in sorted(self.rules.items())]


@dataclass(frozen=True)
class Decision:
    """What the policy says about one number: allowed or not, the number as dialled, its class, why."""

    allowed: bool
    number: str
    number_class: str
    reason: str = ""


def decide(policy: DialPolicy, raw: str, purpose: str, roles=(), used_today: int = 0, cap: int = 0) -> Decision:
    """Pure: may ``roles`` dial ``raw`` for ``purpose`` with ``used_today`` capped calls behind them?"""
    try:
        number = normalise(raw)
    except ValueError:
        return Decision(False, str(raw or "")[:32], "unknown", f"号码格式不正确 / not a phone number: {str(raw)[:32]!r}")
    kind = classify(number, policy.extension_length, policy.area_code)
    if kind not in policy.classes_for(purpose, roles):
        return Decision(False, number, kind, f"不允许拨打{CLASS_LABELS[kind]}号码 {number} / "
                                             f"{kind} numbers may not be dialled ({purpose})")
    if cap > 0 and kind not in UNCAPPED and used_today >= cap:
        return Decision(False, number, kind, f"今日外呼已达上限 {cap} 次 / the daily dial-out cap of {cap} is reached")
    return Decision(True, number, kind)


class DialOut:
    """The enforcement point: decide, count against the stored daily cap, log refusals (and capped calls),
    and build the dial string of an allowed number."""

    def __init__(self, policy: DialPolicy | None = None, clock=None):
        self.policy = policy or DialPolicy()
        self.clock = clock

    @classmethod
    def from_config(cls, config, clock=None) -> "DialOut":
        return cls(DialPolicy.from_config(config), clock)

    def _now(self) -> dt.datetime:
        moment = self.clock.now() if self.clock else dt.datetime.now(dt.timezone.utc)
        return moment.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def _day_start(self, now: dt.datetime) -> dt.datetime:
        """Local midnight of ``now`` (naive UTC in, naive UTC out): the cap is per working day."""
        zone = ZoneInfo(self.policy.tz)
        local = now.replace(tzinfo=dt.timezone.utc).astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def authorise(self, raw: str, purpose: str, *, user=None, caller: str = "", detail: str = "") -> Decision:
        """Allowed: the Decision (dial ``decision.number``); else DialRefused, logged with who/what/why.

        ``user``: the staff member on whose behalf the switch dials (their roles and daily cap); ``caller``:
        the citizen whose keyed request dials (the caller cap); neither: the system (role ``system``)."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown dial-out purpose {purpose!r}")
        roles = tuple(sorted(user.role_set)) if user is not None else ()
        actor, cap = "system", 0
        if user is not None:
            actor, cap = f"user:{user.id}", self.policy.daily_cap
        elif caller:
            actor, cap = f"caller:{re.sub(r'[^0-9+]', '', caller)[:24]}", self.policy.caller_cap
        now = self._now()
        used = 0
        if cap > 0:
            used = (DialOutLog.select().where((DialOutLog.actor == actor) & DialOutLog.allowed
                                              & (DialOutLog.at >= self._day_start(now))
                                              & DialOutLog.number_class.not_in(tuple(UNCAPPED))).count())
        decision = decide(self.policy, raw, purpose, roles, used, cap)
        if not decision.allowed or (cap > 0 and decision.number_class not in UNCAPPED):
            DialOutLog.create(at=now, actor=actor[:64], user=user, purpose=purpose, number=decision.number[:32],
                              number_class=decision.number_class, allowed=decision.allowed,
                              reason=(decision.reason or detail)[:255])
        if not decision.allowed:
            log.warning("dial-out refused: %s %s %s (%s): %s", actor, purpose, decision.number,
                        decision.number_class, decision.reason)
            raise DialRefused(decision.reason)
        return decision

    def recheck(self, raw: str, purpose: str, *, user=None, detail: str = "") -> Decision:
        """The rules again for a dial-out allowed earlier and done now (a queued fax): the number's class
        under today's policy, not counted against the cap again; a refusal is logged and raises DialRefused."""
        roles = tuple(sorted(user.role_set)) if user is not None else ()
        decision = decide(self.policy, raw, purpose, roles)
        if not decision.allowed:
            actor = f"user:{user.id}" if user is not None else "system"
            DialOutLog.create(at=self._now(), actor=actor, user=user, purpose=purpose, number=decision.number[:32],
                              number_class=decision.number_class, allowed=False,
                              reason=(decision.reason or detail)[:255])
            log.warning("dial-out refused when done: %s %s %s: %s", actor, purpose, decision.number, decision.reason)
            raise DialRefused(decision.reason)
        return decision

    def dial_string(self, decision: Decision, extension_dial: str = "user/{extension}") -> str:
        """How the switch dials an allowed number: a seat by its extension, anything else by the carrier
        template (switch.commands.CommandError for a template that would break a command)."""
        if decision.number_class == "internal":
            return commands.from_template(extension_dial, extension=decision.number)
        return commands.from_template(self.policy.template, number=decision.number)

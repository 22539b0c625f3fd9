"""Conferences (mod_conference): the conference application, which holds a member until it is hung up,
kicked or transferred away; `api conference` (list, json_list, hup, kick, mute, unmute, deaf, undeaf); and
the conference::maintenance events as mod_conference fires them: conference-create, add-member,
floor-change, del-member, hup-member / kick-member, mute-member / unmute-member, conference-destroy.
Follows tests/transcripts/acd_bridge_eavesdrop_record_transfer_conference.txt (uuid_transfer -both into a
conference, conference list / json_list / hup all, every maintenance event's shape)."""
from __future__ import annotations

import json
import re
import time

import gevent

from .apps import ChannelRunner
from .channel import new_uuid


SUBCLASS = "conference::maintenance"

_ORIGINS = {
    "conference-create": ("mod_conference.c", "conference_new", "3848"),
    "conference-destroy": ("mod_conference.c", "conference_thread_run", "863"),
    "add-member": ("conference_member.c", "conference_member_add", "962"),
    "del-member": ("conference_member.c", "conference_member_del", "1355"),
    "floor-change": ("conference_member.c", "conference_member_set_floor_holder", "1158"),
    "hup-member": ("conference_api.c", "conference_api_sub_hup", "871"),
    "kick-member": ("conference_api.c", "conference_api_sub_kick", "900"),
    "mute-member": ("conference_api.c", "conference_api_sub_mute", "437"),
    "unmute-member": ("conference_api.c", "conference_api_sub_unmute", "545"),
}


def _conference_headers(conf) -> list[tuple[str, str]]:
    return [("Conference-Name", conf.name), ("Conference-Domain", "127.0.0.1"),
            ("Conference-Size", str(len(conf.members))), ("Conference-Ghosts", "0"),
            ("Conference-Profile-Name", conf.profile), ("Conference-Unique-ID", conf.uuid)]


def _member_headers(conf, m) -> list[tuple[str, str]]:
    ch = m.channel
    return _conference_headers(conf) + [("Floor", "true" if conf.floor is m else "false")] + \
        ch.channel_block() + ch.profile_block("Caller") + [
            ("Video", "false"), ("Hear", "false" if "deaf" in m.flags else "true"), ("See", "true"),
            ("Speak", "false" if "mute" in m.flags else "true"), ("Talking", "false"),
            ("Mute-Detect", "false"), ("Hold", "false"), ("Member-ID", str(m.id)),
            ("Member-Type", "moderator" if "moderator" in m.flags else "member"), ("Member-Ghost", "false"),
            ("Energy-Level", "100"), ("Current-Energy", "0")]


def conference_event(sw, conf, action: str) -> None:
    """An event about the conference itself (create, destroy)."""
    sw.emit_custom(SUBCLASS, _conference_headers(conf) + [("Action", action)], origin=_ORIGINS[action])


def member_event(sw, conf, m, action: str) -> None:
    """An event about one member (add, del, hup, kick, mute, unmute)."""
    sw.emit_custom(SUBCLASS, _member_headers(conf, m) + [("Action", action)], origin=_ORIGINS[action])


def set_floor(sw, conf, m) -> None:
    """The floor moves to `m` (None: nobody holds it): floor-change with Old-ID / New-ID."""
    old = conf.floor
    if old is m:
        return
    conf.floor = m
    headers = _conference_headers(conf) + [("Action", "floor-change"),
                                           ("Old-ID", str(old.id) if old is not None else "none")]
    if m is not None:
        headers += _member_headers(conf, m)
    headers.append(("New-ID", str(m.id) if m is not None else "none"))
    sw.emit_custom(SUBCLASS, headers, origin=_ORIGINS["floor-change"])


def talks(m) -> bool:
    """Whether a member sends sound, which is what wins the floor: a phone that talks does; a loopback leg,
    whose far end sends nothing, or a phone scripted silent does not (as captured: the SIP agent took the
    floor, the loopback customer who joined before never did)."""
    ch = m.channel
    return getattr(ch, "loopback_peer", None) is None and (ch.agent is None or ch.agent.sends_media)


def joined(sw, conf, m) -> None:
    """A member joined (counted already; the conference was created before it): add-member, and the floor
    when nobody holds it and it talks."""
    member_event(sw, conf, m, "add-member")
    if conf.floor is None and talks(m):
        set_floor(sw, conf, m)


def left(sw, conf, m) -> None:
    """A member leaves: the floor passes on while it is still counted (as captured: a floor-change to nobody
    reads Old-ID none), then it is taken out (del-member); the last one out destroys the conference."""
    if conf.floor is m:
        nxt = next((o for o in conf.members if o is not m and talks(o)), None)
        if nxt is None:
            conf.floor = None
            sw.emit_custom(SUBCLASS, _conference_headers(conf) + [
                ("Action", "floor-change"), ("Old-ID", "none"), ("New-ID", "none")], origin=_ORIGINS["floor-change"])
        else:
            set_floor(sw, conf, nxt)
    conf.members.remove(m)
    member_event(sw, conf, m, "del-member")
    if not conf.members:
        conference_event(sw, conf, "conference-destroy")


class Member:
    def __init__(self, member_id, channel, flags):
        self.id = member_id
        self.channel = channel
        self.flags = set(flags)
        self.join_sim = 0.0


class Conference:
    def __init__(self, name, profile="default"):
        self.name = name
        self.profile = profile
        self.uuid = new_uuid()
        self.members: list[Member] = []
        self.floor: Member | None = None
        self.next_id = 1
        self.created = time.monotonic()


class ConferenceMixin:
    """Conferences. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def conference_app(self, runner: ChannelRunner, arg: str) -> str:
        """Join a conference until hung up, kicked or transferred away."""
        name_part = arg.split("+", 1)[0]
        flags = re.findall(r"flags\{([^}]*)\}", arg)
        name, _, profile = name_part.partition("@")
        conf = self.conferences.get(name)
        if conf is None:
            conf = self.conferences[name] = Conference(name, profile or "default")
            conference_event(self, conf, "conference-create")   # before anyone is in it
        ch = runner.ch
        member = Member(conf.next_id, ch, (flags[0].split("|") if flags else []))
        member.join_sim = self.sim_now()
        conf.next_id += 1
        # what mod_conference leaves on the member's channel; the conference reads its sound as L16
        for k, v in (("conference_name", conf.name), ("app_session_uuid", conf.uuid),
                     ("conference_member_id", member.id),
                     ("conference_moderator", "true" if "moderator" in member.flags else "false"),
                     ("conference_ghost", "false"), ("conference_uuid", conf.uuid)):
            ch.set_var(k, v)
        ch.read_codec = ("L16", 8000, 128000)
        conf.members.append(member)
        joined(self, conf, member)
        self.changed.pulse()
        member.kicked = False
        runner.wait_until(lambda: runner._stopped() or member.kicked, None)
        left(self, conf, member)
        ch.read_codec = None
        if not conf.members:
            self.conferences.pop(name, None)
        if getattr(member, "hup", False):
            # `conference hup`: out of the conference first (the application ends answered), then hung up
            gevent.spawn(self._hangup_after_bridge, ch)
        self.changed.pulse()
        return "_none_"

    def api_conference(self, arg):
        p = arg.split()
        if not p:
            return "-ERR Usage: conference <name> <cmd>\n"
        if p[0] == "list" and len(p) == 1:
            out = ""
            for conf in self.conferences.values():
                out += (f"+OK Conference {conf.name} ({len(conf.members)} member{'s' if len(conf.members) != 1 else ''}"
                        f" rate: 8000 flags: running|answered|enforce_min|dynamic|exit_sound|enter_sound)\n")
                out += self._conf_list(conf)
            return out or "+OK No active conferences.\n"
        conf = self.conferences.get(p[0])
        if conf is None:
            return f"-ERR Conference {p[0]} not found\n"
        sub = p[1] if len(p) > 1 else "list"
        if sub == "list":
            return self._conf_list(conf)
        if sub == "json_list":
            return self._conf_json(conf)
        if sub in ("hup", "kick") and len(p) > 2:
            # (mod_conference walks its member list newest first)
            members = list(reversed(conf.members)) if p[2] == "all" else [m for m in conf.members
                                                                          if str(m.id) == p[2]]
            if not members:
                return f"-ERR Non-Existant ID {p[2]}\n"
            for m in members:
                member_event(self, conf, m, f"{sub}-member")
                m.hup = sub == "hup"
                m.kicked = True
                m.channel.runner.poke()
            return "".join(f"+OK {'hup' if sub == 'hup' else 'kicked'} {m.id}\n" for m in members)
        if sub in ("mute", "unmute", "deaf", "undeaf") and len(p) > 2:
            for m in conf.members:
                if p[2] == "all" or str(m.id) == p[2]:
                    (m.flags.add if sub in ("mute", "deaf") else m.flags.discard)(sub.replace("un", ""))
                    if sub in ("mute", "unmute"):
                        member_event(self, conf, m, f"{sub}-member")
            return f"+OK {sub} {p[2]}\n"
        return f"-ERR Unknown conference command {sub}\n"

    def _conf_list(self, conf: Conference) -> str:
        out = ""
        for m in reversed(conf.members):
            flags = "hear" + ("" if "mute" in m.flags else "|speak") + ("|floor" if conf.floor is m else "") + \
                ("|moderator" if "moderator" in m.flags else "")
            out += (f"{m.id};{m.channel.name};{m.channel.uuid};{m.channel.caller_name};"
                    f"{m.channel.caller_number};{flags};0;0;100\n")
        return out

    def _conf_json(self, conf: Conference) -> str:
        members = [{"type": "caller", "id": m.id, "flags": {
            "can_hear": "deaf" not in m.flags, "can_see": True, "can_speak": "mute" not in m.flags,
            "hold": False, "mute_detect": False, "talking": False, "has_video": False, "video_bridge": False,
            "has_floor": conf.floor is m, "is_moderator": "moderator" in m.flags, "end_conference": False,
            "mandatory_member_end_conference": False, "pass_digits": False},
            "uuid": m.channel.uuid, "caller_id_name": m.channel.caller_name,
            "caller_id_number": m.channel.caller_number, "join_time": int(self.sim_now() - m.join_sim),
            "last_talking": 0, "energy": 100, "volume_in": 0, "volume_out": 0, "output-volume": 0,
            "input-volume": 0} for m in reversed(conf.members)]
        # the fields and their order as captured (mod_conference's conference_jlist)
        return cjson([{"conference_name": conf.name, "member_count": len(conf.members), "ghost_count": 0,
                       "rate": 8000, "run_time": int(time.monotonic() - conf.created),
                       "conference_uuid": conf.uuid, "canvas_count": 0, "max_bw_in": 0, "force_bw_in": 0,
                       "video_floor_packets": 0, "locked": False, "destruct": False, "wait_mod": False,
                       "audio_always": False, "running": True, "answered": True, "enforce_min": True,
                       "bridge_to": False, "dynamic": True, "exit_sound": True, "enter_sound": True,
                       "recording": False, "video_bridge": False, "video_floor_only": False,
                       "video_rfc4579": False, "variables": {}, "members": members}])


def cjson(v, depth: int = 0) -> str:
    """JSON formatted like cJSON_Print (tabs, `"key":\tvalue`, arrays as `[a, b]`), as conference json_list."""
    if isinstance(v, dict):
        if not v:
            return "{\n" + "\t" * depth + "}"
        items = ["\t" * (depth + 1) + json.dumps(k, ensure_ascii=False) + ":\t" + cjson(x, depth + 1)
                 for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + "\t" * depth + "}"
    if isinstance(v, list):
        return "[" + ", ".join(cjson(x, depth + 1) for x in v) + "]"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v), ensure_ascii=False)

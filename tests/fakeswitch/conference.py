"""conference::maintenance events as mod_conference fires them (shapes from the acd capture in tests/transcripts):
conference-create, add-member, floor-change, del-member, hup-member / kick-member, mute-member /
unmute-member, conference-destroy."""
from __future__ import annotations

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

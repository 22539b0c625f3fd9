"""The SIP side (mod_sofia) as the hotline sees it: scripted phones (Agent) registered as user/NNNN, or
outside numbers reached over a gateway; their sofia::register / sofia::unregister events; the api commands
that read the registrations (`sofia status [profile internal reg]`, `sofia_contact`, `user_exists`, the rows
of `show registrations`). Follows tests/transcripts/acd_bridge_eavesdrop_record_transfer_conference.txt
(the agent's phone registering, sofia_contact, show registrations; README fact 11: `show registrations`
can be stale, `sofia status profile internal reg` is live)."""
from __future__ import annotations

import time

from .channel import FakeChannel, new_uuid
from .outbound import FakeCall


class Agent:
    """A scripted SIP phone registered as user NNNN (or an outside number reached over a gateway)."""

    def __init__(self, switch, number, registered=True, answer=True, answer_delay=0.5, talk_seconds=None,
                 domain="127.0.0.1", max_calls=None, network_port=5070, script=None):
        self.sw = switch
        self.number = str(number)
        self.registered = registered
        self.answer = answer            # True, False/"reject", "busy", "timeout"
        self.answer_delay = answer_delay
        self.talk_seconds = talk_seconds
        self.domain = domain
        self.max_calls = max_calls
        self.network_port = network_port
        self.call_id = f"{new_uuid()[:8]}@127.0.0.1"
        self.script = script                    # steps this party runs when its leg reaches the socket app
        # A desk phone sends RTP once it answered; one that does not never gets an application broadcast to its
        # bridged leg run (FreeSWITCH runs those after the leg has read media: switch_ivr_bridge.c).
        self.sends_media = True
        self.socket_calls: list[FakeCall] = []
        self.channels: list[FakeChannel] = []   # every leg that rang this agent
        self.offered = 0

    @property
    def contact(self) -> str:
        return f"sip:{self.number}@127.0.0.1:{self.network_port}"

    @property
    def current(self) -> FakeChannel | None:
        """The agent's live leg (latest first), if any."""
        for ch in reversed(self.channels):
            if not ch.hung_up:
                return ch
        return None

    @property
    def answered_calls(self) -> list[FakeChannel]:
        return [ch for ch in self.channels if ch.answered_us]

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """The agent hangs up the live leg."""
        ch = self.current
        if ch is not None:
            self.sw.hangup(ch, cause, by="agent", remote=True)

    def press(self, digits: str) -> None:
        """The agent presses digits on the live leg (eavesdrop whisper/barge keys...)."""
        ch = self.current
        if ch is not None:
            for d in digits:
                ch.runner.dtmf(d)

    def wait_ringing(self, timeout: float = 5.0) -> FakeChannel:
        """Wait until a leg rings this agent."""
        count = self.offered
        return self.sw.wait_for(lambda: self.current if self.offered > count or self.current else None,
                                timeout, f"agent {self.number} ringing")

    def wait_answered(self, timeout: float = 5.0) -> FakeChannel:
        return self.sw.wait_for(lambda: self.current if self.current and self.current.answered else None,
                                timeout, f"agent {self.number} answered")

    def __repr__(self) -> str:
        return f"Agent({self.number} registered={self.registered} answer={self.answer})"


class SofiaMixin:
    """SIP phones and registrations. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def add_agent(self, number, registered: bool = True, answer=True, answer_delay: float = 0.5,
                  talk_seconds: float | None = None, max_calls: int | None = None, script=None) -> Agent:
        """A scripted phone for user/NNNN (or an outside number over a gateway)."""
        agent = Agent(self, number, registered=registered, answer=answer, answer_delay=answer_delay,
                      talk_seconds=talk_seconds, max_calls=max_calls, script=script,
                      network_port=5070 + len(self.agents))
        self.agents[agent.number] = agent
        if registered:
            self._emit_register(agent)
        return agent

    def set_registered(self, number, registered: bool) -> None:
        """Register or unregister an agent's phone (sofia::register / sofia::unregister)."""
        agent = self.agents[str(number)]
        if agent.registered == registered:
            return
        agent.registered = registered
        if registered:
            agent.call_id = f"{new_uuid()[:8]}@127.0.0.1"
            self._emit_register(agent)
        else:
            self.emit_custom("sofia::unregister", [
                ("profile-name", "internal"), ("from-user", agent.number), ("from-host", agent.domain),
                ("contact", f'"" <{agent.contact};transport=udp>'), ("call-id", agent.call_id),
                ("rpid", "unknown"), ("status", "Unregistered(UDP)"), ("expires", "0"),
                ("to-user", agent.number), ("to-host", agent.domain), ("network-ip", "127.0.0.1"),
                ("network-port", str(agent.network_port)), ("username", agent.number),
                ("realm", agent.domain), ("user-agent", "fake-agent")],
                origin=("sofia_reg.c", "sofia_reg_handle_register_token", "1580"))

    def _emit_register(self, agent: Agent) -> None:
        self.emit_custom("sofia::register", [
            ("profile-name", "internal"), ("from-user", agent.number), ("from-host", agent.domain),
            ("presence-hosts", f"{agent.domain},{agent.domain}"),
            ("contact", f'"" <{agent.contact};transport=udp>'), ("call-id", agent.call_id),
            ("rpid", "unknown"), ("status", "Registered(UDP)"), ("expires", "600"),
            ("to-user", agent.number), ("to-host", agent.domain), ("network-ip", "127.0.0.1"),
            ("network-port", str(agent.network_port)), ("username", agent.number), ("realm", agent.domain),
            ("user-agent", "fake-agent"), ("sip_number_alias", agent.number),
            ("sip_auth_username", agent.number), ("sip_auth_realm", agent.domain),
            ("number_alias", agent.number), ("user_name", agent.number), ("domain_name", agent.domain),
            ("user_context", "default"), ("effective_caller_id_name", f"Extension {agent.number}"),
            ("effective_caller_id_number", agent.number)],
            origin=("sofia_reg.c", "sofia_reg_handle_register_token", "2059"))

    def _registration_row(self, a: Agent) -> dict:
        return {"reg_user": a.number, "realm": a.domain, "token": a.call_id,
                "url": f"sofia/internal/{a.contact};transport=udp", "expires": str(int(time.time()) + 600),
                "network_ip": "127.0.0.1", "network_port": str(a.network_port), "network_proto": "udp",
                "hostname": self.hostname, "metadata": ""}

    def api_sofia(self, arg):
        words = arg.split()
        if words[:4] == ["status", "profile", "internal", "reg"] or words[:4] == ["status", "profile", "internal",
                                                                                  "user"]:
            regs = [a for a in self.agents.values() if a.registered]
            out = "\nRegistrations:\n" + "=" * 97 + "\n"
            for a in regs:
                out += (f"Call-ID:    \t{a.call_id}\nUser:       \t{a.number}@{a.domain}\n"
                        f"Contact:    \t\"\" <{a.contact};transport=udp>\nAgent:      \tfake-agent\n"
                        f"Status:     \tRegistered(UDP)(unknown) EXP(2099-01-01 00:00:00) EXPSECS(599)\n"
                        f"Ping-Status:\tReachable\nPing-Time:\t0.00\nHost:       \t{self.hostname}\n"
                        f"IP:         \t127.0.0.1\nPort:       \t{a.network_port}\nAuth-User:  \t{a.number}\n"
                        f"Auth-Realm: \t{a.domain}\nMWI-Account:\t{a.number}@{a.domain}\n\n")
            out += f"Total items returned: {len(regs)}\n" + "=" * 97 + "\n"
            return out
        if words[:1] == ["status"]:
            return ("                     Name\t   Type\t                                      Data\tState\n"
                    + "=" * 97 + "\n"
                    "                 internal\tprofile\t           sip:mod_sofia@127.0.0.1:5060\tRUNNING (0)\n"
                    + "=" * 97 + "\n1 profile 0 aliases\n")
        return "-ERR Usage: sofia status|... (fake)\n"

    def api_sofia_contact(self, arg):
        user = arg.split("@")[0].split("/")[-1]
        a = self.agents.get(user)
        if a is None or not a.registered:
            return "error/user_not_registered"
        return f"sofia/internal/{a.contact};transport=udp"

    def api_user_exists(self, arg):
        p = arg.split()
        return "true" if len(p) >= 2 and p[1] in self.agents else "false"

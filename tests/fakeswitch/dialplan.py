"""The dialplan: a caller dialling an extension that runs `socket <app> async full` (place_call, with
freeswitch-conf's standby socket), which extension runs what (socket routes, an agent's extension bridging
user/NNNN, the captures' 9999 that answers and parks, park otherwise), and transfers (`uuid_transfer
[-bleg|-both]`, the transfer application), where the socket app loses control of a channel that leaves it.
Follows tests/transcripts/outbound_socket_async_full.txt and outbound_socket_sip_caller_rfc2833.txt (a SIP
caller entering the socket app) and acd_bridge_eavesdrop_record_transfer_conference.txt (uuid_transfer to
9999, and -both into a conference). The socket connection itself is outbound.py's FakeCall."""
from __future__ import annotations

import gevent

from . import lifecycle
from .channel import FakeChannel, new_uuid
from .outbound import FakeCall


class DialplanMixin:
    """Extensions, the socket app and transfers. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def place_call(self, app_address, caller: str = "13800138000", destination: str = "12345",
                   script=None, caller_name: str = "", channel_name: str | None = None,
                   variables: dict | None = None, connect_timeout: float = 5.0, context: str = "public",
                   gateway: str | None = None, uuid: str | None = None, standby=None) -> FakeCall:
        """A call arriving at `destination` whose dialplan runs `socket <app_address> async full` (`uuid`:
        the channel's, e.g. one the app marked before; a new one when not given). ``standby``: the address
        of the pair's other app, tried when ``app_address`` refuses the connection, as freeswitch-conf's
        second `socket ${hotline_outbound_standby} async full` does."""
        if gateway:
            name = channel_name or f"sofia/external/{caller}@{gateway}"
            source_profile = "external"
        else:
            name = channel_name or f"sofia/internal/{caller}@127.0.0.1"
            source_profile = "internal"
        # A SIP caller without a display name shows its number as the name.
        ch = FakeChannel(uuid=uuid, name=name, direction="inbound", caller_number=caller,
                         caller_name=caller_name or caller,
                         destination=destination, context=context, dialplan="XML", source="mod_sofia",
                         username=caller if not gateway else None, network_addr="127.0.0.1",
                         presence_id=f"{caller}@127.0.0.1" if not gateway else None)
        ch.state, ch.call_state = "CS_NEW", "DOWN"
        ch.codec = None   # negotiated at answer / early media, as on a real SIP leg
        for k, v in (("sip_from_user", caller), ("sip_from_host", "127.0.0.1"),
                     ("sip_to_user", destination), ("sip_req_user", destination),
                     ("sofia_profile_name", source_profile), ("sip_network_ip", "127.0.0.1"),
                     ("sip_network_port", "5060"), ("sip_user_agent", "fake-caller"),
                     ("endpoint_disposition", "DELAYED NEGOTIATION"),   # an INVITE with SDP, as captured
                     ("dtmf_type", "rfc2833")):
            ch.set_var(k, v)
        if gateway:
            ch.set_var("sip_gateway_name", gateway)
        for k, v in (variables or {}).items():
            ch.set_var(k, v)
        host, port = app_address
        self.socket_routes.setdefault(destination, (host, port))
        ch.set_var("current_application_data", f"{host}:{port} async full")
        ch.set_var("current_application", "socket")
        ch.set_var("socket_host", host)
        call = FakeCall(self, ch, app_address, script, connect_timeout=connect_timeout, standby=standby)
        self.add_channel(ch, call.runner)
        self.calls.append(call)
        lifecycle.set_state(self, ch, "CS_INIT")
        self.emit_channel(ch, "CHANNEL_CREATE", state="CS_INIT", call_state="DOWN", state_number=2)
        lifecycle.incoming(self, ch)
        self.emit_channel(ch, "CHANNEL_EXECUTE", post=[
            ("Application", "socket"), ("Application-Data", f"{host}:{port} async full"),
            ("Application-UUID", new_uuid())])
        ch.executed.append(("socket", f"{host}:{port} async full"))
        call.start()
        return call

    def route_to_socket(self, extension: str, app_address) -> None:
        """Dialplan: `extension` runs `socket <app_address> async full` (place_call adds its destination)."""
        self.socket_routes[str(extension)] = tuple(app_address)

    def attach_socket(self, ch: FakeChannel, app_address, script=None) -> FakeCall:
        """An existing channel enters the socket application (originated to, or transferred to, 12345)."""
        call = ch.runner.call
        if call is not None:
            call.reenter(app_address)
            return call
        call = FakeCall(self, ch, app_address, script, runner=ch.runner)
        self.calls.append(call)
        if ch.agent is not None:
            ch.agent.socket_calls.append(call)
        gevent.spawn(call._connect)
        self.changed.pulse()
        return call

    def _route_extension(self, ch: FakeChannel, ext: str) -> None:
        if ext in self.socket_routes:
            self.attach_socket(ch, self.socket_routes[ext], getattr(ch.agent, "script", None))
        elif ext in self.agents:
            # The extension ends after its bridge: the end of the dialplan hangs the channel up.
            ch.set_var("hangup_after_bridge", "true")
            ch.runner.enqueue("bridge", f"user/{ext}")
        elif ext == "9999":
            # the captures' dialplan: extension 9999 answers and parks
            ch.runner.enqueue("answer", "")
            ch.runner.enqueue("park", "")
        else:
            ch.runner.enqueue("park", "")

    def api_uuid_transfer(self, arg):
        p = arg.split()
        if len(p) < 2:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        ch = self._channel_arg(p)
        legs = "aleg"
        rest = p[1:]
        if rest[0] in ("-bleg", "-both"):
            legs = rest.pop(0)[1:]
        if not rest:
            return "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
        dest = rest[0]
        dialplan = rest[1] if len(rest) > 1 else "XML"
        context = rest[2] if len(rest) > 2 else "default"
        targets = [ch]
        if legs == "bleg":
            targets = [ch.other] if ch.other else []
        elif legs == "both" and ch.other is not None:
            targets = [ch, ch.other]
        if len(targets) == 2:
            # both legs get their new caller profile first: the UNBRIDGE reads it (no Other-Leg block)
            for t in targets:
                lifecycle.transfer_profile(t, dest, dialplan, context, "bl_xfer")
                t.pending_state = "CS_ROUTING"
            self.unbridge(ch, hangup_peer=False)
        for n, t in enumerate(targets):
            self.transfer(t, dest, dialplan, context, profiled=len(targets) == 2)
            if n == 0 and len(targets) == 2:
                # the named leg gets there first (as captured: it is the conference's member 1)
                self.wait_quietly(lambda: t.hung_up or (not t.runner.to_route and t.runner.current is not None),
                                  1.0)
        return "+OK\n"

    def transfer(self, ch: FakeChannel, dest: str, dialplan: str = "XML", context: str = "default",
                 from_app: bool = False, profiled: bool = False) -> None:
        """Move a channel to a new destination (inline apps, an agent's extension, or park)."""
        # (Channel-Transfer-Time stays 0: the captures' uuid_transfer, inline and XML, never set it)
        ch.transfers.append((dest, dialplan, context))
        if not profiled:
            lifecycle.transfer_profile(ch, dest, dialplan, context, "bl_xfer" if not from_app else "xfer")
        ch.pending_state = "CS_ROUTING"   # what it ran ends reading state number 2, then it is routed
        ch.destination = dest
        call = ch.runner.call
        if call is not None:
            call.transfers.append((dest, dialplan, context))
        if ch.other is not None:
            self.unbridge(ch, hangup_peer=False)
        if not from_app and ch.runner.current is not None:
            ch.runner.interrupt()
        ch.runner.queue.clear()
        if call is not None and call.session is not None and ch.runner.socket_app is not None:
            # The channel leaves the extension that ran the socket application: the app loses control.
            app, data = ch.runner.socket_app
            ch.runner.socket_app = None
            gevent.spawn(self._socket_released, call, call.session, app, data)
        lifecycle.sort_cid(self, ch)   # the channel is given its new extension
        ch.hit_dialplan = True
        ch.runner.to_route = True
        if dialplan == "inline":
            lifecycle.inline_executes(ch)
            for item in dest.split(","):
                app, _, data = item.partition(":")
                ch.runner.enqueue(app, data)
        else:
            self._route_extension(ch, dest)

    def _socket_released(self, call, session, app, data):
        ch = call.channel
        self.wait_quietly(lambda: ch.runner.current is None or ch.runner.current.name != "transfer" or ch.hung_up,
                          2.0, "transfer complete")
        session.released = True
        # The socket app's own completion, seen by that socket before it is told to go.
        body = ch.event_body("CHANNEL_EXECUTE_COMPLETE", post=[
            ("Application", app), ("Application-Data", data), ("Application-Response", "_none_"),
            ("Application-UUID", new_uuid())])
        self.emit("CHANNEL_EXECUTE_COMPLETE", body)
        session.release()

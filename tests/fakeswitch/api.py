"""The api / bgapi entry point and the switch-wide commands. `api <cmd> <arg>` runs the switch's
`api_<cmd>` method, wherever it lives (each command sits with what it acts on: uuid_bridge in bridge.py,
sofia in sofia.py...); bgapi runs the same and fires BACKGROUND_JOB. Here: status, version, uptime,
hostname, global_getvar, reloadxml, `show channels|calls|registrations [as json]`. Follows
tests/transcripts/inbound_plain_and_json.txt (api version, api status, an unknown command, bgapi uptime
with its BACKGROUND_JOB)."""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime

from . import lifecycle
from .channel import FakeChannel

log = logging.getLogger(__name__)


VERSION = "FreeSWITCH Version 1.10.12-release~64bit (fake for tests)"


_CHANNEL_COLUMNS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "ip_addr", "dest",
    "application", "application_data", "dialplan", "context", "read_codec", "read_rate", "read_bit_rate",
    "write_codec", "write_rate", "write_bit_rate", "secure", "hostname", "presence_id", "presence_data",
    "accountcode", "callstate", "callee_name", "callee_num", "callee_direction", "call_uuid", "sent_callee_name",
    "sent_callee_num", "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest",
    "initial_dialplan", "initial_context",
)


class ApiMixin:
    """api and bgapi. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def run_job(self, command_line: str, job_uuid: str, owner: str | None) -> None:
        """bgapi: run the command, then fire BACKGROUND_JOB with the result as body."""
        body = self.api(command_line, owner=owner)
        cmd, _, arg = command_line.strip().partition(" ")
        headers = [("Job-UUID", job_uuid)]
        if owner:
            headers.append(("Job-Owner-UUID", owner))
        headers.append(("Job-Command", cmd))
        if arg:
            headers.append(("Job-Command-Arg", arg))
        self.emit("BACKGROUND_JOB", headers, body=body, job_owner=owner)

    def api(self, command_line: str, owner: str | None = None) -> str:
        """Run an api command and return the body the real switch would send."""
        self.api_log.append(command_line)
        self.changed.pulse()
        cmd, _, arg = command_line.strip().partition(" ")
        arg = arg.strip()
        if cmd:
            lifecycle.api_event(self, cmd, arg)
        handler = getattr(self, "api_" + cmd.lower(), None) if cmd else None
        if handler is None:
            return f"-ERR {cmd} Command not found!\n"
        try:
            return handler(arg)
        except (ValueError, IndexError, KeyError) as exc:
            log.info("fake switch: api %r failed: %s", command_line, exc)
            return f"-ERR {exc}\n"

    def api_version(self, arg):
        return VERSION + "\n"

    def api_status(self, arg):
        up = int(time.time() - self.started_at)
        return (f"UP 0 years, 0 days, 0 hours, {up // 60} minutes, {up % 60} seconds, 0 milliseconds, "
                f"0 microseconds\nFreeSWITCH (Version 1.10.12 fake) is ready\n"
                f"{len(self.channels)} session(s) since startup\n{len(self.channels)} session(s) - peak "
                f"{len(self.channels)}, last 5min {len(self.channels)}\n0 session(s) per Sec out of max 30, "
                f"peak 0, last 5min 0\n1000 session(s) max\nmin idle cpu 0.00/99.00\n"
                f"Current Stack Size/Max 240K/8192K\n")

    def api_uptime(self, arg):
        return f"{int(time.time() - self.started_at)}\n"

    def api_global_getvar(self, arg):
        return self.global_vars.get(arg, "")

    def api_reloadxml(self, arg):
        return "+OK [Success]\n"

    def api_hostname(self, arg):
        return self.hostname

    def api_show(self, arg):
        words = arg.split()
        what = words[0].lower() if words else ""
        as_json = len(words) >= 3 and words[-2].lower() == "as" and words[-1].lower() == "json"
        if what in ("channels", "calls"):
            rows = [self._channel_row(ch) for ch in self.channels.values()]
            cols = list(_CHANNEL_COLUMNS)
        elif what == "registrations":
            rows = [self._registration_row(a) for a in self.agents.values() if a.registered]
            cols = ["reg_user", "realm", "token", "url", "expires", "network_ip", "network_port",
                    "network_proto", "hostname", "metadata"]
        else:
            return "-USAGE: show <what>\n" if not what else f"-ERR Cannot find command for [{what}]\n"
        if as_json:
            if not rows:
                return json.dumps({"row_count": 0})
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"), ensure_ascii=False)
        out = ",".join(cols) + "\n"
        for r in rows:
            out += ",".join(str(r.get(c, "")) for c in cols) + "\n"
        return out + f"\n{len(rows)} total.\n"

    def _channel_row(self, ch: FakeChannel) -> dict:
        created = datetime.fromtimestamp(ch.created_us / 1e6).strftime("%Y-%m-%d %H:%M:%S")
        app, data = ch.executed[-1] if ch.executed else ("", "")
        return {
            "uuid": ch.uuid, "direction": ch.direction, "created": created,
            "created_epoch": str(ch.created_us // 1_000_000), "name": ch.name, "state": ch.state,
            "cid_name": ch.caller_name, "cid_num": ch.caller_number, "ip_addr": ch.network_addr or "",
            "dest": ch.destination, "application": app, "application_data": data, "dialplan": ch.dialplan,
            "context": ch.context, "read_codec": ch.codec[0] if ch.codec else "",
            "read_rate": str(ch.codec[1]) if ch.codec else "", "read_bit_rate": str(ch.codec[2]) if ch.codec else "",
            "write_codec": ch.codec[0] if ch.codec else "", "write_rate": str(ch.codec[1]) if ch.codec else "",
            "write_bit_rate": str(ch.codec[2]) if ch.codec else "", "secure": "", "hostname": self.hostname,
            "presence_id": ch.presence_id or "", "presence_data": "", "accountcode": "",
            "callstate": ch.call_state, "callee_name": ch.callee_name, "callee_num": ch.callee_number,
            "callee_direction": "RECV" if ch.get_var("channel_cid_flipped") else "", "call_uuid": ch.call_uuid,
            "sent_callee_name": "", "sent_callee_num": "",
            "initial_cid_name": ch.orig_caller_name, "initial_cid_num": ch.orig_caller_number,
            "initial_ip_addr": ch.network_addr or "", "initial_dest": ch.destination,
            "initial_dialplan": ch.dialplan, "initial_context": ch.context,
        }

"""What plays and records: a playable's simulated length (files, silence_stream://, tone_stream://,
say:/speak:, local_stream://), uuid_broadcast (a file or an application, on one leg or both, inside a
running bridge), uuid_record (session recordings), and fax (rxfax / txfax with spandsp's CUSTOM events).
Follows tests/transcripts/inbound_plain_and_json.txt and acd_bridge_eavesdrop_record_transfer_conference.txt
(uuid_broadcast, uuid_record start/stop) and fax_spandsp_txfax_rxfax.txt. The applications that play and
record on a call are apps.py's; the WAV and TIFF files are written by audio.py."""
from __future__ import annotations

import re
from pathlib import Path

from . import audio
from .apps import ChannelRunner
from .channel import new_uuid


class MediaMixin:
    """Prompts, broadcasts, recordings and fax. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def media_seconds(self, path: str) -> float | None:
        """Simulated length of a playable; None when the real switch would say FILE NOT FOUND."""
        if path.startswith("silence_stream://"):
            ms = path[len("silence_stream://"):].split(",")[0]
            try:
                v = int(ms)
            except ValueError:
                v = 1000
            return 3600.0 if v < 0 else v / 1000.0
        if path.startswith("tone_stream://"):
            return self._tone_seconds(path)
        if path.startswith(("say:", "speak:")):
            return max(0.5, 0.15 * len(path.split(":", 1)[1]))
        if path.startswith("local_stream://"):
            return 3600.0
        if "://" in path:
            return self.default_prompt_seconds
        if path.startswith("/"):
            p = Path(path)
            if not p.exists():
                return None if self.strict_files else self.default_prompt_seconds
            secs = audio.wav_seconds(p)
            return secs if secs is not None else self.default_prompt_seconds
        return self.default_prompt_seconds

    def _tone_seconds(self, path: str) -> float:
        m = re.search(r"%\(([\d,]+)\)", path)
        loops = re.search(r"loops=(-?\d+)", path)
        if not m:
            return self.default_prompt_seconds
        parts = [int(x) for x in m.group(1).split(",") if x]
        once = (parts[0] + (parts[1] if len(parts) > 1 else 0)) / 1000.0
        n = int(loops.group(1)) if loops else 1
        return 3600.0 if n < 0 else once * max(1, n)

    def note_played(self, runner, path: str, found: bool) -> None:
        call = runner.call
        if call is not None:
            (call.played if found else call.not_found).append(path)
        self.changed.pulse()

    def api_uuid_record(self, arg):
        p = arg.split()
        if len(p) < 3:
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        ch = self._get(p[0])
        if ch is None:
            return "-ERR Cannot locate session!\n"
        action, path = p[1].lower(), p[2]
        if action == "start":
            ch.runner.start_session_record(path)
        elif action == "stop":
            if path == "all":
                for q in list(ch.runner.session_records):
                    ch.runner.stop_session_record(q)
            elif not ch.runner.stop_session_record(path):
                return "-ERR Cannot stop record session!\n"
        elif action not in ("mask", "unmask"):
            return "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>] [<recording_vars>]\n"
        return "+OK Success\n"

    def api_uuid_broadcast(self, arg):
        p = arg.split()
        ch = self._get(p[0]) if p else None
        if ch is None or len(p) < 2:
            return "-ERR Operation Failed\n"
        legs = p[2] if len(p) > 2 else "aleg"
        targets = [ch]
        if legs == "bleg":
            targets = [ch.other] if ch.other else []
        elif legs == "both" and ch.other is not None:
            targets = [ch.other, ch]
        path = p[1]
        app, _, appdata = path.partition("::")
        for t in targets:
            if not appdata:
                app, appdata = "playback", path
            if t.other is not None and t.agent is not None and not t.agent.sends_media:
                t.unread_broadcasts = getattr(t, "unread_broadcasts", []) + [(app, appdata)]   # accepted, never run
                continue
            if t.runner.current is not None and t.runner.current.name == "bridge":
                # A leg running bridge itself (an agent's outbound call) runs it inside the bridge.
                t.runner.inline.append((app, appdata, new_uuid()))
                t.runner.poke()
            else:
                t.runner.enqueue(app, appdata, front=True, loop=(1, 1))   # a message execute, as sendmsg's
            if t.runner.current is not None and t.runner.current.name == "echo":
                t.runner.interrupt()
        return "+OK Message sent\n"

    def fax_app(self, runner: ChannelRunner, direction: str, path: str) -> str:
        """rxfax writes a real TIFF when the caller sends a fax; txfax sends an existing file."""
        ch = runner.ch
        sw = self
        runner.accept_digits = False
        if direction == "rx":
            pages = runner.fax_pages_to_send
            if pages <= 0:
                runner.wait_until(runner._stopped, 30.0)
                return self._fax_result(ch, "rx", False, 0, path, "48", "Disconnected after permitted retries")
            sw.emit_channel(ch, "CUSTOM", subclass="spandsp::rxfaxnegociateresult",
                            post=[("fax-success", "1"), ("fax-transfer-rate", "14400"), ("fax-ecm-used", "on")])
            for page in range(1, pages + 1):
                if runner.wait_until(runner._stopped, 10.0):
                    return self._fax_result(ch, "rx", False, page - 1, path, "49", "The call dropped prematurely")
                sw.emit_channel(ch, "CUSTOM", subclass="spandsp::rxfaxpageresult",
                                post=[("fax-document-transferred-pages", str(page))])
            audio.write_tiff(path, pages=pages)
            if runner.call is not None:
                runner.call.faxes.append(path)
            return self._fax_result(ch, "rx", True, pages, path, "0", "OK")
        if not Path(path).exists():
            return self._fax_result(ch, "tx", False, 0, path, "12", "Cannot open source TIFF file")
        if runner.wait_until(runner._stopped, 10.0):
            return self._fax_result(ch, "tx", False, 0, path, "49", "The call dropped prematurely")
        return self._fax_result(ch, "tx", True, 1, path, "0", "OK")

    def _fax_result(self, ch, direction, ok, pages, path, code, text) -> str:
        values = [("fax_success", "1" if ok else "0"), ("fax_result_code", code), ("fax_result_text", text),
                  ("fax_document_transferred_pages", str(pages)), ("fax_document_total_pages", str(pages)),
                  ("fax_transfer_rate", "14400"), ("fax_ecm_used", "on"), ("fax_filename", path)]
        for k, v in values:
            ch.set_var(k, v)
        self.emit_channel(ch, "CUSTOM", subclass=f"spandsp::{direction}faxresult",
                          post=[(k.replace("_", "-"), v) for k, v in values if k != "fax_filename"])
        return "_none_"

"""The applications of a fake channel that play, gather digits and record (playback, speak, say,
play_and_get_digits, read, record, record_session), with the caller's digits and speech they listen to.
``PlayAndRecord`` is mixed into ``apps.ChannelRunner``, which runs them from its execute queue; the
arguments follow mod_dptools, the events and variables the captures in ../transcripts.

Durations are simulated seconds; the switch's `time_scale` turns them into wall-clock waits.
"""
from __future__ import annotations

import re

from . import audio, lifecycle


class InputSlot:
    """One chance for the caller to press digits or speak (a play_and_get_digits try, a read, a record)."""

    def __init__(self, kind: str, app: str):
        self.kind = kind        # "digits" or "record"
        self.app = app
        self.pressed = False
        self.spoken = False
        self.active = True


class PlayAndRecord:
    """The caller's input and the applications that play, gather and record, mixed into ``ChannelRunner``
    (they use its channel ``ch``, switch ``sw``, ``call``, digit buffer and ``wait_until``)."""

    # -- the caller's digits and speech -------------------------------------------------------------
    def dtmf(self, digit: str, source: str | None = None, duration: int | None = None) -> None:
        """A digit from the caller: the DTMF event, then the running application may take it.

        `source` (RTP, INFO, INBAND_AUDIO, UNKNOWN) defaults to what the channel's dtmf_type says."""
        ch = self.ch
        if ch.hung_up:
            return
        self.sw.emit_channel(ch, "DTMF", post=lifecycle.dtmf_post(ch, digit, source, duration))
        ch.digits_dialed = getattr(ch, "digits_dialed", "") + digit
        if self.accept_digits:
            self.digits.append(digit)
        self.poke()

    def start_speech(self) -> None:
        self.speech.append([self.sw.sim_now(), None])
        self.speech_version += 1
        self.poke()

    def stop_speech(self) -> None:
        if self.speech and self.speech[-1][1] is None:
            self.speech[-1][1] = self.sw.sim_now()
        self.speech_version += 1
        self.poke()

    @property
    def speaking(self) -> bool:
        return bool(self.speech) and self.speech[-1][1] is None

    # -- media helpers ------------------------------------------------------------------------------
    def _accept(self, kind: str | None) -> None:
        self.digits.clear()
        self.accept_digits = True
        if kind:
            self.input = InputSlot(kind, self.current.name if self.current else "")
            self.poke()

    def play(self, target: str, any_digit_breaks: bool = False, terminators: str = "") -> str:
        """Play one file string; returns done | break | hangup | notfound. Digits stay in self.digits.

        As switch_ivr_play_file with mod_dptools' file_string: one PLAYBACK_START and one PLAYBACK_STOP
        naming the whole target, a digit that stops any of its files stops them all, and a file that cannot
        be opened is skipped (notfound only when none can)."""
        lengths = [(f, self.sw.media_seconds(f)) for f in _split_files(target)]
        if all(seconds is None for _, seconds in lengths):
            for f, _ in lengths:
                self.sw.note_played(self, f, found=False)
            return "notfound"
        ftype = target.split("://", 1)[0] if "://" in target and not target.startswith("file_string://") else None
        path_h = ([("Playback-File-Type", ftype)] if ftype else []) + [("Playback-File-Path", target)]
        self.sw.emit_channel(self.ch, "PLAYBACK_START", post=path_h)
        t0 = self.sw.sim_now()

        def stop():
            if self._stopped():
                return True
            if any_digit_breaks and self.digits:
                return True
            if terminators and any(d in terminators for d in self.digits):
                return True
            if not any_digit_breaks and not terminators:
                self.digits.clear()
            elif terminators and not any_digit_breaks:
                # A plain playback dequeues digits: the ones that are not terminators are dropped.
                self.digits.clear()
            return False
        broke = False
        for f, seconds in lengths:
            self.sw.note_played(self, f, found=seconds is not None)
            if seconds is not None and self.wait_until(stop, seconds):
                broke = True
                break
        total = sum(seconds for _, seconds in lengths if seconds is not None)
        played = min(total, self.sw.sim_now() - t0) if broke else total
        for k, v in self._playback_vars(played).items():
            self.ch.set_var(k, v)
        status = "done"
        if broke:
            status = "break"
            if terminators and not any_digit_breaks:
                used = next((d for d in self.digits if d in terminators), "")
                if used:
                    self.ch.set_var("playback_terminator_used", used)
                self.digits.clear()
        self.sw.emit_channel(self.ch, "PLAYBACK_STOP", post=path_h + [("Playback-Status", status)])
        if self.ch.hung_up:
            return "hangup"
        return "break" if broke else "done"

    def _playback_vars(self, seconds: float) -> dict:
        ms = int(seconds * 1000)
        samples = int(seconds * audio.RATE)
        return {"playback_last_offset_pos": samples, "playback_seconds": int(seconds),
                "playback_ms": ms, "playback_samples": samples}

    def _terminators(self) -> str:
        """mod_dptools on_dtmf: playback_terminators, default "*", "any" and "none" understood."""
        terms = self.ch.get_var("playback_terminators") or "*"
        if terms.lower() == "any":
            return "1234567890*#"
        if terms.lower() == "none":
            return ""
        return terms

    # -- applications that play, gather digits and record -------------------------------------------
    def app_playback(self, arg):
        terms = self._terminators()
        self.ch.set_var("playback_terminator_used", "")
        self._accept(None)
        status = self.play(arg, terminators=terms)
        if status == "notfound":
            return "FILE NOT FOUND"
        if status in ("done", "break"):
            return "FILE PLAYED"
        return "PLAYBACK ERROR"

    def app_endless_playback(self, arg):
        self._accept(None)
        while not self._stopped():
            if self.play(arg) in ("notfound", "hangup"):
                break
        return "FILE PLAYED"

    def app_speak(self, arg):
        parts = arg.split("|", 2)
        text = parts[-1]
        if self.call is not None:
            self.call.spoken.append(text)
        self._accept(None)
        self.wait_until(self._stopped, max(0.5, 0.15 * len(text)))

    def app_say(self, arg):
        if self.call is not None:
            self.call.spoken.append(arg)
        self._accept(None)
        self.wait_until(self._stopped, 1.0)

    def app_play_and_get_digits(self, arg):
        """switch_play_and_get_digits, argument rules of mod_dptools."""
        # min max tries timeout_ms terminators file invalid_file var_name regex digit_timeout_ms [transfer]
        p = arg.split(" ")
        p = [x for x in p if x != ""]
        min_d = max(0, _int(p[0], 0)) if p else 0
        max_d = _int(p[1], 0) if len(p) > 1 else 0
        tries = _int(p[2], 0) if len(p) > 2 else 0
        timeout_ms = _int(p[3], 1000) if len(p) > 3 else 1000
        terminators = p[4] if len(p) > 4 and p[4] else "#"
        prompt = p[5] if len(p) > 5 else ""
        invalid = p[6] if len(p) > 6 else ""
        var = p[7] if len(p) > 7 else ""
        regex = p[8] if len(p) > 8 else ""
        digit_timeout = _int(p[9], 0) if len(p) > 9 else 0
        transfer_on_failure = " ".join(p[10:]) if len(p) > 10 else ""
        max_d = max(max_d, min_d)
        timeout_ms = max(timeout_ms, 1000)
        ch = self.ch
        if regex and var:
            ch.variables.pop(f"{var}_invalid", None)
        while not ch.hung_up and tries > 0:
            digits, status = self._read_digits(min_d, max_d, prompt, var, timeout_ms, terminators, digit_timeout)
            if status == "timeout" and len(digits) >= min_d:
                status = "success"
            if min_d == 0 and not digits and ch.get_var("read_terminator_used") is not None:
                return "_none_"
            if status == "success" and digits:
                if not regex or _regex_match(digits, regex):
                    if self.call is not None:
                        self.call.collected.append(digits)
                    return "_none_"
                if var:
                    ch.variables.pop(var, None)
                    ch.set_var(f"{var}_invalid", digits)
            if ch.hung_up:
                break
            self._accept(None)
            if invalid:
                self.play(invalid)
            tries -= 1
        if transfer_on_failure and not ch.hung_up:
            t = transfer_on_failure.split()
            self.sw.transfer(ch, t[0], t[1] if len(t) > 1 else "XML", t[2] if len(t) > 2 else "default",
                             from_app=True)
        return "_none_"

    def app_read(self, arg):
        """mod_dptools read: min max file var timeout_ms terminators digit_timeout_ms."""
        p = [x for x in arg.split(" ") if x != ""]
        if not p:
            return "_none_"
        min_d = max(1, _int(p[0], 1))
        max_d = max(_int(p[1], 0) if len(p) > 1 else 0, min_d)
        timeout_ms = max(_int(p[4], 1000) if len(p) > 4 else 1000, 1000)
        terminators = p[5] if len(p) > 5 and p[5] else "#"
        digit_timeout = _int(p[6], 0) if len(p) > 6 else 0
        digits, status = self._read_digits(min_d, max_d, p[2] if len(p) > 2 else "", p[3] if len(p) > 3 else "",
                                           timeout_ms, terminators, digit_timeout)
        if status == "success" and digits and self.call is not None:
            self.call.collected.append(digits)
        return "_none_"

    def _read_digits(self, min_d, max_d, prompt, var, timeout_ms, terminators, digit_timeout_ms):
        """switch_ivr_read: returns (digits, "success" | "timeout" | "failure" | "error").

        The digit that breaks the prompt goes into the buffer whatever it is (terminators included), as in
        the real switch; a single-digit read whose only digit is a terminator comes back empty.
        """
        ch = self.ch
        digit_timeout_ms = digit_timeout_ms or timeout_ms
        ch.variables.pop("read_result", None)
        if var:
            ch.variables.pop(var, None)
        self.sw.pre_answer(ch)
        self._accept("digits")
        buf = ""
        status = "success"
        if prompt and prompt.lower() != "silence":
            played = self.play(prompt, any_digit_breaks=True)
            if played in ("notfound", "hangup"):
                return "", "error"
            if self.digits:
                buf += self.digits.popleft()
        if (min_d and len(buf) < min_d) or len(buf) < max_d:
            term = ""
            wait_ms = digit_timeout_ms if buf else timeout_ms
            while not ch.hung_up and len(buf) < max_d:
                got = self.wait_until(lambda: bool(self.digits) or ch.hung_up, wait_ms / 1000.0)
                if ch.hung_up:
                    status = "failure"
                    break
                if not got:
                    status = "timeout"
                    break
                d = self.digits.popleft()
                if d in terminators:
                    term = d
                    break
                buf += d
                wait_ms = digit_timeout_ms
            if term:
                ch.set_var("read_terminator_used", term)
        if min_d and len(buf) < min_d and status == "success":
            status = "failure"
        ch.set_var("read_result", status)
        if max_d == 1 and len(buf) == 1 and buf in terminators:
            buf = ""
        if var and buf:
            ch.set_var(var, buf)
        return buf, status

    def app_record(self, arg):
        # path [time_limit_secs] [silence_thresh] [silence_hits]
        p = arg.split()
        if not p:
            return "_none_"
        path = p[0]
        limit = _int(p[1], 0) if len(p) > 1 else 0
        thresh = p[2] if len(p) > 2 else None
        hits = _int(p[3], 3) if len(p) > 3 else (3 if thresh else 0)
        limit = limit or self.sw.max_record_seconds
        # Like the real record app: only playback_terminators (default "*") end it; "#" needs setting.
        terms = self._terminators()
        self.ch.set_var("playback_terminator_used", "")
        self._accept("record")
        sw, ch = self.sw, self.ch
        start = sw.sim_now()
        ch.set_var("silence_hits_exhausted", "false")
        sw.emit_channel(ch, "RECORD_START", post=[("Record-File-Path", path)])
        term = ""

        def last_sound() -> float:
            ends = [start] + [(s[1] if s[1] is not None else sw.sim_now()) for s in self.speech if
                              (s[1] is None or s[1] > start)]
            return max(ends)

        while True:
            if ch.hung_up or self.breaking:
                break
            hit = next((d for d in self.digits if d in terms), "")
            if hit:
                term = hit
                break
            self.digits.clear()
            now = sw.sim_now()
            if now - start >= limit:
                break
            wait = limit - (now - start)
            if hits and not self.speaking:
                quiet_for = now - last_sound()
                if quiet_for >= hits:
                    ch.set_var("silence_hits_exhausted", "true")
                    break
                wait = min(wait, hits - quiet_for)
            version = self.speech_version
            self.wait_until(lambda: ch.hung_up or self.breaking or bool(self.digits) or
                            self.speech_version != version, wait)
        end = min(sw.sim_now(), start + limit)
        seconds = max(0.0, end - start)
        spans = [(max(s[0], start) - start, (min(s[1] if s[1] is not None else end, end)) - start)
                 for s in self.speech]
        size = audio.write_wav(path, seconds, spans)
        ms = int(seconds * 1000)
        for k, v in (("record_record_file_size", size), ("record_file_size", size),
                     ("record_seconds", int(seconds)), ("record_ms", ms),
                     ("record_samples", int(seconds * audio.RATE))):
            ch.set_var(k, v)
        if term:
            ch.set_var("playback_terminator_used", term)
        # (the captured record app's RECORD_STOP has no completion cause: only uuid_record's has)
        sw.emit_channel(ch, "RECORD_STOP", post=[("Record-File-Path", path)])
        if self.call is not None:
            spoken = sum(max(0.0, b - a) for a, b in spans)
            self.call.recordings.append(Recording(path, seconds, spoken, term))
        return "_none_"

    # uuid_record / record_session run a media bug: their events come from switch_ivr_async.c (as captured)
    SESSION_RECORD_ORIGINS = {"RECORD_START": ("switch_ivr_async.c", "record_callback", "1482"),
                              "RECORD_STOP": ("switch_ivr_async.c", "send_record_stop_event", "1241")}

    def start_session_record(self, path: str) -> None:
        self.session_records[path] = self.sw.sim_now()
        # As FreeSWITCH does: the file is opened at the start, a bare 44-byte header until the audio is
        # flushed (a real 1.10 showed 44 bytes 2 s into a uuid_record, the whole file at the hang-up).
        audio.write_wav(path, 0.0)
        lifecycle._emit(self.sw, self.ch, "RECORD_START", post=[("Record-File-Path", path)],
                        origin=self.SESSION_RECORD_ORIGINS["RECORD_START"])

    def stop_session_record(self, path: str) -> bool:
        start = self.session_records.pop(path, None)
        if start is None:
            return False
        seconds = max(0.0, self.sw.sim_now() - start)
        # A call recording of a conversation: sound throughout.
        size = audio.write_wav(path, seconds, [(0, seconds)])
        self.ch.set_var("record_seconds", int(seconds))
        self.ch.set_var("record_ms", int(seconds * 1000))
        self.ch.set_var("record_samples", int(seconds * audio.RATE))
        self.ch.set_var("record_file_size", size)
        self.ch.set_var("record_completion_cause", "success-maxtime")
        lifecycle._emit(self.sw, self.ch, "RECORD_STOP", post=[("Record-File-Path", path),
                                                             ("Record-Completion-Cause", "success-maxtime")],
                        origin=self.SESSION_RECORD_ORIGINS["RECORD_STOP"])
        self.sw.session_recordings.append((self.ch.uuid, path, seconds))
        return True

    def app_record_session(self, arg):
        path = arg.split()[0] if arg.split() else ""
        if path:
            self.start_session_record(path)

    def app_stop_record_session(self, arg):
        path = arg.strip()
        if path == "all" or not path:
            for p in list(self.session_records):
                self.stop_session_record(p)
        else:
            self.stop_session_record(path)


class Recording:
    """A file the record application wrote: path, total seconds, seconds of speech, terminator pressed."""

    def __init__(self, path: str, seconds: float, speech_seconds: float, terminator: str):
        self.path = path
        self.seconds = seconds
        self.speech_seconds = speech_seconds
        self.terminator = terminator

    def __repr__(self) -> str:
        return f"Recording({self.path!r}, {self.seconds:.2f}s, speech {self.speech_seconds:.2f}s, {self.terminator!r})"


def _regex_match(digits: str, regex: str) -> bool:
    """switch_regex_match: PCRE search (not anchored unless the pattern says so); a bad pattern never matches."""
    try:
        return re.search(regex, digits) is not None
    except re.error:
        return False


def _int(s, default: int) -> int:
    try:
        return int(str(s).strip())
    except ValueError:
        return default


def _split_files(target: str) -> list[str]:
    if target.startswith("file_string://"):
        return [f for f in target[len("file_string://"):].split("!") if f]
    return [target]

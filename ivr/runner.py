"""Runs the pure engine on a call: turns actions into switch.session.CallSession calls and results into events.

``run_call(session, services, config)`` is the outbound server's handler body for IVR calls. A caller's
hang-up (CallHangup) can interrupt any wait; the engine is then told, the service actions it still asks
for are carried out (a useful recording becomes a ticket), and the trace is stored in every case. A bug
(any other error, in the engine, here or in a service) ends the call's handling, never the caller's
complaint: what they recorded is kept with the call and they are listed for a call-back (``IvrCall._failed``).

Long because: one class carries every engine action to the switch and back, with each way a call's handling
ends (hang-up, switch error, database away, a bug) beside the step it interrupts; PromptFiles is its lookup.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import gevent

from core.db import connection_lost
from ivr import engine as e
from ivr.audio import wav_lengths
from ivr.prompts import call_time_renderer, tts_cache_path
from ivr.services import IvrServices, TraceRecord
from recorder.fax import fax_tone_detected
from switch import commands
from switch.errors import CallHangup, SwitchError, SwitchTimeout

log = logging.getLogger(__name__)

BEEP = "tone_stream://%(500,0,800)"
MENU_REGEX = "^[0-9*#]+$"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _measure(path: str):
    """wav_lengths in gevent's thread pool: reading a long message must not stall every other call."""
    import gevent

    return gevent.get_hub().threadpool.apply(wav_lengths, (path,))


class PromptFiles:
    """Maps engine prompt items to files FreeSWITCH can play."""

    def __init__(self, config, services: IvrServices | None = None):
        self.sounds_dir = Path(config.sounds_dir)
        self.switch_sounds = config.switch_sounds_dir or str(self.sounds_dir)
        self.recordings_dir = str(config.recordings_dir)
        self.switch_recordings = config.switch_recordings_dir or self.recordings_dir
        self.rate = config.prompt_rate
        self.services = services

    def prompt(self, key: str, lang: str) -> str:
        local = self.sounds_dir / lang / f"{key}.wav"
        if not local.is_file():
            log.warning("prompt %s/%s.wav is missing: run `python -m ivr.prompts render`", lang, key)
        return f"{self.switch_sounds}/{lang}/{key}.wav"

    def tts(self, text: str, lang: str) -> str:
        """Render call-time text once (espeak-ng and sox as children started without a fork, so the call's
        greenlet waits and nothing else does; no Python started per prompt) and cache it by its hash."""
        local = tts_cache_path(self.sounds_dir, lang, text, self.rate)
        if not local.is_file():
            try:
                call_time_renderer(lang, self.rate)(text, local)
            except RuntimeError as exc:
                log.error("call-time TTS failed for %r: %s", text[:40], exc)
                return "silence_stream://500"
        rel = local.relative_to(self.sounds_dir).as_posix()
        return f"{self.switch_sounds}/{rel}"

    def recording(self, local_path: str) -> str:
        if local_path.startswith(self.recordings_dir):
            return self.switch_recordings + local_path[len(self.recordings_dir):]
        return local_path

    def item(self, item: str, lang: str) -> str:
        if item.startswith("file:"):
            return self.recording(item[5:])
        if item.startswith("tts:"):
            return self.tts(item[4:], lang)
        if item.startswith("kb:"):
            text = self.services.knowledge_text(item[3:]) if self.services else None
            return self.tts(text, lang) if text else self.prompt("consult_menu", lang)
        return self.prompt(item, lang)


class IvrCall:
    """One call through the engine. Construct with a session, the services and the Config; ``run()``."""

    def __init__(self, session, services: IvrServices, config, *, clock=None, answer: bool = True,
                 start_node: str | None = None, direction: str = "inbound", tree=None, version_id=None):
        self.session = session
        self.services = services
        self.config = config
        self.clock = clock
        self.answer = answer
        self.start_node = start_node
        self.direction = direction
        self.asked_person: float | None = None  # monotonic moment the menu sent the caller to a queue
        data = getattr(session, "channel_data", None) or {}
        # Channel data are claims of whoever connected: each is checked against what the app itself did
        # (the attempt it dialled on this uuid, the mark it set on this channel) before it is acted on.
        self.attempt_id = data.get("variable_hotline_attempt", "")
        self.variables: dict[str, str] = {}
        if tree is None and self.attempt_id:
            # A call the dialer placed (outbound IVR): the campaign decides what it plays.
            plan = services.outbound_plan(self.attempt_id, session.uuid)
            if plan is not None:
                tree, self.variables = plan
                self.direction = "outbound"
            else:
                log.warning("call %s claims campaign attempt %r the app did not dial on it; an inbound call",
                            session.uuid, self.attempt_id[:32])
        if tree is None:
            version_id, tree = services.active_tree()
        self.version_id = version_id
        claim = getattr(services, "claim_handback", None)
        marks = claim(session.uuid, data) if claim is not None and self.direction == "inbound" else {}
        # An agent blind-transferred the caller into a queue (the ACD set hotline_queue): straight there.
        self.queue = marks.get("hotline_queue", "")[:64]
        handed_back = marks.get("hotline_ivr_node", "")
        if not handed_back and self.direction == "inbound" and fax_tone_detected(data):
            # The dialplan's fax detector (hotline-fax-detect) heard a fax machine before the socket took
            # the call: no menu, straight to the fax node.
            handed_back = e.IvrEngine(tree).fax_node() or ""
        if self.start_node is None and handed_back in tree.nodes:
            # An agent handed the caller back to self-service (人工转自动), e.g. for the status query.
            self.start_node = handed_back
        self.engine = e.IvrEngine(tree, clock=self._now)
        self.files = PromptFiles(config, services)
        self._record_cut: e.RecordDone | None = None  # what was recorded when the caller hung up

    def _now(self) -> dt.datetime:
        return self.clock.now() if self.clock is not None else _utcnow()

    # ------------------------------------------------------------------ main loop
    def run(self) -> e.IvrEngine:
        """Walk the call to its end; never raises for a hang-up or a switch error."""
        started = self._now()
        engine = self.engine
        live = getattr(self.services, "live", None)
        if live is not None:
            live.start(self.session.uuid, self.version_id, "", self.direction)
        try:
            try:
                if self.answer:
                    self.session.answer()
                event: Any = e.CallStarted(self.session.caller, self.session.destination, self.session.uuid,
                                           start_node=self.start_node, variables=tuple(self.variables.items()),
                                           queue=self.queue)
                while not engine.done:
                    actions = engine.feed(event)
                    if not actions:
                        break
                    if live is not None and engine.node is not None:
                        live.move(self.session.uuid, engine.node.id)
                    event = self._perform(actions)
                if not engine.done:
                    self._hangup()
            except CallHangup as hang:
                self._after_hangup(hang)
            except SwitchError as exc:
                log.warning("ivr call %s: switch error %s; ending the call", self.session.uuid, exc)
                engine.outcome = f"switch_error:{type(exc).__name__}"
                self._after_hangup(exc)
                self._hangup()
        except Exception as error:  # noqa: BLE001 - a bug ends this call's handling, not what the caller gave
            self._failed(error)
        finally:
            if live is not None:
                live.end(self.session.uuid)
            self._save_trace(started)
            if self.direction == "outbound" and self.attempt_id:
                try:
                    self.services.finish_outbound(self.attempt_id, dict(engine.answers), engine.outcome,
                                                  self.session.uuid)
                except Exception:  # noqa: BLE001 - the call is over either way; the attempt stays "calling"
                    log.exception("could not finish outbound attempt %s", self.attempt_id)
        return engine

    def _fax_tone(self, result) -> bool:
        """A fax tone was detected during this playback, and the engine has a fax node to go to."""
        return result is not None and _fax_tone_in(result) and self.engine.fax_node() is not None

    def _fax_tone_on_line(self) -> bool:
        """A fax machine started during a menu (its tone ended the wait with no key): the dialplan's detector
        has set fax_tone_detected on the channel. Asked only after a menu got no key, so rarely."""
        if self.engine.fax_node() is None:
            return False
        try:
            value = self.session.api(commands.uuid_getvar(self.session.uuid, "fax_tone_detected"))
        except SwitchTimeout:
            return False
        return fax_tone_detected({"fax_tone_detected": (value or "").strip()})

    def _hangup(self) -> None:
        try:
            self.session.hangup()
        except SwitchError as exc:
            log.debug("hangup of %s: %s", self.session.uuid, exc)

    def _after_hangup(self, hang: Exception) -> None:
        if self._record_cut is not None:
            self.engine.feed(self._record_cut)
            self._record_cut = None
        for action in self.engine.feed(e.Hangup()):
            if isinstance(action, e.SERVICE_ACTIONS):
                self._service(action)

    def _failed(self, error: Exception) -> None:
        """This call's handling failed on a bug (an unexpected error: not the caller, the switch or a database
        outage, which have their own paths above). What the caller recorded is kept with the call and they are
        listed for a call-back (NOT_FILED; with nothing kept IVR_FAILED, a system fault, unless self-service had
        served them), the ``ivr_failed`` alarm raised, the call hung up. The outbound server serves its other
        calls on either way."""
        log.error("ivr call %s failed on a bug (%s); the caller is listed for a call-back", self.session.uuid,
                  error, exc_info=error)
        self.engine.outcome = "ivr_error"
        self._keep_recordings(error, None if self.engine.served else e.IVR_FAILED)
        self._hangup()

    def _keep_recordings(self, error: Exception, otherwise: str | None) -> None:
        """After a bug: the call's recordings no ticket holds kept with the call (services.keep_after_failure,
        which raises the alarm), noted NOT_FILED in the trace; ``otherwise`` noted when there are none."""
        if _keep_after_failure(self.services, self.session.uuid, error):
            self.engine.note(e.NOT_FILED)
        elif otherwise:
            self.engine.note(otherwise)

    def _save_trace(self, started: dt.datetime) -> None:
        engine = self.engine
        record = TraceRecord(self.session.uuid, self.session.caller or "", self.session.destination or "",
                             self.version_id, started, self._now(), engine.outcome or "ended", list(engine.tickets),
                             engine.trace_dicts(), self.direction, engine.served)
        try:
            with _db_turn(self.services):
                self.services.save_trace(record)
        except Exception:  # noqa: BLE001 - losing a trace must not disturb the call's end
            log.exception("could not store the IVR trace of %s", self.session.uuid)

    # ------------------------------------------------------------------ actions
    def _perform(self, actions: list) -> Any:
        # The caller asks for a person when the menu sends them to a queue, before its "connecting" prompt
        # plays: the ACD counts their wait (and the 15-second answer rate, GB/T 33358) from here.
        self.asked_person = time.monotonic() if any(isinstance(a, e.ToQueue) for a in actions) else None
        for action in actions[:-1]:
            self._do(action, last=False)
        return self._do(actions[-1], last=True)

    def _do(self, action, last: bool):
        session = self.session
        if isinstance(action, e.Play):
            for item in action.items:
                result = session.playback(self.files.item(item, action.lang), terminators=action.keys)
                if last and self._fax_tone(result):
                    return e.FaxToneDetected()
                if action.keys:
                    # The playback app takes keys off the channel as they come (and the socket's park drops
                    # any between applications): a key typed ahead is only kept when it stops the prompt.
                    key = result.variable("playback_terminator_used")
                    if key:
                        return e.Dtmf(key)
            return e.PromptDone()
        if isinstance(action, e.Say):
            for item in action.prompts:
                session.playback(self.files.prompt(item, action.lang))
            return e.PromptDone()
        if isinstance(action, e.Collect):
            collected = self._collect(action)
            if last and not collected.digits and self._fax_tone_on_line():
                return e.FaxToneDetected()
            return collected
        if isinstance(action, e.Record):
            return self._record(action)
        if isinstance(action, e.SetLanguage):
            return None
        if isinstance(action, e.ToQueue):
            asked = self.asked_person
            waited = max(0.0, time.monotonic() - asked) if asked is not None else 0.0
            try:
                outcome = self.services.route_to_queue(session, action.skill, queue=action.queue, waited=waited)
            except (CallHangup, SwitchTimeout):
                raise
            except Exception:  # noqa: BLE001 - a broken queue must still leave the caller a way out
                log.exception("queue %s failed for %s", action.skill, session.uuid)
                outcome = "failed"
            return e.QueueResult(outcome)
        if isinstance(action, e.Transfer):
            return e.TransferResult(self._transfer(action.number))
        if isinstance(action, e.ReceiveFax):
            # Not under db_lock: rxfax takes minutes; FaxService keeps its own writes short.
            try:
                ok, ticket = self.services.receive_fax(session)
            except (CallHangup, SwitchTimeout):
                raise
            except Exception:  # noqa: BLE001 - a broken fax store: the caller hears it failed
                log.exception("fax reception failed on %s", session.uuid)
                ok, ticket = False, None
            return e.FaxDone(ok, ticket)
        if isinstance(action, e.HangupCall):
            self._hangup()
            return None
        if isinstance(action, e.SERVICE_ACTIONS):
            return self._service(action)
        raise TypeError(f"unknown IVR action {action!r}")

    def _collect(self, action: e.Collect) -> e.DigitsCollected:
        files = [self.files.item(item, action.lang) for item in action.items]
        target = files[0] if len(files) == 1 else "file_string://" + "!".join(files)
        try:
            digits = self.session.play_and_get_digits(
                action.min_digits, action.max_digits, 1, int(action.timeout_s * 1000), action.terminators or "none",
                target, "silence_stream://250", MENU_REGEX, int(action.digit_timeout_s * 1000),
                timeout=action.timeout_s + 8 * action.max_digits + 120)
        except SwitchTimeout:
            digits = ""
        return e.DigitsCollected(digits)

    def _record(self, action: e.Record) -> e.RecordDone:
        try:
            switch_path, local_path = self.services.recording_target(self.session.uuid, action.kind)
        except (OSError, ValueError) as exc:
            # Storage not writable (or an odd call id): the engine counts it as a failed recording and
            # takes the node's final route (a person) instead of losing the caller.
            log.error("ivr: no place to record call %s: %s", self.session.uuid, exc)
            # Listed for a call-back unless a person then answers (the final route may be closed: goodbye).
            self.engine.note(e.NOT_RECORDED)
            return e.RecordDone("", 0, "error", 0)
        if action.beep:
            self.session.playback(BEEP)
        try:
            result = self.session.record(switch_path, action.max_seconds, silence_seconds=action.silence_seconds,
                                         terminators=action.terminators)
        except CallHangup:
            lengths = _measure(local_path)
            if lengths is not None:
                # Tell the engine what was recorded before the hang-up: a useful message is kept.
                self._record_cut = e.RecordDone(local_path, lengths[0], "hangup", lengths[1])
            raise
        except SwitchTimeout:
            return e.RecordDone(local_path, 0, "timeout", 0)
        lengths = _measure(local_path)
        if lengths is None:
            return e.RecordDone(local_path if Path(local_path).exists() else "", 0, result.terminator, 0)
        return e.RecordDone(local_path, lengths[0], result.terminator or "", lengths[1])

    def _transfer(self, number: str) -> bool:
        """Bridge to a duty number: a seat directly, any other number through the dial-out policy to the
        carrier (a refused or undialable number is a failed bridge: the node's failure route)."""
        from recorder.dialout import DialOut, DialRefused
        from switch.commands import CommandError

        gate = getattr(self.services, "acd", None)
        dialout = getattr(gate, "dialout", None) or DialOut.from_config(self.config)
        try:
            target = dialout.dial_string(dialout.authorise(number, "ivr_forward", detail=self.session.uuid))
        except (DialRefused, CommandError, ValueError) as exc:
            log.error("ivr: forward of call %s to %s refused: %s", self.session.uuid, number, exc)
            return False
        self.session.set("hangup_after_bridge", "true")
        self.session.set("continue_on_fail", "true")
        result = self.session.bridge(target, timeout=4 * 3600)
        disposition = (result.variables.get("originate_disposition") or "").upper()
        return disposition == "SUCCESS" or (not disposition and result.response.upper().startswith("+OK"))

    def _service(self, action):
        # One IVR greenlet at a time in the back office: on SQLite, concurrent write transactions from
        # greenlets of one process make the others wait in SQLite's busy handler, which blocks every call.
        # File work (sox conversion) is done before taking the lock: the lock is for the database only.
        if isinstance(action, e.CreateTicket) and action.recording_path:
            prepare = getattr(self.services, "prepare_recording", None)
            if prepare is not None:
                try:
                    prepare(action.recording_path)
                except Exception:  # noqa: BLE001 - the store converts it itself then
                    log.exception("could not prepare recording %s", action.recording_path)
        # The database away (PostgreSQL restarting, its connections cut): the same step again on a new
        # connection after a pause, for a few seconds, rather than give up on what the caller just said.
        for tries, pause in enumerate(DATABASE_RETRY_PAUSES + (None,)):
            try:
                with _db_turn(self.services):
                    result = self._service_unlocked(action)
                if tries and result == e.TicketCreated(None):
                    # A try lost with the connection may have used up what the caller gave (the file moved,
                    # half indexed) so that the next one files nothing: listed for a call-back, never lost.
                    log.error("ivr service %s on call %s: no ticket after the database came back",
                              type(action).__name__, self.session.uuid)
                    self.engine.note(e.NOT_STORED)
                elif result == e.TicketCreated(None):
                    # The caller recorded something and got no ticket (nothing usable in it): listed for a
                    # call-back with that reason, as a voicemail is, rather than on no list at all.
                    self.engine.note(e.NO_TICKET)
                return result
            except _FilingFailed as failed:
                # The back office failed on a bug filing what the caller recorded: the recording is kept with
                # the call (never lost with the error) and the caller listed; the engine takes the node's
                # failure route (a person) as for any ticket not created.
                self._keep_recordings(failed.error, e.NO_TICKET)
                return _SAFE_ANSWERS[e.CreateTicket]
            except _DatabaseAway as away:
                if pause is None or not isinstance(action, _STORING):
                    log.error("ivr service %s on call %s: the database did not come back: %s",
                              type(action).__name__, self.session.uuid, away.error)
                    if isinstance(action, _STORING):
                        # What the caller gave is lost: whatever happens next, the caller is called back.
                        self.engine.note(e.NOT_STORED)
                    return _SAFE_ANSWERS.get(type(action))
                log.warning("ivr service %s on call %s: database away (%s), trying again in %.1f s",
                            type(action).__name__, self.session.uuid, away.error, pause)
                gevent.sleep(pause)
        return _SAFE_ANSWERS.get(type(action))

    def _service_unlocked(self, action):
        services, uuid = self.services, self.session.uuid
        try:
            if isinstance(action, e.CheckBlacklist):
                return e.BlacklistChecked(services.is_blacklisted(action.caller))
            if isinstance(action, e.CheckTime):
                return e.TimeChecked(services.time_state(action))
            if isinstance(action, e.CreateTicket):
                return e.TicketCreated(services.create_ticket_from_recording(
                    action.caller, action.kind, action.recording_path, duration_ms=action.duration_ms,
                    confirmed=action.confirmed, call_uuid=uuid, destination=action.destination, lang=action.lang,
                    reason=action.reason))
            if isinstance(action, e.QueryStatus):
                return e.StatusFound(services.ticket_status(action.number, action.caller, action.pin))
            if isinstance(action, e.LoadPoll):
                return services.active_poll()
            if isinstance(action, e.RecordPollAnswer):
                services.record_poll_answer(action.poll_id, action.question_id, action.answer, action.caller, uuid)
                return None
            if isinstance(action, e.RequestMaterial):
                services.request_material(action.caller, action.topic, action.channel, action.address, uuid)
                return None
            if isinstance(action, e.DiscardRecording):
                Path(action.path).unlink(missing_ok=True)
                return None
            if isinstance(action, e.SaveSatisfaction):
                services.save_satisfaction(action.caller, action.rating, uuid)
                return None
            if isinstance(action, e.SaveAnswer):
                return None  # kept in engine.answers; an outbound call's answers are applied at its end
        except (CallHangup, SwitchTimeout):
            raise
        except Exception as error:  # noqa: BLE001 - a failing back office gives the caller the safe answer
            if connection_lost(error):
                raise _DatabaseAway(error) from error
            log.exception("ivr service %s failed on call %s", type(action).__name__, uuid)
            if isinstance(action, e.CreateTicket):
                raise _FilingFailed(error) from error
            return _SAFE_ANSWERS.get(type(action))
        raise TypeError(f"not a service action: {action!r}")


# Pauses between tries of a step that stores what the caller gave (a complaint, an answer) while the
# database is away: about 7 s in all, a PostgreSQL restart. A longer outage gives the caller the safe answer
# and the caller lands on the call-back list. Look-ups (blacklist, opening hours, a status) take the safe
# answer at once: the caller is not kept in silence for them.
DATABASE_RETRY_PAUSES = (0.5, 1.0, 2.0, 3.5)
_STORING = (e.CreateTicket, e.RecordPollAnswer, e.RequestMaterial, e.SaveSatisfaction)


class _StepFailed(Exception):
    """A back-office step failed with ``error``; the kinds below say how the runner goes on."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


class _DatabaseAway(_StepFailed):
    """A back-office step failed because the database connection was lost (core.db.connection_lost)."""


class _FilingFailed(_StepFailed):
    """Filing what the caller recorded failed on an unexpected error (a bug, not the database away)."""


_SAFE_ANSWERS = {
    e.CheckBlacklist: e.BlacklistChecked(False),
    e.CheckTime: e.TimeChecked("open"),  # when in doubt, offer a person
    e.CreateTicket: e.TicketCreated(None),
    e.QueryStatus: e.StatusFound(None),
    e.LoadPoll: e.PollLoaded(None),
}


def _fax_tone_in(result) -> bool:
    # The raw event (variable_ names) when there is one: building the variables dict of every playback
    # result would cost each call a parse of ~200 channel variables.
    event = getattr(result, "_event", None)
    return fax_tone_detected(event if event is not None else (getattr(result, "variables", None) or {}))


def _db_turn(services):
    """The services' database lock (SQLite: one IVR greenlet at a time in the back office), or nothing."""
    lock = getattr(services, "db_lock", None)
    return lock if lock is not None else contextlib.nullcontext()


def _keep_after_failure(services, call_uuid: str, error: Exception) -> int:
    """services.keep_after_failure (the call's unfiled recordings kept, the alarm raised): how many were kept;
    0 when that fails too (the files stay where the switch wrote them, named after the call)."""
    keep = getattr(services, "keep_after_failure", None)
    try:
        if keep is not None:
            with _db_turn(services):
                return keep(call_uuid, error)
    except Exception:  # noqa: BLE001 - the caller is listed all the same
        log.exception("ivr call %s: keeping what the caller recorded failed", call_uuid)
    return 0


def run_call(session, services: IvrServices, config, **options) -> e.IvrEngine:
    """Handle one IVR call on ``session`` (the outbound server's handler calls this). A bug before the call's
    engine could start (reading its tree, campaign or hand-back) stores a trace of one IVR_FAILED line, so the
    caller is listed as a system fault, raises the alarm, hangs up, and ends the handler as before (the
    outbound server logs the error)."""
    try:
        call = IvrCall(session, services, config, **options)
    except Exception as error:
        log.error("ivr call %s failed before its menu on a bug (%s)", session.uuid, error)
        try:
            session.hangup()  # not left in silence while the failure is written down
        except SwitchError as exc:
            log.debug("hangup of %s: %s", session.uuid, exc)
        _keep_after_failure(services, session.uuid, error)
        clock = options.get("clock")
        now = clock.now() if clock is not None else _utcnow()
        line = {"at": now.isoformat(timespec="milliseconds"), "node": "", "what": e.IVR_FAILED, "keys": ""}
        try:
            with _db_turn(services):
                services.save_trace(TraceRecord(session.uuid, session.caller or "", session.destination or "", None,
                                                now, now, "ivr_error", [], [line]))
        except Exception:  # noqa: BLE001 - the record is closed without it (ivr_ended)
            log.exception("could not store the IVR trace of %s", session.uuid)
        raise
    return call.run()

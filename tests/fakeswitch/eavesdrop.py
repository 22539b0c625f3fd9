"""A supervisor's leg listening to a call (the eavesdrop and three_way applications): the starting mode
from the eavesdrop_* variables, DTMF 2/1/3/0 switching to whisper, talking to the other leg, three-way and
back to listening (eavesdrop_enable_dtmf=false ignores them), `fs.eavesdrops` for tests. Follows
tests/transcripts/acd_bridge_eavesdrop_record_transfer_conference.txt (eavesdrop: last_sent_callee_id_*)."""
from __future__ import annotations

from .apps import ChannelRunner


EAVESDROP_DTMF = {"2": "whisper", "1": "whisper_other", "3": "three_way", "0": "listen"}


class Eavesdrop:
    """A supervisor leg listening to (and maybe talking into) a call."""

    def __init__(self, supervisor, target, mode):
        self.supervisor = supervisor
        self.target = target
        self.modes = [mode]
        self.active = True

    @property
    def mode(self) -> str:
        return self.modes[-1]


class EavesdropMixin:
    """Eavesdrop. Part of FakeSwitch (composed in server.py; `self` is the switch)."""

    def eavesdrop_app(self, runner: ChannelRunner, target_uuid: str, mode: str = "listen") -> str:
        """eavesdrop/three_way on a supervisor leg; DTMF 2/1/3/0 switch whisper/other/three-way/listen."""
        target = self._get(target_uuid)
        if target is None:
            return "_none_"
        ch = runner.ch
        if mode == "listen":
            # The channel variables FreeSWITCH's eavesdrop reads pick the starting mode.
            truthy = lambda name: (ch.get_var(name) or "").lower() == "true"
            if truthy("eavesdrop_bridge_aleg") and truthy("eavesdrop_bridge_bleg"):
                mode = "three_way"
            elif truthy("eavesdrop_whisper_aleg"):
                mode = "whisper"
            elif truthy("eavesdrop_whisper_bleg"):
                mode = "whisper_other"
        # eavesdrop shows the supervisor who is listened to (as captured: last_sent_callee_id_*)
        ch.set_var("last_sent_callee_id_name", target.caller_name or target.caller_number)
        ch.set_var("last_sent_callee_id_number", target.caller_number)
        entry = Eavesdrop(runner.ch, target, mode)
        self.eavesdrops.append(entry)
        self.changed.pulse()
        runner.accept_digits = True
        while entry.active and not runner._stopped() and not target.hung_up:
            runner.wait_until(lambda: runner._stopped() or target.hung_up or bool(runner.digits) or
                              not entry.active, None)
            while runner.digits:
                d = runner.digits.popleft()
                if (ch.get_var("eavesdrop_enable_dtmf") or "true").lower() == "false":
                    continue
                if d in EAVESDROP_DTMF:
                    entry.modes.append(EAVESDROP_DTMF[d])
                    self.changed.pulse()
        entry.active = False
        self.changed.pulse()
        return "_none_"

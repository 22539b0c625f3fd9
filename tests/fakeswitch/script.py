"""Steps of a scripted caller. A FakeCall runs them in order in its own greenlet, reacting to what the
application under test makes the channel do. Durations are simulated seconds (see FakeSwitch.time_scale);
`timeout` values are wall-clock seconds a step may wait before the script fails.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TIMEOUT = 10.0


class ScriptError(Exception):
    """A step could not happen (what it waited for never came). The caller then hangs up."""


@dataclass
class Wait:
    """Do nothing for `seconds` simulated seconds (stay on the line)."""
    seconds: float

    def run(self, call) -> None:
        call._sleep_sim(self.seconds)


@dataclass
class WaitFor:
    """Wait until the app executes `app` (any app when None) whose argument contains `arg_contains`.

    Executions are consumed in order: two WaitFor("playback") wait for two playbacks. `count` waits for that
    many matching executions. `timeout` is wall-clock seconds.
    """
    app: str | None = None
    arg_contains: str | None = None
    count: int = 1
    timeout: float = DEFAULT_TIMEOUT

    def run(self, call) -> None:
        for _ in range(self.count):
            call._wait_execution(self.app, self.arg_contains, self.timeout)


@dataclass
class Press:
    """Press DTMF digits, one every `interval` simulated seconds.

    With wait=True (the default) the caller first waits for the next chance to enter digits: a
    play_and_get_digits try or a read that has not received digits yet, or a record that has not been
    pressed into (so Speak(2) then Press("#") ends that record). With wait=False the digits go at once
    (DTMF events; an app that is not collecting digits drops them, as the real switch does).
    """
    digits: str
    wait: bool = True
    interval: float = 0.1
    timeout: float = DEFAULT_TIMEOUT

    def run(self, call) -> None:
        if self.wait:
            call._wait_input("digits", self.timeout)
        call._press(self.digits, self.interval)


@dataclass
class Speak:
    """Talk for `seconds` simulated seconds (a record writes sound for that span).

    With wait=True the caller first waits for a record that has not been spoken into yet.
    """
    seconds: float
    wait: bool = True
    timeout: float = DEFAULT_TIMEOUT

    def run(self, call) -> None:
        if self.wait:
            call._wait_input("record", self.timeout)
        call._speak(self.seconds)


@dataclass
class Hangup:
    """The caller hangs up now (cause as the switch reports a BYE from the caller)."""
    cause: str = "NORMAL_CLEARING"

    def run(self, call) -> None:
        call.hangup(self.cause)


@dataclass
class SendFax:
    """The caller is a fax machine: a following rxfax receives `pages` pages."""
    pages: int = 1

    def run(self, call) -> None:
        call.runner.fax_pages_to_send = self.pages
        # freeswitch-conf's dialplan listens for the calling tone (CNG) on the hotline numbers when
        # hotline_fax_detect is true (the shipped default): its detector sets this variable when it hears it.
        ch = call.channel
        if (ch.get_var("hotline_fax_detect") or call.sw.global_vars.get("hotline_fax_detect")) == "true":
            ch.set_var("fax_tone_detected", "true")


@dataclass
class WaitAnswered:
    """Wait until the channel is answered."""
    timeout: float = DEFAULT_TIMEOUT

    def run(self, call) -> None:
        call._wait(lambda: call.channel.answered or call.channel.hung_up, self.timeout, "answer")


@dataclass
class WaitBridged:
    """Wait until the call is bridged to another leg (an agent)."""
    timeout: float = DEFAULT_TIMEOUT

    def run(self, call) -> None:
        call._wait(lambda: call.channel.other is not None or call.channel.hung_up, self.timeout, "bridge")

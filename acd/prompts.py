"""What a queued caller hears: the ACD's prompt texts and the files (or say commands) that voice them.

Pure apart from the optional renderer: ``AcdPrompts(sounds_dir, render)`` names files under
``<sounds_dir>/<lang>/acd/`` and, when a renderer (text, path) -> None is wired (hotline.product wires
ivr.prompts.call_time_renderer), renders a missing file on first use; ``prepare`` renders every agent's
operator number ahead (the Acd calls it in the background whenever it loads its agents). Without a renderer, missing files are skipped rather than played as silence
errors, and the caller simply keeps hearing music.
"""
from __future__ import annotations

import collections
import logging
import math
from pathlib import Path
from typing import Callable, Iterable

import gevent.lock

log = logging.getLogger(__name__)

TEXTS_ZH = {
    "position": "您前面还有{position}位来电者，预计等待{minutes}分钟。按{key}键可留下回拨请求，我们会尽快给您回电。",
    "position_first": "您是下一位来电者，请稍候，马上为您接通。",
    "operator": "{operator_no}号话务员为您服务。",
    "callback_saved": "您的回拨请求已记录，我们会尽快给您回电，再见。",
    "overflow_callback": "对不起，坐席全忙，我们已记录您的号码，稍后给您回电，再见。",
    "all_busy": "对不起，坐席全忙，请您留言。",
}
TEXTS_EN = {
    "position": "There are {position} callers ahead of you; the expected wait is {minutes} minutes. "
                "Press {key} to leave a call-back request.",
    "position_first": "You are next in line; an agent will be with you shortly.",
    "operator": "Operator number {operator_no} at your service.",
    "callback_saved": "Your call-back request is saved. We will call you back soon. Goodbye.",
    "overflow_callback": "Sorry, all agents are busy. We have your number and will call you back. Goodbye.",
    "all_busy": "Sorry, all agents are busy. Please leave a message.",
}


def expected_wait_minutes(position: int, average_handle_seconds: float, agents_serving: int) -> int:
    """Rough expected wait: callers ahead x average handling time / agents serving, at least 1 minute."""
    if position <= 0:
        return 0
    serving = max(1, agents_serving)
    return max(1, math.ceil(position * max(average_handle_seconds, 30.0) / serving / 60.0))


FIXED = ("callback_saved", "overflow_callback", "all_busy")


def _operator_digits(operator_no: str) -> str:
    return "".join(ch for ch in operator_no or "" if ch.isalnum())[:16]


class AcdPrompts:
    """Files for ACD announcements; rendered on first use when a renderer is given."""

    def __init__(self, sounds_dir: Path | str, render: Callable[[str, Path], None] | None = None,
                 lang: str = "zh", switch_dir: str = ""):
        self.sounds_dir = Path(sounds_dir)
        self.render = render
        self.lang = lang
        # FreeSWITCH may see the sounds under another path (another machine).
        self.switch_dir = switch_dir
        # One renderer per file at a time: a call and prepare() may want the same prompt together. A gevent
        # lock: the renderer yields to other greenlets (subprocesses), which may wait here for the same file.
        self._rendering: dict[str, gevent.lock.Semaphore] = collections.defaultdict(gevent.lock.Semaphore)

    def prepare(self, operator_nos: Iterable[str]) -> int:
        """Render what callers hear most before they need it: every agent's operator number (自动报工号),
        "you are next" and the fixed announcements. Returns how many of them are available."""
        paths = [self.operator(no) for no in operator_nos] + [self.fixed(name) for name in FIXED]
        paths.append(self.position(1, 1, ""))
        return sum(1 for path in paths if path)

    def _texts(self) -> dict[str, str]:
        return TEXTS_ZH if self.lang == "zh" else TEXTS_EN

    def _path(self, name: str) -> Path:
        return self.sounds_dir / self.lang / "acd" / f"{name}.wav"

    def _file(self, name: str, text: str) -> str:
        path = self._path(name)
        if not path.is_file():
            if self.render is None:
                return ""
            with self._rendering[name]:
                if not path.is_file():
                    try:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        self.render(text, path)
                    except (OSError, RuntimeError) as exc:
                        log.warning("could not render ACD prompt %s: %s", name, exc)
                        return ""
        if self.switch_dir:
            return f"{self.switch_dir.rstrip('/')}/{self.lang}/acd/{name}.wav"
        return str(path)

    def position(self, position: int, minutes: int, key: str) -> str:
        """The position/expected-wait announcement ("" when not available)."""
        if position <= 1:
            return self._file("position_first", self._texts()["position_first"])
        text = self._texts()["position"].format(position=position - 1, minutes=minutes, key=key)
        return self._file(f"position_{position - 1}_{minutes}_{key}", text)

    def operator(self, operator_no: str) -> str:
        """The 自动报工号 announcement for an operator number ("" when not available)."""
        safe = _operator_digits(operator_no)
        if not safe:
            return ""
        return self._file(f"operator_{safe}", self._texts()["operator"].format(operator_no=" ".join(safe)))

    def fixed(self, name: str) -> str:
        """One of the fixed announcements (callback_saved, overflow_callback, all_busy)."""
        return self._file(name, self._texts()[name])

"""Audited actions have a name in both languages, so the audit log never shows an action code: those a scan of
the source finds, and those built at run time that BUILT lists."""
from __future__ import annotations

import pathlib
import re

from webui.blueprints.audit import ACTIONS

ROOT = pathlib.Path(__file__).resolve().parents[3]
# Actions whose code is built at run time: the prefix and the codes it can make.
BUILT = {"ivr_campaign_": ("group", "satisfaction", "pause", "resume"),
         "notice_": ("submit", "publish", "send_back", "withdraw"),
         "assessment_appeal_": ("accepted", "rejected"),
         "org_": ("category", "region", "responsibility", "remove_responsibility"),
         "calendar_": ("day", "clear_day", "limit", "clear_limit"),
         # acd.admin's queue writes name their action for the one helper of each kind of queue.
         "acd_queue_": ("create", "update", "update_refused"),
         "chat_queue_": ("create", "update", "update_refused")}


def audited_codes() -> set[str]:
    """The double-quoted literal first arguments (not followed by ``+``) of ``audit(`` calls in the .py files
    below the project's top-level folders (.venv, tests and bench aside)."""
    codes = set()
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in (".venv", "tests", "bench"):
            continue
        codes.update(re.findall(r'\baudit\(\s*"([a-z0-9_]+)"(?!\s*\+)', path.read_text(encoding="utf-8")))
    return codes


def test_every_audited_action_is_named():
    """Should name in zh and en (two texts, different, not empty) every action code audited_codes finds (with
    BUILT more than 60) and every code BUILT lists for a prefix completed at run time. A code passed in a
    variable, or built at run time and not in BUILT, is not seen."""
    codes = audited_codes() | {prefix + what for prefix, whats in BUILT.items() for what in whats}
    assert len(codes) > 60  # the scan found the calls
    assert sorted(codes - set(ACTIONS)) == []
    assert all(zh and en and zh != en for zh, en in ACTIONS.values())

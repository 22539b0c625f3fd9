"""Validators take ASCII digits only and nothing after the end (issue 16 item 15): ``\\d`` matches other
scripts' digits (full-width １２３, Arabic-Indic ٣) and ``$`` accepts a trailing newline, neither of which a
switch, an SMS gateway or a database index expects."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("caseflow", "ivr", "acd", "webui", "channels", "hotline")
# Masking must catch every digit a person could write, so it keeps \d on purpose.
BROAD_ON_PURPOSE = {"ivr/privacy.py", "caseflow/privacy.py"}
RE_CALLS = {"compile", "match", "fullmatch", "search", "sub", "subn", "findall", "finditer", "split"}


def _regex_literals(path: Path):
    """(line, pattern) of every string literal passed as the pattern to a ``re.<call>`` in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RE_CALLS
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.lineno, node.args[0].value


def test_no_validator_uses_backslash_d_or_a_closing_dollar():
    """Should find no \\d and no $ closing a pattern (or an alternative) in a string literal passed as the pattern
    to ``re.<call>`` (RE_CALLS, on the name ``re``) in the packages PACKAGES lists, BROAD_ON_PURPOSE aside (core,
    switch, recorder, stats, ops and run.py are not read). A pattern kept in a variable first, or passed to
    re's functions by another name, is not seen."""
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in BROAD_ON_PURPOSE:
                continue
            for line, pattern in _regex_literals(path):
                if re.search(r"(?<!\\)\\d", pattern) or re.search(r"(?<!\\)\$(\)*)(\||\Z)", pattern):
                    found.append(f"{rel}:{line}: {pattern}")
    assert found == []


@pytest.mark.parametrize("check, good", [
    ("caseflow.values:PHONE_RE", "13800138000"),
    ("caseflow.values:NUMBER_RE", "12345678"),
    ("caseflow.accounts:OPERATOR_NO_RE", "1001"),
    ("caseflow.faxout:FAX_NUMBER_RE", "01088886666"),
    ("ivr.tree:PHONE_RE", "12345"),
    ("ivr.campaigns:PHONE_RE", "13800138000"),
    ("ivr.handback:UUID_RE", "c0ffee00-0000-4000-8000-000000000001"),
    ("channels.sms:_MOBILE_RE", "13800138000"),
    ("webui.blueprints.admin_acd:EXTENSION_RE", "1001"),
    ("webui.blueprints.agent_desk:DIGITS_RE", "13800138000"),
])
def test_validators_refuse_a_trailing_newline_and_foreign_digits(check, good):
    """Should accept the plain value and refuse it with a trailing newline or in full-width digits."""
    import importlib

    module, name = check.split(":")
    pattern = getattr(importlib.import_module(module), name)
    assert pattern.match(good)
    assert not pattern.match(good + "\n")
    full_width = "".join(chr(ord(ch) + 0xFEE0) if ch.isdigit() else ch for ch in good)
    assert not pattern.match(full_width)

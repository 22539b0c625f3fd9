"""Pure SMS rules: numbers, segmentation, keywords, delivery reports, quiet hours, caps, backoff, templates."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from channels import policy, sms
from channels.templates import DEFAULTS, TemplateInputError, render_text

TZ = ZoneInfo("Asia/Shanghai")


def test_numbers():
    """Should normalise +86 and separators and refuse what is not a number."""
    assert sms.normalise_number("+86 138-0013-8000") == "13800138000"
    assert sms.normalise_number("008613800138000") == "13800138000"
    assert sms.normalise_number("1063912345") == "1063912345"
    assert sms.is_mobile("13800138000") and not sms.is_mobile("02012345678") and not sms.is_mobile("abc")
    for bad in ("", "12", "13800<script>", "1" * 25, "13800138000;DROP"):
        with pytest.raises(sms.SmsInputError):
            sms.normalise_number(bad)


def test_segments():
    """Should count UCS-2 parts: 70 in one, 67 per concatenated part, emoji as two units."""
    assert sms.segments("你" * 70) == 1
    assert sms.segments("你" * 71) == 2
    assert sms.segments("你" * 134) == 2
    assert sms.segments("你" * 135) == 3
    assert sms.utf16_units("😀") == 2
    assert sms.segments("😀" * 35) == 1 and sms.segments("😀" * 36) == 2


def test_fit_cuts_to_ten_parts_without_splitting_an_emoji():
    """Should cut a text longer than ten parts and keep surrogate pairs whole."""
    long = "😀" * 1000
    cut = sms.fit(long)
    assert sms.segments(cut) <= sms.MAX_PARTS and cut.endswith("…")
    assert cut.encode("utf-16-be").decode("utf-16-be") == cut
    assert sms.fit("短") == "短"


def test_clean_inbound():
    """Should drop control characters, keep newlines and cut at MAX_INBOUND."""
    assert sms.clean_inbound("a\x00b\x07\nc ") == "ab\nc"
    assert len(sms.clean_inbound("字" * 5000)) == sms.MAX_INBOUND


@pytest.mark.parametrize("text,expected", [
    ("TD", sms.Keyword("optout", "TD")), ("td", sms.Keyword("optout", "TD")), ("退订", sms.Keyword("optout", "退订")),
    ("ＴＤ", sms.Keyword("optout", "TD")), ("CX 12345678", sms.Keyword("query", "12345678")),
    ("cx12345678", sms.Keyword("query", "12345678")), ("查询：1234-5678", sms.Keyword("query", "12345678")),
    ("CX", sms.Keyword("query", "")), ("1", sms.Keyword("rating", "satisfied")), ("２", sms.Keyword("rating", "basic")),
    ("不满意", sms.Keyword("rating", "unsatisfied")), ("路灯坏了", None), ("TD路灯坏了", None), ("CX abc", None),
    ("", None),
])
def test_keywords(text, expected):
    """Should read TD/退订, CX <number> and ratings, full-width and any case; plain text is no keyword."""
    assert sms.parse_keyword(text) == expected


def test_delivery_reports_never_move_back():
    """Should move queued/sent forward on reports and never back (delivered may come before accepted)."""
    assert sms.status_after_report("sent", 1) == "delivered"
    assert sms.status_after_report("delivered", 8) == "delivered"
    assert sms.status_after_report("sent", 16) == "failed"
    assert sms.status_after_report("sending", 8) == "sent"
    with pytest.raises(sms.SmsInputError):
        sms.status_after_report("sent", 3)


def test_quiet_hours():
    """Should hold non-urgent messages from 21:00 to 08:00 and let urgent ones through."""
    quiet = policy.QuietHours.parse("21:00-08:00")
    night = dt.datetime(2026, 3, 2, 23, 30, tzinfo=TZ)
    morning = dt.datetime(2026, 3, 3, 7, 0, tzinfo=TZ)
    day = dt.datetime(2026, 3, 3, 12, 0, tzinfo=TZ)
    assert quiet.contains(night) and quiet.contains(morning) and not quiet.contains(day)
    assert policy.earliest_send(night, False, quiet) == dt.datetime(2026, 3, 3, 8, 0, tzinfo=TZ)
    assert policy.earliest_send(morning, False, quiet) == dt.datetime(2026, 3, 3, 8, 0, tzinfo=TZ)
    assert policy.earliest_send(night, True, quiet) == night
    assert policy.earliest_send(day, False, quiet) == day
    assert not policy.QuietHours.parse("off").contains(night)
    for bad in ("25:00-08:00", "9pm", "21:00"):
        with pytest.raises(sms.SmsInputError):
            policy.QuietHours.parse(bad)


def test_caps_and_backoff():
    """Should cap at the daily limit (0: none) and back off 5 s doubling up to 5 minutes."""
    assert policy.over_cap(20, 20) and not policy.over_cap(19, 20) and not policy.over_cap(999, 0)
    assert [policy.backoff(n).total_seconds() for n in (1, 2, 3, 10)] == [5, 10, 20, 300]



def test_pace_limits_the_rate_with_a_small_burst():
    """Should let a burst of rate/10 go at once, then one message per 1/rate seconds; rate 0 never waits;
    a negative rate is refused."""
    pace = policy.Pace(100)  # burst 10
    assert [pace.wait(0.0) for _ in range(10)] == [0.0] * 10
    assert pace.wait(0.0) == pytest.approx(0.01)
    assert pace.wait(0.01) == 0.0 and pace.wait(0.01) > 0
    assert pace.wait(10.0) == 0.0  # refilled, but never above the burst
    assert sum(1 for _ in range(20) if pace.wait(10.0) == 0.0) == 9
    unlimited = policy.Pace(0)
    assert all(unlimited.wait(0.0) == 0.0 for _ in range(1000))
    with pytest.raises(ValueError):
        policy.Pace(-1)

def test_default_templates_render():
    """Should render every default in both languages with its variables, in the sandbox."""
    for key, default in DEFAULTS.items():
        values = {name: "X" for name in default.variables}
        assert render_text(default.zh, values) and render_text(default.en, values)


def test_sandbox_refuses_reaching_out():
    """Should refuse a template that reaches for Python internals or an unknown variable."""
    with pytest.raises(TemplateInputError):
        render_text("{{ number.__class__.__mro__[1].__subclasses__() }}", {"number": "1"})
    with pytest.raises(TemplateInputError):
        render_text("{{ secret }}", {})
    with pytest.raises(TemplateInputError):
        render_text("{% for %}", {})


@pytest.mark.parametrize("raw, stored", [
    ("13800138000", "13800138000"), ("+86 138-0013-8000", "13800138000"), ("008613800138000", "13800138000"),
    ("(138) 0013 8000", "13800138000"),
    ("", None), (None, None), ("0571-87654321", None), ("12345", None), ("1380013800", None), ("abc", None),
    ("23800138000", None), ("1380013800012345678901234", None),
])
def test_mobile_number(raw, stored):
    """Should give a number an SMS reaches as stored (digits, no +86) and None for a landline, a short code or
    anything malformed: the one test the receipts, the outbox, the website's codes and the duty phones share."""
    assert sms.mobile_number(raw) == stored
    assert (stored is not None) == sms.is_mobile(raw or "")

"""The flow chart, node edits, the day/night schedule and recording lengths (pure parts of the IVR)."""
from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from core.calendar import WorkCalendar
from ivr.audio import wav_lengths
from ivr.chart import layout, render_svg
from ivr.edit import EditError, edit_node, edit_settings, parse_keys
from tests.unit.ivr.test_tree import english
from ivr.schedule import time_state
from ivr.tree import Problem, load_tree, parse_tree, validate
from tests.fakeswitch.audio import write_wav


def test_chart_is_valid_svg_with_every_node_and_route():
    """Should draw every node once and one arrow per route, as well-formed SVG."""
    tree = load_tree()
    svg = render_svg(tree, [Problem("poll", "x")], highlight="main")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    nodes = [g.get("data-node") for g in root.iter(f"{ns}g") if g.get("data-node")]
    assert sorted(nodes) == sorted(tree.nodes)
    routes = sum(len(tree.edges(n)) for n in tree.nodes.values())
    assert len([g for g in root.iter(f"{ns}g") if g.get("class") == "ivr-route"]) == routes
    assert 'stroke="#dc2626"' in svg  # the node with a problem is outlined


def test_chart_escapes_hostile_text():
    """Should escape node ids and texts so the chart cannot carry markup or script."""
    text = ('[tree]\nstart = "a<script>"\n[settings]\n[nodes."a<script>"]\nkind = "prompt"\n'
            'text = "</text><script>alert(1)</script>"\nnext = "b"\n[nodes.b]\nkind = "hangup"\n')
    svg = render_svg(parse_tree(text))
    assert "<script>" not in svg
    ET.fromstring(svg)


def test_layout_columns_follow_distance():
    """Should place nodes in columns by distance from the start."""
    places = layout(load_tree())
    assert places["blacklist"][0] == 0 and places["welcome"][0] == 1 and places["main"][0] == 3


def test_edit_node_round_trip():
    """Should change a menu's keys and timeout and keep the tree valid."""
    tree = load_tree()
    source = edit_node(tree, "self_menu", {"keys": "1=mailbox\n2=complaint_record\n0=main\n*=@repeat",
                                           "timeout": "8"})
    new = parse_tree(source)
    assert new.node("self_menu").keys == {"1": "mailbox", "2": "complaint_record", "0": "main", "*": "@repeat"}
    assert new.node("self_menu").get("timeout") == 8
    # status_query and fax stay reachable: agents hand callers to them (handback = true)
    assert [p.node for p in validate(new)] == ["consult", "poll"]  # now unreachable


@pytest.mark.parametrize("changes,message", [
    ({"keys": "1 mailbox"}, "cannot read"), ({"keys": "1=nowhere"}, "unknown node"),
    ({"keys": "1=main\n1=poll"}, "given twice"), ({"timeout": "soon"}, "not a whole number"),
    ({"on_fail": "ghost"}, "unknown node"), ({"skill": "x"}, "cannot be edited"),
])
def test_edit_node_refuses_bad_input(changes, message):
    """Should refuse malformed edits with a message naming the field."""
    with pytest.raises(EditError, match=message):
        edit_node(load_tree(), "self_menu", changes)


def test_parse_keys_forms():
    """Should read keys written with = or : on lines or separated by commas."""
    assert parse_keys("1=a, 2: b\n* = @repeat") == {"1": "a", "2": "b", "*": "@repeat"}


def test_edit_settings_keeps_types():
    """Should keep lists, numbers and strings typed."""
    new = parse_tree(edit_settings(load_tree(), {"max_retries": "2", "skills": "general, consult",
                                                 "duty_mobile": "13912345678"}))
    assert new.setting("max_retries") == 2 and new.setting("skills") == ["general", "consult"]
    with pytest.raises(EditError):
        edit_settings(load_tree(), {"nosuch": "1"})


CAL = WorkCalendar(holidays=frozenset({dt.date(2026, 10, 1)}), workdays=frozenset({dt.date(2026, 10, 10)}))


@pytest.mark.parametrize("moment,expect", [
    (dt.datetime(2026, 10, 9, 9, 0), "open"), (dt.datetime(2026, 10, 9, 7, 59), "closed"),
    (dt.datetime(2026, 10, 9, 20, 0), "closed"), (dt.datetime(2026, 10, 1, 10, 0), "holiday"),
    (dt.datetime(2026, 10, 11, 10, 0), "closed"), (dt.datetime(2026, 10, 10, 10, 0), "open"),
])
def test_time_state(moment, expect):
    """Should follow working hours, weekends, holidays and make-up working days."""
    assert time_state(CAL, moment) == expect


def test_wav_lengths(tmp_path):
    """Should measure length and voiced part of a recording; silence is not voice."""
    path = tmp_path / "r.wav"
    write_wav(path, 5.0, [(1.0, 3.0)])
    total, voiced = wav_lengths(path)
    assert total == 5000 and 1900 <= voiced <= 2100
    write_wav(path, 4.0, [])
    assert wav_lengths(path) == (4000, 0)
    (tmp_path / "bad.wav").write_bytes(b"nope")
    assert wav_lengths(tmp_path / "bad.wav") is None and wav_lengths(tmp_path / "missing.wav") is None


# Day kinds of CAL: a working day, a rest day (a plain Sunday), a make-up working Saturday, a declared holiday.
WORKDAY, REST_DAY, MAKE_UP, HOLIDAY = (dt.date(2026, 10, 9), dt.date(2026, 10, 11), dt.date(2026, 10, 10),
                                       dt.date(2026, 10, 1))


def at(day, hour):
    return dt.datetime.combine(day, dt.time(hour))


@pytest.mark.parametrize("day", [WORKDAY, REST_DAY, MAKE_UP, HOLIDAY])
@pytest.mark.parametrize("hour", [3, 10, 22])
def test_shipped_default_answers_every_day_kind_around_the_clock(day, hour):
    """Should answer at every hour of every day kind with the shipped settings (P1 一.1: 24 hours)."""
    settings = load_tree().settings
    assert (settings["office_hours"], settings["rest_days"]) == (False, "staffed")
    assert time_state(CAL, at(day, hour), office_hours=False, rest_days="staffed") == "open"


@pytest.mark.parametrize("rest_days,day,hour,expect", [
    ("forward", WORKDAY, 3, "open"), ("forward", MAKE_UP, 10, "open"),
    ("forward", REST_DAY, 10, "holiday"), ("forward", HOLIDAY, 10, "holiday"),
    ("closed", REST_DAY, 10, "closed"), ("closed", HOLIDAY, 10, "closed"), ("closed", WORKDAY, 22, "open"),
])
def test_rest_days_and_holidays_follow_one_rule_24h(rest_days, day, hour, expect):
    """Should treat rest days and declared holidays alike (P5 §3.4.5 节假日或休息日), working days staffed."""
    assert time_state(CAL, at(day, hour), office_hours=False, rest_days=rest_days) == expect


@pytest.mark.parametrize("rest_days,day,hour,expect", [
    ("staffed", WORKDAY, 10, "open"), ("staffed", WORKDAY, 22, "closed"), ("staffed", REST_DAY, 10, "open"),
    ("staffed", HOLIDAY, 10, "open"), ("staffed", HOLIDAY, 7, "closed"), ("staffed", MAKE_UP, 10, "open"),
    ("forward", REST_DAY, 22, "holiday"), ("forward", HOLIDAY, 3, "holiday"), ("forward", WORKDAY, 7, "closed"),
    ("closed", REST_DAY, 10, "closed"), ("closed", HOLIDAY, 10, "closed"), ("closed", MAKE_UP, 10, "open"),
])
def test_office_hours_with_each_rest_day_rule(rest_days, day, hour, expect):
    """Should staff only working_hours when office hours are on, and give rest days and holidays one rule."""
    assert time_state(CAL, at(day, hour), office_hours=True, rest_days=rest_days) == expect


@pytest.mark.parametrize("bad", ["Forward", "holiday", "yes", None])
def test_time_state_refuses_unknown_rest_day_rule(bad):
    """Should refuse an unknown rest-day rule with a clear error rather than guess."""
    with pytest.raises(ValueError, match="rest_days must be one of"):
        time_state(CAL, at(WORKDAY, 10), office_hours=False, rest_days=bad)


def test_schedule_settings_validated():
    """Should report office_hours/weekends_open that are not booleans and an unknown rest_days, in the
    settings and on a time node, so such a tree cannot be activated."""
    source = load_tree().source.replace("office_hours = false", 'office_hours = "no"').replace(
        'rest_days = "staffed"', 'rest_days = "sometimes"').replace(
        'schedule = "calendar"', 'schedule = "calendar"\nweekends_open = 1')
    messages = [english(p) for p in validate(parse_tree(source))]
    assert "settings: office_hours must be true or false, got 'no'" in messages
    assert any(m.startswith("settings: rest_days must be one of staffed, forward, closed") for m in messages)
    assert "human_time: weekends_open must be true or false, got 1" in messages


def test_edit_schedule_settings():
    """Should switch office hours on and set the rest-day rule from the settings form, add them to a tree
    saved before they existed, and refuse values that are not understood, naming the setting."""
    tree = parse_tree(edit_settings(load_tree(), {"office_hours": "true", "rest_days": "forward",
                                                  "working_hours": "07:30, 21:00"}))
    assert (tree.setting("office_hours"), tree.setting("rest_days")) == (True, "forward")
    assert tree.setting("working_hours") == ["07:30", "21:00"] and validate(tree) == []
    old = parse_tree(load_tree().source.replace("office_hours = false\n", "").replace('rest_days = "staffed"\n', ""))
    assert parse_tree(edit_settings(old, {"office_hours": "", "rest_days": ""})).settings == old.settings
    assert parse_tree(edit_settings(old, {"rest_days": "closed"})).setting("rest_days") == "closed"
    for changes, message in [({"office_hours": "maybe"}, "office_hours"), ({"rest_days": "weekends"}, "rest_days"),
                             ({"working_hours": "20:00, 08:00"}, "working_hours"),
                             ({"working_hours": "8 to 20"}, "working_hours")]:
        with pytest.raises(EditError, match=message):
            edit_settings(load_tree(), changes)


def test_must_hear_validated_edited_and_charted():
    """Should accept must_hear = true/false on prompt nodes only, set it from the node form (refusing
    words it does not understand) and mark the node in the chart."""
    tree = parse_tree(edit_node(load_tree(), "welcome", {"must_hear": "true"}))
    assert tree.nodes["welcome"].get("must_hear") is True and validate(tree) == []
    assert "Must hear" in render_svg(tree)
    with pytest.raises(EditError, match="must_hear"):
        edit_node(load_tree(), "welcome", {"must_hear": "always"})
    with pytest.raises(EditError, match="must_hear"):
        edit_node(load_tree(), "main", {"must_hear": "true"})  # not a field of menus
    bad = load_tree().source.replace('prompt = "welcome"', 'prompt = "welcome"\nmust_hear = "yes"').replace(
        'prompt = "main_menu"', 'prompt = "main_menu"\nmust_hear = true')
    messages = [english(p) for p in validate(parse_tree(bad))]
    assert "welcome: must_hear must be true or false, got 'yes'" in messages
    assert any(m.startswith("main: must_hear applies to prompt nodes only") for m in messages)

"""Tree loading and validation: the default tree is valid; every kind of error is named with its node."""
from __future__ import annotations

from pathlib import Path

import pytest

from ivr.prompts import prompt_keys
from ivr.tree import TreeError, dump_toml, halves, load_tree, parse_tree, validate

SOUNDS = Path(__file__).resolve().parents[3] / "sounds"

SMALL = """
[tree]
start = "main"
[settings]
menu_timeout = 5
max_retries = 3
invalid_prompt = "invalid_key"
skills = ["general"]
[nodes.main]
kind = "menu"
prompt = "main_menu"
keys = { "1" = "person", "*" = "@repeat" }
timeout_route = "person"
on_fail = "person"
[nodes.person]
kind = "queue"
skill = "general"
on_busy = "bye"
[nodes.bye]
kind = "hangup"
"""


def english(problem) -> str:
    """A problem as "node: message" with the message's English half (problems are written "中文 / English")."""
    message = halves(problem.message)[1]
    return f"{problem.node}: {message}" if problem.node else message


def problems_of(text: str, **kw) -> list[str]:
    return [english(p) for p in validate(parse_tree(text), **kw)]


def test_default_tree_is_valid_with_real_prompts():
    """Should validate the shipped default tree against the shipped prompt files."""
    tree = load_tree()
    assert validate(tree, prompt_keys=prompt_keys(SOUNDS)) == []
    assert tree.start == "blacklist"
    main = tree.node("main")
    assert main.keys["1"] == "human_time" and main.keys["2"] == "self_menu"
    assert main.get("timeout_route") == "human_time"
    assert tree.node("self_menu").keys == {"1": "mailbox", "2": "complaint_record", "3": "status_query",
                                           "4": "consult", "5": "poll", "6": "fax", "0": "main", "9": "human_time",
                                           "*": "@repeat"}
    assert {tree.node(n).get("skill") for n in ("queue_consult", "queue_complaint", "queue_convenience")} == {
        "consult", "complaint", "convenience"}
    assert tree.node("human_menu").keys["0"] == "take_message"


def test_small_tree_is_valid():
    """Should accept a minimal complete tree."""
    assert problems_of(SMALL) == []


def test_unreachable_node():
    """Should name a node nothing leads to."""
    text = SMALL + '[nodes.orphan]\nkind = "hangup"\n'
    assert problems_of(text) == ["orphan: unreachable from the start node"]


def test_menu_without_timeout_or_invalid_handling():
    """Should refuse a menu without a timeout or invalid-key handling."""
    text = SMALL.replace("menu_timeout = 5\n", "").replace('invalid_prompt = "invalid_key"\n', "")
    found = problems_of(text)
    assert "main: menu without timeout handling ('timeout' seconds)" in found
    assert "main: menu without invalid-key handling ('invalid_prompt')" in found


def test_missing_retry_limit_and_final_route():
    """Should refuse a menu without a retry limit or a final route."""
    text = SMALL.replace("max_retries = 3\n", "").replace('on_fail = "person"\n', "")
    found = problems_of(text)
    assert "main: missing retry limit 'max_retries' (1-10)" in found
    assert "main: missing final route 'on_fail'" in found


def test_loop_without_caller_action():
    """Should refuse routes that repeat without the caller pressing anything."""
    text = SMALL.replace('on_busy = "bye"', 'on_busy = "again"') + (
        '[nodes.again]\nkind = "prompt"\nprompt = "all_busy"\nnext = "person"\n')
    found = problems_of(text)
    assert any("loop without a caller action" in p and "person" in p and "again" in p for p in found), found


def test_menu_timeout_to_itself_is_a_loop():
    """Should refuse a menu whose timeout route leads back to itself (an IVR timeout that loops forever)."""
    found = problems_of(SMALL.replace('timeout_route = "person"', 'timeout_route = "main"'))
    assert any(p.startswith("main: loop without a caller action") for p in found), found


def test_key_loops_are_allowed():
    """Should allow a key that leads back (the caller acts each time)."""
    assert problems_of(SMALL.replace('"1" = "person"', '"1" = "person", "2" = "main"')) == []


def test_unknown_references():
    """Should name unknown nodes, queues, prompts and numbers."""
    text = SMALL.replace('skill = "general"', 'skill = "nosuch"').replace('"1" = "person"', '"1" = "ghost"')
    text += '[nodes.x]\nkind = "transfer"\nsetting = "duty_mobile"\non_fail = "bye"\n'
    text = text.replace('"*" = "@repeat"', '"*" = "@repeat", "3" = "x"')
    found = problems_of(text, prompt_keys={"main_menu"})
    assert "main: key 1 leads to unknown node 'ghost'" in found
    assert any(p.startswith("person: unknown queue/skill 'nosuch': no active queue serves it") for p in found)
    assert "x: the setting 'duty_mobile' it dials is not set" in found
    assert "main: unknown prompt 'invalid_key'" not in found  # settings prompt is not a node prompt
    bad_number = text.replace('setting = "duty_mobile"', 'number = "call-me"')
    assert "x: number: 'call-me' is not a phone number" in problems_of(bad_number)


def test_unknown_prompt():
    """Should name a prompt that has no text."""
    assert problems_of(SMALL, prompt_keys={"x"}) == ["settings: unknown prompt 'invalid_key'",
                                                     "main: unknown prompt 'main_menu'"]


def test_keys_that_cannot_be_pressed():
    """Should refuse menu keys a phone does not have."""
    assert "main: key 'A' cannot be pressed on a phone" in problems_of(SMALL.replace('"1" =', '"A" ='))


def test_syntax_error_is_clear():
    """Should report a file that is not TOML with the parser's position."""
    with pytest.raises(TreeError) as info:
        parse_tree("[tree\nstart=")
    assert "cannot parse the tree file (toml)" in str(info.value)


def test_structural_errors_name_nodes():
    """Should name nodes with unknown kinds and report a missing start."""
    with pytest.raises(TreeError) as info:
        parse_tree('[nodes.a]\nkind = "teleport"\n[nodes.b]\nkind = 3\n')
    messages = [english(p) for p in info.value.problems]
    assert "the tree has no start node ('tree.start')" in messages
    assert any(m.startswith("a: unknown kind 'teleport'") for m in messages)
    assert any(m.startswith("b: unknown kind 3") for m in messages)


def test_json_trees_load():
    """Should read the same tree from JSON."""
    import json
    import tomllib

    data = tomllib.loads(SMALL)
    assert validate(parse_tree(json.dumps(data), "json")) == []
    with pytest.raises(TreeError):
        parse_tree("{not json", "json")


def test_dump_round_trip():
    """Should write a tree back to TOML that reads back the same."""
    tree = load_tree()
    again = parse_tree(dump_toml(tree))
    assert again.nodes == tree.nodes and dict(again.settings) == dict(tree.settings) and again.start == tree.start


def test_record_limits():
    """Should refuse a recording node whose minimum is not below its maximum."""
    text = SMALL.replace('"1" = "person"', '"1" = "rec"') + (
        '[nodes.rec]\nkind = "record"\nmin_seconds = 10\nmax_seconds = 5\nnext = "bye"\non_cancel = "main"\n'
        'on_fail = "person"\n')
    assert "rec: recording needs 0 <= min_seconds < max_seconds" in problems_of(text)


def test_every_problem_is_written_in_chinese_then_english():
    """Should write each problem "中文 / English" (the web UI shows one half), the Chinese half with no English
    sentence and the English half with no Chinese, for structural errors and validation findings alike."""
    import re

    with pytest.raises(TreeError) as info:
        parse_tree('[nodes.a]\nkind = "teleport"\n')
    bad = SMALL.replace('"1" = "person"', '"1" = "ghost", "A" = "person"').replace('on_fail = "person"', "") \
        .replace('skill = "general"', 'skill = "nosuch"') + '[nodes.orphan]\nkind = "hangup"\n'
    found = list(info.value.problems) + validate(parse_tree(bad), prompt_keys=["main_menu"])
    assert len(found) >= 6
    for problem in found:
        zh, sep, en = problem.message.partition(" / ")
        assert sep and re.search(r"[\u4e00-\u9fff]", zh) and not re.search(r"[\u4e00-\u9fff]", en), problem
    assert "a: unknown kind" in halves(str(info.value))[1] and "a：未知的节点类型" in halves(str(info.value))[0]

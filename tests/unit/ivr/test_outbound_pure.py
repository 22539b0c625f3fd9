"""Outbound IVR, pure parts: pacing to free channels and the satisfaction and group-call trees."""
from __future__ import annotations

import pytest

from ivr import engine as e
from ivr.campaigns import TREES, CampaignError, parse_phones
from ivr.dialer import dials_to_start, free_channels, parse_channel_count
from ivr.tree import load_tree

from .sim import Sim, played, run


@pytest.mark.parametrize("pending,in_flight,parallel,free,expect", [
    (10, 0, 5, 100, 5), (10, 3, 5, 100, 2), (10, 5, 5, 100, 0), (10, 0, 5, 2, 2), (1, 0, 5, 100, 1),
    (0, 0, 5, 100, 0), (10, 7, 5, 100, 0), (10, 0, 5, -3, 0)])
def test_pacing(pending, in_flight, parallel, free, expect):
    """Should never exceed the campaign's parallel limit, the free channels or the numbers due."""
    assert dials_to_start(pending, in_flight, parallel, free) == expect


def test_free_channels_keep_a_reserve_for_callers():
    """Should keep a fifth of the channels for citizens calling in."""
    assert free_channels(0, 1000) == 800
    assert free_channels(790, 1000) == 10
    assert free_channels(900, 1000) == 0


def test_channel_count_parsing():
    """Should read `show channels count` and refuse anything else."""
    assert parse_channel_count("\n12 total.\n") == 12
    assert parse_channel_count("-ERR no reply") is None


def test_phone_list_parsing():
    """Should accept numbers separated any common way and name the bad ones."""
    assert parse_phones("13800138000, 13900000000\n0571-88888888 13800138000") == [
        "13800138000", "13900000000", "057188888888"]
    with pytest.raises(CampaignError, match="not phone numbers: abc"):
        parse_phones("13800138000 abc")
    with pytest.raises(CampaignError, match="no phone numbers"):
        parse_phones("  ")


def _outbound(tree_name, keys, variables=()):
    sim = Sim(keys=keys)
    engine = e.IvrEngine(load_tree(TREES[tree_name]))
    actions = engine.feed(e.CallStarted("13800138000", variables=tuple(variables)))
    while not engine.done:
        sim.actions.extend(actions)
        reply = sim.answer(actions[-1])
        actions = engine.feed(e.Hangup() if reply is not None and not hasattr(reply, "__dataclass_fields__")
                              else reply)
    sim.actions.extend(actions)
    return engine, sim


@pytest.mark.parametrize("key,answer", [("1", "1"), ("3", "3")])
def test_satisfaction_call(key, answer):
    """Should tell the result and keep the satisfaction key."""
    engine, sim = _outbound("satisfaction", [key], [("result", "处理结果：路灯已修复")])
    assert played(sim)[:3] == ["satisfaction_intro", "tts:处理结果：路灯已修复", "satisfaction_menu"]
    assert e.SaveAnswer("satisfaction", answer) in sim.actions and engine.answers == {"satisfaction": answer}
    assert "satisfaction_thanks" in played(sim)


def test_satisfaction_keys_outside_the_choices():
    """Should refuse keys other than 1-3 and give up politely after three tries."""
    engine, sim = _outbound("satisfaction", ["9", "0", ""])
    assert engine.answers == {} and played(sim).count("invalid_key") == 2
    assert played(sim)[-1] == "goodbye"


def test_group_call_speaks_the_message():
    """Should speak the campaign's message by TTS and keep the confirmation key."""
    engine, sim = _outbound("group", ["1"], [("message", "明天停水，请提前储水。")])
    assert "tts:明天停水，请提前储水。" in played(sim) and engine.answers == {"ack": "1"}


def test_run_helper_still_works_for_inbound():
    """Should leave inbound calls without answers."""
    assert run(Sim(keys=["1", "1"])).answers == {}

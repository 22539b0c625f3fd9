"""Which IVR exits serve the caller (IvrEngine.served), per node kind of the default tree: the call record
keeps a served caller off the missed-call list and lists every other one."""
from __future__ import annotations

import pytest

from ivr import engine as e

from .sim import HANGUP, Sim, run

ONE_QUESTION = e.PollLoaded(7, (e.PollQuestion(1, "12", text="满意吗？"),))
TWO_QUESTIONS = e.PollLoaded(7, (e.PollQuestion(1, "12", text="满意吗？"), e.PollQuestion(2, "12", text="常坐吗？")))
FOUND = {("87654321", None): "accepted"}

SERVED = [
    # (case, Sim arguments, run arguments, how the caller was served)
    ("queue answered", dict(keys=["1", "1"]), {}, "queue"),
    ("complaint recording confirmed", dict(keys=["2", "2", "1"], recordings=[4000]), {}, "ticket"),
    ("mayor mailbox confirmed", dict(keys=["2", "1", "1"], recordings=[4000]), {}, "ticket"),
    ("status told", dict(keys=["2", "3", "87654321", "1"], statuses=FOUND), {}, "status"),
    ("consultation heard to its end", dict(keys=["2", "4", "1"]), {}, "consultation"),
    ("poll answered", dict(keys=["2", "5", "1"], poll=ONE_QUESTION), {}, "poll"),
    ("voicemail left (all busy)", dict(keys=["1", "2"], queue="busy", recordings=[4000]), {}, "voicemail"),
    ("after hours, duty phone answered", dict(keys=["1", "2"], time_state="closed"), {}, "transfer"),
    ("fax received", dict(keys=["2", "6"]), {}, "fax"),
    ("satisfaction rated after a hand-back", dict(keys=["1"]), dict(start_node="satisfaction"), "satisfaction"),
]
NOT_SERVED = [
    ("hung up during the welcome", dict(hangup_on_play="welcome"), {}),
    ("hung up in the main menu", dict(keys=[HANGUP]), {}),
    ("hung up while connecting to the queue", dict(keys=["1", "1"], hangup_on_play="connecting"), {}),
    ("hung up mid-recording", dict(keys=["2", "2"], recordings=[(4000, "hangup")]), {}),
    ("hung up at the confirm menu", dict(keys=["2", "2", HANGUP], recordings=[4000]), {}),
    ("recording cancelled, then hung up", dict(keys=["2", "2", "3", HANGUP], recordings=[4000]), {}),
    ("ticket could not be created", dict(keys=["2", "2", "1"], recordings=[4000], ticket=None), {}),
    ("hung up mid status query", dict(keys=["2", "3", "87654321", HANGUP], statuses=FOUND), {}),
    ("status query found nothing", dict(keys=["2", "3", "87654321", "1", "1111#", "11111111", "1", "2222#",
                                              "11111111", "1", "3333#"]), {}),
    ("hung up during the consultation topic", dict(keys=["2", "4", "1"], hangup_on_play="consult_guide"), {}),
    ("consultation: no valid topic, goodbye", dict(keys=["2", "4", "9", "8", "7", ""]), {}),
    ("poll left half answered", dict(keys=["2", "5", "1", HANGUP], poll=TWO_QUESTIONS), {}),
    ("no active poll", dict(keys=["2", "5"]), {}),
    ("voicemail hung up mid-message", dict(keys=["1", "2"], queue="busy", recordings=[(4000, "hangup")]), {}),
    ("after hours, duty phone unreachable, no message",
     dict(keys=["1", "2"], time_state="closed", transfer_ok=False, recordings=[HANGUP]), {}),
    ("fax failed", dict(keys=["2", "6"], fax_ok=False), {}),
    ("satisfaction: no valid key", dict(keys=["9", "9", "9"]), dict(start_node="satisfaction")),
    ("blacklisted", dict(blocked=True), {}),
]


@pytest.mark.parametrize("case,sim_args,run_args,how", SERVED, ids=[c[0] for c in SERVED])
def test_served_exits(case, sim_args, run_args, how):
    """Should mark the caller served, once, at the node's served exit."""
    engine = run(Sim(**sim_args), **run_args)
    assert engine.served == how
    assert [t.what for t in engine.trace if t.what.startswith("served")] == [f"served: {how}"]


@pytest.mark.parametrize("case,sim_args,run_args", NOT_SERVED, ids=[c[0] for c in NOT_SERVED])
def test_unserved_exits(case, sim_args, run_args):
    """Should leave the caller unserved when no node gave them what it offers."""
    engine = run(Sim(**sim_args), **run_args)
    assert engine.done and engine.served == ""
    assert not any(t.what.startswith("served") for t in engine.trace)


def test_hangup_node_after_failure_is_not_served():
    """Should not count reaching the tree's hangup node ("completed") as service: a consultation caller
    who never chose a topic is said goodbye to, and is still unserved."""
    engine = run(Sim(keys=["2", "4", "9", "8", "7", ""]))
    assert engine.outcome == "completed" and engine.served == ""


def test_unconfirmed_recording_is_kept_but_not_served():
    """Should keep a recording the caller hung up on as an unconfirmed ticket, without counting it served
    (the centre calls back to check it)."""
    sim = Sim(keys=["2", "2", HANGUP], recordings=[4000])
    engine = run(sim)
    assert [c.confirmed for c in sim.created] == [False] and engine.served == ""


def test_consultation_topic_is_played_before_the_send_offer():
    """Should play a consultation topic on its own and offer the material only after it ended."""
    sim = Sim(keys=["2", "4", "1", "0", ""])
    run(sim)
    topic = sim.actions.index(e.Play(("consult_guide",), "zh"))
    assert isinstance(sim.actions[topic + 1], e.Collect) and sim.actions[topic + 1].items == ("consult_send_offer",)

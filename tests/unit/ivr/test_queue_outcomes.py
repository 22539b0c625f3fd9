"""Engine: the ACD's "transferred" outcome and a caller an agent transferred into a named queue."""
from __future__ import annotations

from ivr import engine as e
from ivr.tree import load_tree


def test_transferred_ends_control_without_hangup():
    """Should end the call's IVR part with no action at all when the ACD sent the caller elsewhere."""
    engine = e.IvrEngine(load_tree())
    actions = engine.feed(e.CallStarted("13800138000", start_node="queue_general"))
    assert actions[-1] == e.ToQueue("general")
    assert engine.feed(e.QueueResult("transferred")) == []
    assert engine.done and engine.outcome == "queue_transferred"
    assert engine.feed(e.PromptDone()) == []


def test_named_queue_first_then_all_busy():
    """Should go straight to the named queue and, when it is busy, to the tree's all-busy node."""
    engine = e.IvrEngine(load_tree())
    assert engine.feed(e.CallStarted("13800138000", queue="complaint_q")) == [e.ToQueue("", queue="complaint_q")]
    actions = engine.feed(e.QueueResult("busy"))
    assert actions == [e.Play(("all_busy",), "zh")]
    assert [t.node for t in engine.trace][:2] == ["", e.QUEUE_TRANSFER_NODE]


def test_named_queue_busy_without_all_busy_node_uses_a_queue_fallback():
    """Should use another queue node's busy route when the tree has no all_busy node."""
    tree = load_tree()
    nodes = dict(tree.nodes)
    fallback = nodes.pop("all_busy")
    nodes["busy_elsewhere"] = type(fallback)("busy_elsewhere", fallback.kind, fallback.fields)
    for key, node in list(nodes.items()):
        if node.get("on_busy") == "all_busy":
            nodes[key] = type(node)(node.id, node.kind, {**node.fields, "on_busy": "busy_elsewhere"})
    tree = type(tree)(tree.name, tree.start, tree.settings, nodes)
    engine = e.IvrEngine(tree)
    engine.feed(e.CallStarted("1", queue="q"))
    assert engine.feed(e.QueueResult("failed")) == [e.Play(("all_busy",), "zh")]
    assert engine.node.id == "busy_elsewhere"

"""Activation checks queue nodes against the ACD's queues (acd.models.Queue), not only the tree's list."""
from __future__ import annotations

import pytest

from acd.dispatcher import create_queue
from acd.models import Queue
from ivr.store import TreeStore, queue_skills
from ivr.tree import DEFAULT_TREE_PATH, TreeError


@pytest.fixture
def store(db):
    return TreeStore()


def _version(store):
    return store.add_version(DEFAULT_TREE_PATH.read_text(encoding="utf-8"), "default", "test", "t")


def test_no_queues_checks_the_tree_own_skills(store):
    """Should activate the default tree on a fresh install (no queues: the extensions are rung)."""
    assert queue_skills() is None
    assert store.activate(_version(store).id, "t").active


def test_skill_without_a_queue_is_refused(store):
    """Should refuse a tree routing to a skill no active queue serves, naming the node and the skill."""
    for skill in ("general", "consult", "complaint"):
        create_queue(skill, skill)
    with pytest.raises(TreeError) as refused:
        store.activate(_version(store).id, "t")
    problems = {p.node: p.message for p in refused.value.problems}
    assert set(problems) == {"queue_convenience"}
    assert "'convenience'" in problems["queue_convenience"] and "no active queue" in problems["queue_convenience"]


def test_inactive_queue_does_not_count_and_queue_names_do(store):
    """Should count active queues by skill or by name, never a switched-off one."""
    for name, skill in (("general", "general"), ("consult", "consult"), ("complaint", "complaint"),
                        ("convenience", "city_services")):
        create_queue(name, skill)
    assert store.activate(_version(store).id, "t").active
    Queue.update(active=False).where(Queue.name == "convenience").execute()
    assert "convenience" not in queue_skills()
    with pytest.raises(TreeError):
        store.activate(_version(store).id, "t")


def test_shipped_default_is_loaded_even_when_queues_differ(store):
    """Should still load the shipped tree at start-up when the installation's queues serve other skills."""
    create_queue("only", "something_else")
    assert store.ensure_default().active
    assert store.problems(DEFAULT_TREE_PATH.read_text(encoding="utf-8"))  # the admin page lists them

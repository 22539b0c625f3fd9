"""Who may change which queue field (acd.policy)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from acd.policy import (QUEUE_FIELDS, SHIFT_QUEUE_FIELDS, QueueChangeRefused, check_queue_change,
                        may_create_or_delete_queues, queue_fields_for)


def person(*roles):
    return SimpleNamespace(role_set=frozenset(roles))


def test_admin_changes_everything_team_lead_the_shift_settings_others_nothing():
    """Should give administrators every field, team leads (also when agents too) the shift settings, and
    agents, leaders and nobody no field."""
    assert queue_fields_for(person("admin")) == QUEUE_FIELDS
    assert queue_fields_for(person("team_lead", "agent")) == SHIFT_QUEUE_FIELDS == {
        "strategy", "ring_timeout", "announce_interval", "wrap_up_seconds", "no_answer_break", "max_wait"}
    for user in (person("agent"), person("leader"), person(), None):
        assert queue_fields_for(user) == frozenset()
    assert may_create_or_delete_queues(person("admin"))
    assert not may_create_or_delete_queues(person("team_lead")) and not may_create_or_delete_queues(None)


def test_check_queue_change_names_the_refused_fields():
    """Should pass a team lead's shift change and refuse a structural one, naming the fields."""
    check_queue_change(person("team_lead"), {"strategy", "max_wait"})
    check_queue_change(person("agent"), set())
    with pytest.raises(QueueChangeRefused, match="溢出目标、技能 / .*overflow target, skill"):
        check_queue_change(person("team_lead"), {"ring_timeout", "skill", "overflow_target"})
    with pytest.raises(QueueChangeRefused):
        check_queue_change(person("agent"), {"ring_timeout"})

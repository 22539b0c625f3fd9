"""core.pubsub: the in-process bus, and what either bus refuses to carry."""
from __future__ import annotations

import pytest

from core.pubsub import MAX_PAYLOAD, LocalBus, PgBus, PubSubError, open_bus


def test_local_bus_delivers_copies_to_the_topic_subscribers_until_closed():
    """Should call each subscriber of the topic with a copy (through JSON), none of another topic, and stop
    after close(); a failing subscriber does not stop the others."""
    bus = LocalBus()
    got, other = [], []
    message = {"type": "answered", "agent_id": 7, "nested": {"a": [1, 2]}}

    def broken(_message):
        raise RuntimeError("boom")

    bus.subscribe("desk", broken)
    subscription = bus.subscribe("desk", got.append)
    bus.subscribe("chat", other.append)
    bus.publish("desk", message)
    assert got == [message] and got[0] is not message and other == []
    subscription.close()
    subscription.close()
    bus.publish("desk", {"type": "again"})
    assert len(got) == 1 and bus.subscribers("desk") == 1


@pytest.mark.parametrize("topic", ["", "Desk", "1desk", "desk-pop", "d" * 32, "desk;drop", None])
def test_bad_topics_are_refused(topic):
    with pytest.raises(PubSubError, match="topic"):
        LocalBus().publish(topic, {})
    with pytest.raises(PubSubError, match="topic"):
        LocalBus().subscribe(topic, print)


def test_messages_that_cannot_travel_are_refused_with_the_reason():
    bus = LocalBus()
    with pytest.raises(PubSubError, match="dict"):
        bus.publish("desk", ["not", "a", "dict"])
    with pytest.raises(PubSubError, match=f"at most {MAX_PAYLOAD}"):
        bus.publish("desk", {"text": "话" * 3000})  # 9000 bytes of UTF-8


def test_open_bus_chooses_by_database():
    assert isinstance(open_bus("sqlite:///x.sqlite3"), LocalBus)
    assert isinstance(open_bus("postgresql://u@h/db"), PgBus)

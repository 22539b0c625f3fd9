"""core.pubsub.PgBus on PostgreSQL: LISTEN/NOTIFY between two buses (two processes' worth), topics kept
apart, schemas kept apart, and listening again after the connection was cut."""
from __future__ import annotations

import time

import gevent
import pytest

from core.pubsub import PgBus, PubSubError
from tests.integration.product.app_process import PgSchema, reachable_pg

PG = reachable_pg()
pytestmark = pytest.mark.skipif(PG is None, reason="PostgreSQL is not reachable (HOTLINE_TEST_PG)")


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(0.02)
    return False


@pytest.fixture
def schemas():
    made = [PgSchema(PG, "bus1"), PgSchema(PG, "bus2")]
    yield made
    for schema in made:
        schema.drop()


def test_message_reaches_every_bus_of_the_schema_only(schemas):
    """Should deliver a message published on one bus to the subscribers of its topic on every bus of the
    same schema (the publisher's too), in order, and to no bus of another schema."""
    one, two, elsewhere = PgBus(schemas[0].url), PgBus(schemas[0].url), PgBus(schemas[1].url)
    got_one, got_two, got_else, other_topic = [], [], [], []
    one.subscribe("desk", got_one.append)
    two.subscribe("desk", got_two.append)
    two.subscribe("chat", other_topic.append)
    elsewhere.subscribe("desk", got_else.append)
    for bus in (one, two, elsewhere):
        bus.start()
    try:
        for n in range(5):
            one.publish("desk", {"type": "answered", "n": n, "number": "13912345678", "名": "张三"})
        assert _wait(lambda: len(got_two) == 5 and len(got_one) == 5)
        assert [m["n"] for m in got_two] == list(range(5)) and got_two[0]["名"] == "张三"
        # PostgreSQL hands a listener its notifications in commit order: once a marker sent after those
        # five has arrived, none of them is still on its way there.
        elsewhere.publish("desk", {"type": "marker"})
        one.publish("chat", {"type": "marker"})
        assert _wait(lambda: got_else and other_topic)
        assert got_else == [{"type": "marker"}] and other_topic == [{"type": "marker"}]
        assert one.channel("desk") != elsewhere.channel("desk")
        with pytest.raises(PubSubError, match="at most"):
            one.publish("desk", {"text": "x" * 9000})
    finally:
        for bus in (one, two, elsewhere):
            bus.stop()


def test_listening_again_after_the_connection_is_cut(schemas):
    """Should reconnect and LISTEN again when its listening connection is terminated; messages after that
    arrive (those sent meanwhile are lost, as documented)."""
    schema = schemas[0]
    listener, publisher = PgBus(schema.url), PgBus(schema.url)
    got = []
    listener.subscribe("desk", got.append)
    listener.start()
    try:
        pids = [pid for (pid,) in schema.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'hotline pub/sub'"
            " AND query LIKE 'LISTEN%%'")]
        assert pids
        for pid in pids:
            schema.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert _wait(lambda: listener.reconnects >= 1, 10)
        assert _wait(lambda: listener._listen_conn is not None and not listener._listen_conn.closed, 10)

        def arrived():  # sent until it arrives: those sent before the LISTEN took effect are lost
            publisher.publish("desk", {"type": "after"})
            return got and got[-1]["type"] == "after"

        assert _wait(arrived, 10)
    finally:
        listener.stop()
        publisher.stop()

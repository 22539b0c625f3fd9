"""The IVR tree while the database is away: a caller arriving during a PostgreSQL restart walks the menu last
read instead of being hung up (issue 16's faults list)."""
from __future__ import annotations

import peewee
import pytest


def test_the_tree_last_read_serves_a_call_while_the_database_is_away(trees, monkeypatch):
    """Should give the tree last read when reading the active version meets a lost connection, and raise
    when nothing was read yet or the error is not a lost connection."""
    from ivr.store import TreeStore

    trees.ensure_default()
    version_id, tree = trees.active_tree()

    def away(self, name="default"):
        raise peewee.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(TreeStore, "active", away)
    assert trees.active_tree() == (version_id, tree)
    with pytest.raises(peewee.OperationalError):
        TreeStore().active_tree()  # nothing read yet: nothing to fall back on

    def broken(self, name="default"):
        raise peewee.OperationalError("no such table: ivr_tree_version")

    monkeypatch.setattr(TreeStore, "active", broken)
    with pytest.raises(peewee.OperationalError, match="no such table"):
        trees.active_tree()

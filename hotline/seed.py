"""What the product writes into a database that lacks it: the demo data set and the shipped default menu tree.

Like the schema (hotline.schema), only the app process holding the active lock writes them
(``Product.build``, ``Product.stand_by``): never a standby under a running active.
"""
from __future__ import annotations

from core.db import database


def seed(config, clock, *, queues: bool = True, history: bool = False, trees=None) -> list:
    """The demo data set on an empty database (``config.load_demo``, never in production), with the demo queues
    and agents (``queues``) and weeks of past calls and tickets (``history``); the default menu tree when
    ``trees`` (ivr.store.TreeStore) is given. Idempotent. Returns the demo accounts loaded now (for run.py to
    print), [] when none were."""
    from webui.app import load_demo_if_empty

    accounts = load_demo_if_empty(config, clock)
    if accounts and queues:
        from acd.demo import load_acd_demo

        # Queues for the default tree's skills, and the demo agents on their extensions.
        with database.connection_context():
            load_acd_demo()
    if accounts and history:
        from stats.demo import load_demo_history

        with database.connection_context():
            load_demo_history(clock)
    if trees is not None:
        with database.connection_context():
            trees.ensure_default()
    return accounts

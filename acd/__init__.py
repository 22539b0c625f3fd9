"""Automatic call distribution: queues, agents, distribution rules, dispatcher and team-lead actions."""


def __getattr__(name):
    """``acd.Acd`` without importing the dispatcher (gevent, switch/) for the pure modules."""
    if name in ("Acd", "AcdSettings", "QueueOutcome", "AcdError"):
        from acd import dispatcher

        return getattr(dispatcher, name)
    raise AttributeError(name)

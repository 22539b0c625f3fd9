"""Small helpers every blueprint's views share (lookups that answer 404)."""
from __future__ import annotations

from flask import abort


def get_or_404(query_or_model, *where):
    """The first row of a peewee model or query (narrowed by ``where``), or a 404 for the request.

    As peewee's flask_utils.get_object_or_404: ``get_or_404(Queue, Queue.id == queue_id)`` or
    ``get_or_404(Agent.select(Agent, User).join(User), Agent.id == agent_id)``.
    """
    query = query_or_model.select() if isinstance(query_or_model, type) else query_or_model
    if where:
        query = query.where(*where)
    row = query.first()
    if row is None:
        abort(404)
    return row

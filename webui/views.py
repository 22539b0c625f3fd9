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


# Passive media a browser may show in the page; everything else (HTML, SVG, scripts, office files, text)
# leaves as an opaque download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "application/pdf"})


def send_upload(path, content_type: str, filename: str):
    """Serve a file someone uploaded (ticket attachments, knowledge answers) from our own origin safely.

    Raster images, PDFs and audio open in the browser under their own type; anything else goes as
    ``attachment`` with ``application/octet-stream``, so with ``nosniff`` no browser runs it as a script
    (a ``<script src>`` ignores Content-Disposition but not the type) or renders it as a page. Every file
    also gets ``Content-Security-Policy: sandbox`` (no script, no same-origin rights if opened anyway);
    PDFs keep the site's policy, since browsers' PDF viewers do not open in a sandbox.
    """
    from flask import send_file

    kind = (content_type or "").split(";", 1)[0].strip().lower()
    inline = kind in INLINE_TYPES or (kind.startswith("audio/") and "+" not in kind)
    response = send_file(path, mimetype=kind if inline else "application/octet-stream", as_attachment=not inline,
                         download_name=filename, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    if kind != "application/pdf":
        response.headers["Content-Security-Policy"] = "sandbox"
    return response

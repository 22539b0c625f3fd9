"""deploy/nginx/hotline.conf's unbuffered location names every event stream the web UI serves: a stream left
out would sit in nginx's buffer (the desk's screen pops late), and its read timeout would cut it after 60 s."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

SHIPPED = Path(__file__).resolve().parents[3] / "deploy" / "nginx" / "hotline.conf"


def stream_location() -> re.Pattern:
    match = re.search(r"location ~ (\^\S+\$) \{[^}]*proxy_buffering off;", SHIPPED.read_text())
    assert match, "no unbuffered regex location in hotline.conf"
    return re.compile(match.group(1))


def test_every_event_stream_is_unbuffered(app):
    """Should match every route whose view answers text/event-stream (itself or through chat_pump's
    event_stream), and nothing else of the web UI."""
    location = stream_location()
    streams, others = [], []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        source = inspect.getsource(inspect.unwrap(view))
        is_stream = "text/event-stream" in source or "event_stream(" in source
        (streams if is_stream else others).append(rule.rule)
    assert len(streams) >= 5, streams
    assert [path for path in streams if not location.match(path)] == []
    assert [path for path in others if location.match(path)] == []

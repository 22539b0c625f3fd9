"""Draw a tree as a flow chart: an SVG made on the server (no library in the browser).

Graphviz's ``dot`` lays the chart out (ranks left to right, edge labels placed so nothing overlaps); its SVG
is parsed and drawn again from a short list of elements and attributes, so no script, foreignObject or
external reference it might carry reaches the page, and every text is XML-escaped here. Nodes show the
title the administrator gave and the kind's name in the page's language (``say``: the view's gettext);
node ids appear only in data attributes and links. Without ``dot`` (or when it fails) a simple layered
layout is drawn instead, and that is logged once.
"""
from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections import deque
from typing import Callable, Mapping
from xml.sax.saxutils import escape, quoteattr

from core import processes
from ivr.tree import Problem, Tree

log = logging.getLogger(__name__)

DOT_BINARY = "dot"  # looked up on PATH at each drawing (tests point it elsewhere)
DOT_TIMEOUT = 10.0  # seconds; a bigger tree than any menu would still take well under one
FONT = "WenQuanYi Micro Hei,Noto Sans CJK SC,sans-serif"  # fonts-wqy-microhei: dot measures Chinese with it
BOX_W, BOX_H = 168, 50
COL_GAP, ROW_GAP = 84, 22
MARGIN = 24
BOLD = ' font-weight="bold"'
KIND_COLOURS = {
    "menu": "#dbeafe", "prompt": "#f1f5f9", "queue": "#dcfce7", "transfer": "#dcfce7", "hangup": "#e5e7eb",
    "record": "#fef9c3", "mailbox": "#fef9c3", "voicemail": "#fef9c3", "status_query": "#ede9fe",
    "consultation": "#ede9fe", "poll": "#ede9fe", "time": "#ffedd5", "blacklist": "#fee2e2",
    "language": "#f1f5f9", "collect": "#f1f5f9", "fax": "#fef9c3", "satisfaction": "#ede9fe",
}
# Message ids (English, gettext style) of what the chart says; the web catalogue translates them.
KIND_NAMES = {
    "prompt": "Announcement", "menu": "Key menu", "collect": "Number entry", "record": "Recorded request",
    "mailbox": "Message box", "voicemail": "Voicemail", "status_query": "Ticket status query",
    "consultation": "Self-service answers", "poll": "Opinion poll", "queue": "To an agent",
    "transfer": "Transfer", "time": "Office hours check", "blacklist": "Blocked numbers check",
    "language": "Language choice", "fax": "Fax", "satisfaction": "Satisfaction rating", "hangup": "Hang up",
}
ROUTE_NAMES = {"next": "", "timeout_route": "No key pressed", "on_fail": "Failed", "on_busy": "Busy",
               "on_cancel": "Cancelled", "blocked": "Blocked", "open": "Open", "closed": "After hours",
               "holiday": "Holiday"}
LANG_NAMES = {"zh": "Mandarin", "en": "English"}
CHART_WORDS = ("Key %(key)s", "Start", "Off", "Must hear", "Transfer to %(number)s", "Language: %(language)s",
               "%(n)s callers at this node now", "Problem", "IVR flow chart",
               "Solid: caller action · orange: automatic · dashed: back")

Say = Callable[..., str]


def _identity(message: str, **values) -> str:
    return message % values if values else message


# ---------------------------------------------------------------------- what each node and route says
def node_lines(tree: Tree, node, say: Say = _identity, prompts: Mapping[str, str] | None = None) -> list[str]:
    """The lines written in a node's box: its title (the kind's name when it has none), then the kind's
    name with what matters of its fields (``prompts``: prompt key -> wording in the page's language).
    No node id, prompt key or other internal code."""
    kind = say(KIND_NAMES.get(node.kind, node.kind))
    title = str(node.get("title") or "").strip()
    first = title or kind
    if node.id == tree.start:
        first = f"▶ {say('Start')} · {first}"
    detail = []
    if title:
        detail.append(kind)
    wording = (prompts or {}).get(str(node.get("prompt") or ""), "")
    if wording:
        detail.append(wording)
    if node.kind == "transfer" and node.get("number"):
        detail.append(say("Transfer to %(number)s", number=str(node.get("number"))))
    if node.kind == "language" and node.get("lang") in LANG_NAMES:
        detail.append(say("Language: %(language)s", language=say(LANG_NAMES[node.get("lang")])))
    if node.get("enabled", True) is False:
        detail.append(say("Off"))
    if node.kind == "prompt" and node.get("must_hear") is True:
        detail.append(say("Must hear"))  # keys pressed during it are dropped, not typed ahead
    lines = [_short(first, 24)]
    if detail:
        lines.append(_short(" · ".join(detail), 26))
    return lines


def route_label(label: str, say: Say = _identity) -> str:
    """What an arrow says: the key pressed or the event that takes the route ("" for plain next)."""
    if label.startswith("key "):
        return say("Key %(key)s", key=label[4:])
    name = ROUTE_NAMES.get(label)
    return say(name) if name else ""


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _routes(tree: Tree, say: Say) -> list[tuple[str, str, str, str]]:
    """(source id, target id, label, "caller"|"auto") for every route to an existing node."""
    out = []
    for node in tree.nodes.values():
        for label, target, how in tree.edges(node):
            if target in tree.nodes:
                out.append((node.id, target, route_label(label, say), how))
    return out


def _problems_by_node(problems: list[Problem] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for problem in problems or []:
        if problem.node:
            out.setdefault(problem.node, []).append(problem.message)
    return out


def _tooltip(tree: Tree, node, messages: list[str], say: Say, prompts=None) -> str:
    text = " · ".join(node_lines(tree, node, say, prompts))
    return text + "".join(f"\n{say('Problem')}: {m}" for m in messages)


# ---------------------------------------------------------------------- Graphviz
def _dot_string(text: str) -> str:
    """A DOT quoted string holding ``text`` literally: backslashes doubled (dot reads \\N, \\G, \\l ... as
    escapes), quotes escaped, control characters dropped."""
    text = "".join(ch for ch in text if ch >= " " or ch == "\n")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot_source(tree: Tree, problems: list[Problem] | None = None, highlight: str | None = None,
               say: Say = _identity, prompts: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """The tree as a DOT graph and the DOT name -> node id table. DOT names are n0, n1 ... (ours, never
    the administrator's ids), and every label goes through ``_dot_string``."""
    names = {nid: f"n{i}" for i, nid in enumerate(tree.nodes)}
    flagged = _problems_by_node(problems)
    out = ["digraph ivr {", "rankdir=LR; nodesep=0.3; ranksep=0.6;",
           f"graph [fontname={_dot_string(FONT)}];",
           f"node [shape=box, style=\"rounded,filled\", fontname={_dot_string(FONT)}, fontsize=12, "
           "margin=\"0.15,0.08\", color=\"#64748b\"];",
           f"edge [fontname={_dot_string(FONT)}, fontsize=10, arrowsize=0.7];"]
    for nid, node in tree.nodes.items():
        attrs = [f"label={_dot_string(chr(10).join(node_lines(tree, node, say, prompts)))}",
                 f"fillcolor=\"{KIND_COLOURS.get(node.kind, '#ffffff')}\""]
        if nid in flagged:
            attrs.append('color="#dc2626", penwidth=2.5')
        elif nid == highlight:
            attrs.append('color="#2563eb", penwidth=2.5')
        out.append(f"{names[nid]} [{', '.join(attrs)}];")
    for source, target, label, how in _routes(tree, say):
        colour = "#475569" if how == "caller" else "#b45309"
        attrs = [f'color="{colour}"', f'fontcolor="{colour}"']
        if label:
            attrs.append(f"label={_dot_string(label)}")
        out.append(f"{names[source]} -> {names[target]} [{', '.join(attrs)}];")
    out.append("}")
    return "\n".join(out), {name: nid for nid, name in names.items()}


_WARNED: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _WARNED:
        _WARNED.add(reason)
        log.warning("IVR chart drawn without Graphviz (%s); install graphviz (scripts/setup-system.sh)", reason)


def run_dot(dot: str) -> str | None:
    """``dot -Tsvg`` of ``dot`` (with a timeout), or None when dot is missing or fails (logged once)."""
    binary = shutil.which(DOT_BINARY)
    if binary is None:
        _warn_once(f"no {DOT_BINARY!r} on PATH")
        return None
    return _run_dot_cached(binary, dot)


@functools.lru_cache(maxsize=64)
def _run_dot_cached(binary: str, dot: str) -> str | None:
    # Cached: the same version, selection and problems give the same graph, and page views repeat.
    # core.processes: no fork of the server, and it works on a hub in another thread too (a web server in a
    # thread of its own), where gevent.subprocess could not watch the child.
    try:
        done = processes.run([binary, "-Tsvg"], input=dot.encode("utf-8"), capture_output=True,
                             timeout=DOT_TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        _warn_once(f"{binary} failed: {exc}")
        return None
    return done.stdout.decode("utf-8", "replace")


# What a redrawn chart keeps of dot's SVG: these elements, these attributes, values of this shape.
_SVG = "{http://www.w3.org/2000/svg}"
_KEEP_ELEMENTS = {"g", "path", "polygon", "polyline", "ellipse", "text"}
_KEEP_ATTRS = {"d", "points", "fill", "stroke", "stroke-width", "stroke-dasharray", "transform", "x", "y",
               "cx", "cy", "rx", "ry", "font-family", "font-size", "font-weight", "text-anchor"}
_SAFE_VALUE = re.compile(r"[\w\s.,#%()+\-]*\Z")


def _attrs(element: ET.Element) -> str:
    out = []
    for name, value in element.attrib.items():
        if name in _KEEP_ATTRS and _SAFE_VALUE.match(value) and "url" not in value.lower():
            out.append(f" {name}={quoteattr(value)}")
    return "".join(out)


def _redraw(element: ET.Element) -> str:
    """An element of dot's drawing again from the kept elements and attributes, texts escaped."""
    tag = element.tag.removeprefix(_SVG)
    if tag not in _KEEP_ELEMENTS:
        return ""
    inner = escape(element.text or "") if tag == "text" else "".join(_redraw(child) for child in element)
    return f"<{tag}{_attrs(element)}>{inner}</{tag}>"


def _box(shape: ET.Element) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) of a path's or polygon's points (the rounded corners' control points stay inside)."""
    numbers = [float(n) for n in re.findall(r"-?[0-9]+(?:\.[0-9]+)?", shape.get("d") or shape.get("points") or "")]
    xs, ys = numbers[0::2], numbers[1::2]
    if not xs or len(xs) != len(ys):
        return None
    return min(xs), min(ys), max(xs), max(ys)


def svg_from_dot(svg: str, tree: Tree, names: Mapping[str, str], problems: list[Problem] | None = None,
                 live: Mapping[str, int] | None = None, href: Callable[[str], str] | None = None,
                 say: Say = _identity, prompts: Mapping[str, str] | None = None) -> str:
    """Our chart from dot's SVG: its graph group, nodes and edges redrawn (see _KEEP_*), each node in a
    link to ``href(node id)`` with a tooltip (its problems included), the live callers' badges added.
    Raises ValueError when the SVG is not what dot writes."""
    try:
        root = ET.fromstring(svg.encode("utf-8"))
    except ET.ParseError as exc:
        raise ValueError(f"unreadable SVG from dot: {exc}") from None
    view = [float(n) for n in (root.get("viewBox") or "").split()]
    graph = root.find(f"{_SVG}g")
    if root.tag != f"{_SVG}svg" or len(view) != 4 or graph is None:
        raise ValueError("unexpected SVG from dot")
    flagged = _problems_by_node(problems)
    width, height = view[2], view[3]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ivr-chart" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="{view[0]:.2f} {view[1]:.2f} {width:.2f} {height:.2f}" role="img" '
           f'aria-label={quoteattr(say("IVR flow chart"))} font-family={quoteattr(FONT)}>',
           f"<g{_attrs(graph)}>"]
    for part in graph:
        kind = part.get("class")
        title = part.find(f"{_SVG}title")
        drawn = "".join(_redraw(child) for child in part if child.tag != f"{_SVG}title")
        if kind == "node" and title is not None and names.get(title.text or "") in tree.nodes:
            nid = names[title.text]
            tip = _tooltip(tree, tree.nodes[nid], flagged.get(nid, []), say, prompts)
            shape = part.find(f"{_SVG}path")
            if shape is None:
                shape = part.find(f"{_SVG}polygon")
            box = _box(shape) if shape is not None else None
            badge = _badge(box[2] - 4, box[1] + 4, (live or {}).get(nid, 0), say) if box else ""
            group = (f'<g class="ivr-node{" ivr-problem" if nid in flagged else ""}" data-node={quoteattr(nid)}>'
                     f"<title>{escape(tip)}</title>{drawn}{badge}</g>")
            out.append(f"<a href={quoteattr(href(nid))}>{group}</a>" if href else group)
        elif kind == "edge":
            out.append(f'<g class="ivr-route">{drawn}</g>')
        elif part.tag == f"{_SVG}polygon":
            out.append(_redraw(part))  # the white background
    out.append("</g></svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------- without Graphviz
def layout(tree: Tree) -> dict[str, tuple[int, int]]:
    """Node id -> (column, row): breadth-first from the start; unreachable nodes go in a last column."""
    rank: dict[str, int] = {}
    if tree.start in tree.nodes:
        rank[tree.start] = 0
        queue = deque([tree.start])
        while queue:
            nid = queue.popleft()
            for _label, target, _how in tree.edges(tree.nodes[nid]):
                if target in tree.nodes and target not in rank:
                    rank[target] = rank[nid] + 1
                    queue.append(target)
    last = max(rank.values(), default=-1) + 1
    for nid in tree.nodes:
        rank.setdefault(nid, last)
    parents: dict[str, list[str]] = {nid: [] for nid in tree.nodes}
    for nid, node in tree.nodes.items():
        for _label, target, _how in tree.edges(node):
            if target in parents and rank[nid] < rank[target]:
                parents[target].append(nid)
    columns: dict[int, list[str]] = {}
    for nid in tree.nodes:  # file order first, so the drawing is stable between versions
        columns.setdefault(rank[nid], []).append(nid)
    places: dict[str, tuple[int, int]] = {}
    order = {nid: i for i, nid in enumerate(tree.nodes)}
    for col in sorted(columns):
        def weight(nid: str) -> tuple[float, int]:
            # Under the mean row of the nodes leading here: fewer crossing arrows.
            rows = [places[p][1] for p in parents[nid] if p in places]
            return (sum(rows) / len(rows) if rows else float(order[nid]), order[nid])

        for row, nid in enumerate(sorted(columns[col], key=weight)):
            places[nid] = (col, row)
    return places


def _xy(place: tuple[int, int]) -> tuple[int, int]:
    col, row = place
    return MARGIN + col * (BOX_W + COL_GAP), MARGIN + row * (BOX_H + ROW_GAP)


def _badge(cx: float, cy: float, callers: int, say: Say = _identity) -> str:
    """A green circle with the number of callers at a node now ("" when nobody is there)."""
    if callers <= 0:
        return ""
    return (f'<g class="ivr-live" data-callers="{callers}">'
            f'<title>{escape(say("%(n)s callers at this node now", n=callers))}</title>'
            f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="11" fill="#16a34a"/>'
            f'<text x="{cx:.0f}" y="{cy + 4:.0f}" font-size="11" font-weight="bold" fill="#ffffff" '
            f'text-anchor="middle">{callers}</text></g>')


def simple_svg(tree: Tree, problems: list[Problem] | None = None, highlight: str | None = None,
               live: Mapping[str, int] | None = None, href: Callable[[str], str] | None = None,
               say: Say = _identity, prompts: Mapping[str, str] | None = None) -> str:
    """The chart in columns by distance from the start (used when Graphviz is not there)."""
    places = layout(tree)
    flagged = _problems_by_node(problems)
    cols = max((c for c, _ in places.values()), default=0) + 1
    rows = max((r for _, r in places.values()), default=0) + 1
    width = MARGIN * 2 + cols * BOX_W + (cols - 1) * COL_GAP
    height = MARGIN * 2 + rows * BOX_H + (rows - 1) * ROW_GAP + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ivr-chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label={quoteattr(say("IVR flow chart"))} '
           f'font-family={quoteattr(FONT)}>',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#475569"/></marker></defs>']
    for source, target, label, how in _routes(tree, say):
        sx, sy = _xy(places[source])
        tx, ty = _xy(places[target])
        x1, y1 = sx + BOX_W, sy + BOX_H / 2
        x2, y2 = tx, ty + BOX_H / 2
        back = places[target][0] <= places[source][0]
        if back:
            # Around below the boxes so a route back does not cross the columns in between.
            x1, y1 = sx + BOX_W / 2, sy + BOX_H
            x2, y2 = tx + BOX_W / 2, ty + BOX_H
            dip = max(y1, y2) + ROW_GAP * 0.8
            path = f"M {x1:.0f} {y1:.0f} C {x1:.0f} {dip:.0f}, {x2:.0f} {dip:.0f}, {x2:.0f} {y2:.0f}"
            lx, ly = (x1 + x2) / 2, dip - 2
        else:
            mid = (x1 + x2) / 2
            path = f"M {x1:.0f} {y1:.0f} C {mid:.0f} {y1:.0f}, {mid:.0f} {y2:.0f}, {x2:.0f} {y2:.0f}"
            lx, ly = mid, (y1 + y2) / 2 - 3
        dash = ' stroke-dasharray="5 4"' if back else ""
        colour = "#475569" if how == "caller" else "#b45309"
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.2"{dash} '
                   f'marker-end="url(#arrow)"><title>{escape(label)}</title></path>')
        if label:
            out.append(f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="10" fill="{colour}" text-anchor="middle">'
                       f'{escape(_short(label, 18))}</text>')
    for nid, place in places.items():
        node = tree.nodes[nid]
        x, y = _xy(place)
        fill = KIND_COLOURS.get(node.kind, "#ffffff")
        stroke, stroke_w = ("#dc2626", 2.5) if nid in flagged else (("#2563eb", 2.5) if nid == highlight
                                                                    else ("#64748b", 1))
        lines = node_lines(tree, node, say, prompts)
        texts = "".join(f'<text x="{x + 8}" y="{y + 19 + 19 * i}" font-size="{13 if i == 0 else 11}"'
                        f'{BOLD if i == 0 else ""}>{escape(_short(line, 21))}</text>'
                        for i, line in enumerate(lines[:2]))
        group = (f'<g class="ivr-node{" ivr-problem" if nid in flagged else ""}" data-node={quoteattr(nid)}>'
                 f'<title>{escape(_tooltip(tree, node, flagged.get(nid, []), say, prompts))}</title>'
                 f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="7" fill="{fill}" '
                 f'stroke="{stroke}" stroke-width="{stroke_w}"/>{texts}'
                 + _badge(x + BOX_W - 4, y + 4, (live or {}).get(nid, 0), say) + '</g>')
        out.append(f"<a href={quoteattr(href(nid))}>{group}</a>" if href else group)
    out.append(f'<text x="{MARGIN}" y="{height - 8}" font-size="10" fill="#64748b">'
               f'{escape(say("Solid: caller action · orange: automatic · dashed: back"))}</text>')
    out.append("</svg>")
    return "\n".join(out)


# ---------------------------------------------------------------------- the chart
def render_svg(tree: Tree, problems: list[Problem] | None = None, highlight: str | None = None,
               live: Mapping[str, int] | None = None, href: Callable[[str], str] | None = None,
               say: Say = _identity, prompts: Mapping[str, str] | None = None) -> str:
    """The chart as an SVG fragment to embed as it is: laid out by Graphviz when it is there, else in
    simple columns. Nodes with problems are outlined in red with the messages as their tooltip,
    ``highlight`` in blue; ``live``: callers at each node now (a badge on the node's corner); ``href``:
    each node's link (its edit form); ``say``: the page's translation of the chart's words; ``prompts``:
    prompt key -> wording, shown in the prompt's node."""
    dot, names = dot_source(tree, problems, highlight, say, prompts)
    drawn = run_dot(dot)
    if drawn is not None:
        try:
            return svg_from_dot(drawn, tree, names, problems, live, href, say, prompts)
        except ValueError as exc:
            _warn_once(str(exc))
    return simple_svg(tree, problems, highlight, live, href, say, prompts)

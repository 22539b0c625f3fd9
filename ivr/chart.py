"""Draw a tree as a flow chart: a layered SVG made on the server (no script, no library in the browser).

Nodes are placed in columns by their distance from the start node; every route is an arrow labelled with
the key or the event that takes it. Routes that lead back (to an earlier or the same column) are dashed.
All text is XML-escaped here, so the SVG can be embedded in a page as it is.
"""
from __future__ import annotations

from collections import deque
from xml.sax.saxutils import escape, quoteattr

from ivr.tree import Problem, Tree

BOX_W, BOX_H = 168, 50
COL_GAP, ROW_GAP = 84, 22
MARGIN = 24
KIND_COLOURS = {
    "menu": "#dbeafe", "prompt": "#f1f5f9", "queue": "#dcfce7", "transfer": "#dcfce7", "hangup": "#e5e7eb",
    "record": "#fef9c3", "mailbox": "#fef9c3", "voicemail": "#fef9c3", "status_query": "#ede9fe",
    "consultation": "#ede9fe", "poll": "#ede9fe", "time": "#ffedd5", "blacklist": "#fee2e2",
    "language": "#f1f5f9", "collect": "#f1f5f9",
}
EDGE_LABELS = {"next": "", "timeout_route": "无按键 timeout", "on_fail": "失败 fail", "on_busy": "忙 busy",
               "on_cancel": "取消 cancel", "blocked": "黑名单 blocked", "open": "上班 open",
               "closed": "下班 closed", "holiday": "节假日 holiday"}


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


def _caption(node) -> str:
    if node.kind == "queue":
        return f"技能 skill: {node.get('skill', '')}"
    if node.kind == "transfer":
        return f"转 → {node.get('number') or node.get('setting', '')}"
    if node.kind == "language":
        return f"语言 {node.get('lang', '')}"
    text = node.get("prompt") or node.get("text") or node.get("ticket_type") or ""
    if node.get("enabled", True) is False:
        text = f"(关闭 off) {text}"
    if node.kind == "prompt" and node.get("must_hear") is True:
        text = f"必听 must hear · {text}"  # keys pressed during it are dropped, not typed ahead
    return str(text)


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _badge(x: int, y: int, callers: int) -> str:
    """A green circle with the number of callers at a node now ("" when nobody is there)."""
    if callers <= 0:
        return ""
    cx, cy = x + BOX_W - 4, y + 4
    return (f'<g class="ivr-live" data-callers="{callers}"><title>{callers} 位来电者在此节点 callers here now</title>'
            f'<circle cx="{cx}" cy="{cy}" r="11" fill="#16a34a"/>'
            f'<text x="{cx}" y="{cy + 4}" font-size="11" font-weight="bold" fill="#ffffff" '
            f'text-anchor="middle">{callers}</text></g>')


def render_svg(tree: Tree, problems: list[Problem] | None = None, highlight: str | None = None,
               live: dict[str, int] | None = None) -> str:
    """The chart as an SVG document fragment; nodes with problems are outlined in red; ``live``: callers
    at each node now (a badge on the node's corner)."""
    places = layout(tree)
    flagged = {p.node for p in problems or [] if p.node}
    cols = max((c for c, _ in places.values()), default=0) + 1
    rows = max((r for _, r in places.values()), default=0) + 1
    width = MARGIN * 2 + cols * BOX_W + (cols - 1) * COL_GAP
    height = MARGIN * 2 + rows * BOX_H + (rows - 1) * ROW_GAP + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="ivr-chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="IVR flow chart" font-family="sans-serif">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#475569"/></marker></defs>']
    edges = []
    for node in tree.nodes.values():
        for label, target, how in tree.edges(node):
            if target not in places:
                continue
            name = label[4:] if label.startswith("key ") else EDGE_LABELS.get(label, label)
            edges.append((node.id, target, f"按 {name}" if label.startswith("key ") else name, how))
    for source, target, label, how in edges:
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
                   f'marker-end="url(#arrow)"><title>{escape(f"{source} → {target}: {label}")}</title></path>')
        if label:
            out.append(f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="10" fill="{colour}" text-anchor="middle">'
                       f'{escape(_short(label, 18))}</text>')
    for nid, place in places.items():
        node = tree.nodes[nid]
        x, y = _xy(place)
        fill = KIND_COLOURS.get(node.kind, "#ffffff")
        stroke, stroke_w = ("#dc2626", 2.5) if nid in flagged else (("#2563eb", 2.5) if nid == highlight
                                                                    else ("#64748b", 1))
        start = " (开始 start)" if nid == tree.start else ""
        out.append(f'<g class="ivr-node" data-node={quoteattr(nid)}><title>{escape(nid + " · " + node.kind)}</title>'
                   f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="7" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="{stroke_w}"/>'
                   f'<text x="{x + 8}" y="{y + 19}" font-size="13" font-weight="bold">{escape(_short(nid + start, 21))}</text>'
                   f'<text x="{x + 8}" y="{y + 38}" font-size="11" fill="#334155">'
                   f'{escape(_short(node.kind + " · " + _caption(node), 27))}</text>'
                   + _badge(x, y, (live or {}).get(nid, 0)) + '</g>')
    out.append(f'<text x="{MARGIN}" y="{height - 8}" font-size="10" fill="#64748b">'
               f'{escape("实线：来电者按键或录音 solid: caller action · 橙色：自动 orange: automatic · 虚线：返回 dashed: back")}'
               '</text>')
    out.append("</svg>")
    return "\n".join(out)

"""The IVR chart laid out by Graphviz: no overlapping boxes at size, inert labels, the fallback without dot."""
from __future__ import annotations

import logging
import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from ivr import chart
from ivr.tree import Problem, parse_tree

NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz not installed (setup-system.sh)")


def big_tree(count: int = 60) -> str:
    """A menu tree of ``count`` nodes: menus of up to 4 keys, each child's failure routed back to the start."""
    lines = ['[tree]\nstart = "n0"\n[settings]\n']
    for i in range(count):
        children = [c for c in range(4 * i + 1, 4 * i + 5) if c < count]
        if children:
            keys = ", ".join(f'"{k + 1}" = "n{c}"' for k, c in enumerate(children))
            lines.append(f'[nodes.n{i}]\nkind = "menu"\ntitle = "菜单 {i}"\nkeys = {{ {keys} }}\n'
                         f'on_fail = "n0"\nmax_retries = 3\n')
        else:
            lines.append(f'[nodes.n{i}]\nkind = "queue"\ntitle = "坐席 {i}"\nskill = "general"\non_busy = "n0"\n')
    return "\n".join(lines)


def node_boxes(svg: str) -> dict[str, tuple[float, float, float, float]]:
    """Node id -> bounding box of its shape in the SVG's user space (the graph group's translate applied)."""
    root = ET.fromstring(svg)
    graph = root.find(f"{NS}g")
    dx, dy = (float(n) for n in re.search(r"translate\(([-\d.]+) ([-\d.]+)\)", graph.get("transform")).groups())
    boxes = {}
    for group in root.iter(f"{NS}g"):
        if group.get("data-node"):
            shape = group.find(f"{NS}path")
            numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", shape.get("d"))]
            xs, ys = numbers[0::2], numbers[1::2]
            boxes[group.get("data-node")] = (min(xs) + dx, min(ys) + dy, max(xs) + dx, max(ys) + dy)
    return boxes


@needs_dot
def test_sixty_nodes_without_overlap_inside_the_view():
    """Should lay out a 60-node tree with no two node boxes overlapping, all inside the viewBox, each node
    a link to its edit form."""
    tree = parse_tree(big_tree(60))
    svg = chart.render_svg(tree, href=lambda nid: f"/admin/ivr/?node={nid}")
    root = ET.fromstring(svg)
    boxes = node_boxes(svg)
    assert sorted(boxes) == sorted(tree.nodes)
    items = list(boxes.items())
    for i, (a, (ax0, ay0, ax1, ay1)) in enumerate(items):
        for b, (bx0, by0, bx1, by1) in items[i + 1:]:
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, f"{a} overlaps {b}"
    vx, vy, vw, vh = (float(n) for n in root.get("viewBox").split())
    for nid, (x0, y0, x1, y1) in boxes.items():
        assert vx <= x0 and x1 <= vx + vw and vy <= y0 and y1 <= vy + vh, nid
    links = [a.get("href") for a in root.iter(f"{NS}a")]
    assert sorted(links) == sorted(f"/admin/ivr/?node={nid}" for nid in tree.nodes)
    assert "n17" not in "".join(t.text or "" for t in root.iter(f"{NS}text"))  # ids are not labels


HOSTILE = '<script>alert(1)</script> & "q" \'s\' \\N \\G ]]> <foreignObject>'


@pytest.mark.parametrize("with_dot", [pytest.param(True, marks=needs_dot), False])
def test_hostile_titles_come_out_inert(monkeypatch, with_dot):
    """Should carry a title with markup, ampersands, quotes, DOT escapes and script text as plain text:
    no script, foreignObject or foreign element, no attribute but the kept ones, the text intact."""
    if not with_dot:
        monkeypatch.setattr(chart, "DOT_BINARY", "/nonexistent/dot")
    title = HOSTILE.replace("\\", "\\\\").replace('"', '\\"')
    tree = parse_tree(f'[tree]\nstart = "a"\n[settings]\n[nodes.a]\nkind = "prompt"\ntitle = "{title}"\n'
                      f'next = "b"\n[nodes.b]\nkind = "hangup"\ntitle = "x\\" onload=\\"alert(1)"\n'
                      '[nodes.c]\nkind = "hangup"\ntitle = "&\\\\N\\\\G<i>"\n')
    svg = chart.render_svg(tree, [Problem("a", '<img src=x onerror=alert(1)>')], href=lambda nid: f"/e?n={nid}")
    root = ET.fromstring(svg)
    tags = {el.tag.removeprefix(NS) for el in root.iter()}
    assert tags <= {"svg", "g", "a", "title", "path", "polygon", "polyline", "ellipse", "text", "rect", "defs",
                    "marker", "circle"}
    for el in root.iter():
        for name, value in el.attrib.items():
            assert not name.startswith("on") and "javascript" not in value.lower(), (name, value)
            assert name != "href" or value.startswith("/e?n=")
    texts = " ".join((t.text or "") for t in root.iter(f"{NS}text"))
    assert "<script>al" in texts and 'x" onload="alert(1)' in texts  # shown literally (long ones shortened)
    assert "&\\N\\G<i>" in texts  # dot's escapes not expanded
    titles = " ".join((t.text or "") for t in root.iter(f"{NS}title"))
    assert "<img src=x onerror=alert(1)>" in titles  # the problem as the node's tooltip, as text


def test_fallback_without_dot_logs_once(monkeypatch, caplog):
    """Should draw the simple layout when dot is absent, with the same node links and red problem outline,
    and log that only once."""
    monkeypatch.setattr(chart, "DOT_BINARY", "/nonexistent/dot")
    monkeypatch.setattr(chart, "_WARNED", set())
    tree = parse_tree(big_tree(9))
    with caplog.at_level(logging.WARNING, logger="ivr.chart"):
        first = chart.render_svg(tree, [Problem("n3", "bad")], href=lambda nid: f"/e?n={nid}")
        chart.render_svg(tree)
    assert '<marker id="arrow"' in first  # the fallback's drawing
    root = ET.fromstring(first)
    assert len([a for a in root.iter(f"{NS}a")]) == 9
    problem = next(g for g in root.iter(f"{NS}g") if g.get("data-node") == "n3")
    assert problem.find(f"{NS}rect").get("stroke") == "#dc2626" and "bad" in problem.find(f"{NS}title").text
    assert len([r for r in caplog.records if "without Graphviz" in r.getMessage()]) == 1


@needs_dot
def test_dot_failure_falls_back(monkeypatch, tmp_path):
    """Should fall back when dot runs but fails (a binary that exits with an error)."""
    broken = tmp_path / "dot"
    broken.write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setattr(chart, "DOT_BINARY", str(broken))
    monkeypatch.setattr(chart, "_WARNED", set())
    assert '<marker id="arrow"' in chart.render_svg(parse_tree(big_tree(5)))


def test_dot_strings_are_escaped():
    """Should quote a label so dot reads it literally: backslashes doubled, quotes escaped, newlines kept."""
    assert chart._dot_string('a"b\\N\nc\x00') == '"a\\"b\\\\N\\nc"'


@needs_dot
def test_dot_runs_from_a_thread_with_its_own_hub():
    """Should lay the chart out with dot from a thread whose gevent hub is not the default loop (a web server
    in a thread of its own, as the browser tests run one), where gevent cannot watch child processes."""
    import threading

    tree = parse_tree(big_tree(5))
    chart._run_dot_cached.cache_clear()
    out: list = []
    worker = threading.Thread(target=lambda: out.append(chart.run_dot(chart.dot_source(tree)[0])))
    worker.start()
    worker.join(30)
    assert out and out[0] is not None and "<svg" in out[0]

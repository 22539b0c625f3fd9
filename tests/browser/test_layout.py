"""Screenshots without overflow (issue 13 item 7): in Chromium, each demo role's main pages (the landing page
and every page of its navigation) at the common office resolution, at 1400x900 and full HD, are measured in
the browser and fail when something does not fit its box:

- the page wider than the window (a horizontal scroll bar), or an element past the window's right edge that
  no scrolling box holds (a table wider than the viewport, a chart cut off on the right);
- a short label (a button, a heading cell, a badge, a tab) broken over lines, as 保存 squeezed to 保/存;
- text wider than its button or cell (scrollWidth over clientWidth where the box does not scroll);
- a chart (svg, canvas) cut by a box that clips it.

Each page's screenshot is written under the test's temporary directory (HOTLINE_SCREENSHOTS names another
one), so a failure can be looked at.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import login

VIEWPORTS = ((1366, 768), (1400, 900), (1920, 1080))
SHORT_LABEL = 12  # characters: a label this short must stay on one line

# What the browser measures: a list of findings, each naming the element ("tag#id.class 'text'").
MEASURE = r"""
() => {
  const root = document.documentElement, vw = root.clientWidth, out = [];
  const name = el => {
    const cls = typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "";
    const text = (el.innerText || el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 40);
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + cls + (text ? " '" + text + "'" : "");
  };
  const shown = el => {
    for (let e = el; e; e = e.parentElement) {
      const s = getComputedStyle(e);
      if (s.display === "none" || s.visibility === "hidden") return false;
    }
    const r = el.getBoundingClientRect();
    return r.width > 2 && r.height > 2;  // a visually hidden label (sr-only: 1px, clipped) is for screen readers
  };
  const scrollBox = el => {  // the nearest ancestor that scrolls sideways (its content may be wider)
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll") return p;
    }
    return null;
  };
  const clipBox = el => {  // the nearest ancestor that cuts what sticks out
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "hidden" || o === "clip") return p;
      if (o === "auto" || o === "scroll") return null;
    }
    return null;
  };
  if (root.scrollWidth > vw + 1) out.push("page " + root.scrollWidth + "px wide in a " + vw + "px window");
  const all = Array.from(document.body.querySelectorAll("*")).filter(el => !el.closest("svg") || el.tagName.toLowerCase() === "svg");
  for (const el of all) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right > vw + 1 && !scrollBox(el)) {
      const parent = el.parentElement, pr = parent && parent.getBoundingClientRect();
      if (!(pr && pr.right > vw + 1)) out.push("past the window's right edge (" + Math.round(r.right) + "px): " + name(el));
    }
  }
  const labels = "button, a.button, .button, th, .badge, .status, .tabs a, nav a, [role=tab], label, td a";
  for (const el of document.querySelectorAll(labels)) {
    if (!shown(el)) continue;
    const text = (el.innerText || "").trim();
    if (!text || Array.from(text).length > 12 || /\n/.test(text)) continue;
    const lines = [];  // [top, bottom] of each line box the label's text takes (a badge's smaller text shares one)
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      for (const rect of range.getClientRects()) {
        if (rect.width <= 0) continue;
        const line = lines.find(([top, bottom]) => Math.min(bottom, rect.bottom) - Math.max(top, rect.top) > 0.5 * Math.min(bottom - top, rect.height));
        if (line) { line[0] = Math.min(line[0], rect.top); line[1] = Math.max(line[1], rect.bottom); }
        else lines.push([rect.top, rect.bottom]);
      }
    }
    if (lines.length > 1) out.push("short label broken over " + lines.length + " lines: " + name(el));
  }
  for (const el of document.querySelectorAll("button, .button, td, th, .badge, .status")) {
    if (!shown(el)) continue;
    const o = getComputedStyle(el).overflowX;
    if (o === "auto" || o === "scroll") continue;
    if (el.scrollWidth > el.clientWidth + 2) out.push("text wider than its box (" + el.scrollWidth + " > " + el.clientWidth + "px): " + name(el));
  }
  for (const el of document.querySelectorAll("svg, canvas")) {
    if (!shown(el) || el.closest("button, a") || el.getBoundingClientRect().width < 120) continue;
    const box = clipBox(el);
    if (!box) continue;
    const r = el.getBoundingClientRect(), b = box.getBoundingClientRect();
    if (r.right > b.right + 1 || r.bottom > b.bottom + 1) out.push("chart cut by its box: " + name(el) + " in " + name(box));
  }
  return out;
}
"""


def _pages(page, base: str) -> list[str]:
    """The landing page and every page of the navigation, as paths on ``base``."""
    paths = [page.url[len(base):] or "/"]
    for href in page.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        if href and href.startswith("/") and href not in paths:
            paths.append(href)
    return paths


def _shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HOTLINE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_measure_finds_overflow(page, live_server):
    """Should find a table wider than the window, a button broken letter by letter, text wider than its cell
    and a chart cut off by its box, and nothing on a page where everything fits."""
    page.set_viewport_size({"width": 800, "height": 600})
    page.set_content("""<html><body style="margin:0">
      <table id="wide" style="width:1200px"><tr><td>宽表格</td></tr></table>
      <button id="squeezed" style="width:18px">保存</button>
      <table><tr><td id="cut" style="max-width:40px;overflow:hidden;white-space:nowrap">很长很长很长的单元格文字</td></tr></table>
      <div style="width:200px;overflow:hidden"><svg id="chart" width="400" height="100"></svg></div>
    </body></html>""")
    found = "\n".join(page.evaluate(MEASURE))
    assert "page 1200px wide" in found and "table#wide" in found, found
    assert "short label broken over 2 lines: button#squeezed" in found, found
    assert "text wider than its box" in found and "td#cut" in found, found
    assert "chart cut by its box: svg#chart" in found, found
    page.set_content("<html><body><button>保存</button><table><tr><td>一行</td></tr></table></body></html>")
    assert page.evaluate(MEASURE) == []


@pytest.mark.parametrize("role", ("agent", "team_lead", "centre", "centre_leader", "dept", "dept_leader", "leader",
                                  "admin", "entry"))
def test_main_pages_fit_for_each_role(browser, live_server, demo_accounts, tmp_path, role):
    """Should render the role's landing page and every page of its navigation at 1366x768, 1400x900 and
    1920x1080 with nothing overflowing its box (the findings listed page by page)."""
    if role not in demo_accounts:
        pytest.skip(f"the demo data set has no {role} account")
    operator_no, password = demo_accounts[role]
    shots = _shots_dir(tmp_path)
    findings = []
    # One logged-in context per window size, all open at once: each page is opened in the three together and
    # each waits for its own network to go quiet (half a second at least), so those waits overlap instead of
    # following one another (57 pages of the centre leader: 30 s of the 49 were these waits).
    pages, contexts = {}, []
    try:
        for width, height in VIEWPORTS:
            context = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai",
                                          viewport={"width": width, "height": height})
            contexts.append(context)
            page = context.new_page()
            login(page, live_server, operator_no, password)
            pages[width, height] = (page, _pages(page, live_server.url))
        for path in dict.fromkeys(path for _page, paths in pages.values() for path in paths):
            opened = [(size, page) for size, (page, paths) in pages.items() if path in paths]
            for _size, page in opened:
                page.goto(live_server(path), wait_until="commit")
            for _size, page in opened:
                page.wait_for_load_state("load")
                page.wait_for_load_state("networkidle")
            for (width, height), page in opened:
                slug = path.strip("/").replace("/", "_") or "home"
                page.screenshot(path=str(shots / f"{role}-{slug}-{width}x{height}.png"))
                findings += [f"{width}x{height} {path}: {f}" for f in page.evaluate(MEASURE)]
    finally:
        for context in contexts:
            context.close()
    assert findings == [], "\n".join(findings)

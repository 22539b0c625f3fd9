"""Chart geometry for server-drawn inline SVG (no script library): the daily volume line chart and the
channel-mix bars. Pure: templates draw what these return; labels come translated from the caller.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Sequence

MAX_X_LABELS = 10


def tick_step(largest: float, intervals: int = 4) -> int:
    """A round step (1, 2, 5 x 10^n, at least 1) so ``intervals`` steps cover ``largest``."""
    raw = max(largest, 1) / intervals
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return max(1, int(factor * magnitude))
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def line_chart(days: Sequence[dt.date], series: Sequence[tuple[str, str, Sequence[int]]], width: int = 720,
               height: int = 240) -> dict:
    """Geometry of a line chart over ``days``: ``series`` is [(key, label, values per day)].

    Returns the plot box, y ticks [(y, text)], x labels [(x, text)] (at most MAX_X_LABELS, evenly spaced) and
    per series its polyline points and dots [(x, y, title)].
    """
    left, right, top, bottom = 48, 24, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    largest = max((v for _, _, values in series for v in values), default=0)
    step = tick_step(largest)
    ceiling = step * max(1, math.ceil(largest / step))

    def x_of(index: int) -> float:
        return round(left + (plot_w / 2 if len(days) == 1 else plot_w * index / (len(days) - 1)), 1)

    def y_of(value: float) -> float:
        return round(top + plot_h - plot_h * value / ceiling, 1)

    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    out_series = []
    for key, label, values in series:
        dots = [(x_of(i), y_of(v), f"{days[i].isoformat()} {label}: {v}") for i, v in enumerate(values)]
        out_series.append({"key": key, "label": label, "points": " ".join(f"{x},{y}" for x, y, _ in dots),
                           "dots": dots, "total": sum(values)})
    return {
        "width": width, "height": height, "left": left, "right": width - right, "top": top,
        "bottom": top + plot_h,
        "y_ticks": [(y_of(v), str(v)) for v in range(0, ceiling + 1, step)],
        "x_labels": [(x_of(i), day.strftime("%m-%d")) for i, day in enumerate(days) if i % every == 0],
        "series": out_series,
    }


def bar_chart(rows: Sequence[tuple[str, int]], width: int = 560, row_height: int = 26,
              label_width: int = 110) -> dict:
    """Geometry of horizontal bars for [(label, value)], scaled to the largest value."""
    largest = max((v for _, v in rows), default=0) or 1
    room = width - label_width - 60
    bars = [{"label": label, "value": value, "y": i * row_height + 4, "text_y": i * row_height + row_height / 2 + 5,
             "x": label_width, "width": round(room * value / largest, 1) if value else 0,
             "value_x": round(label_width + room * value / largest + 6, 1)}
            for i, (label, value) in enumerate(rows)]
    return {"width": width, "height": max(row_height, row_height * len(rows) + 8), "bars": bars,
            "label_x": label_width - 8}

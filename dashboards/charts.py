"""Server-rendered SVG charts: geometry computed here, drawn by
templates/dashboards/partials/chart.html.

Why not a JavaScript chart library: `make run` must need only Python, every asset is served
by the app (no CDN), and an SVG in the HTML prints, works without JavaScript and can carry
its own accessible name. Every chart is paired with a data table in the template, so the
numbers are available to screen readers and to people who want exact values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
HEIGHT = 220
LEFT = 56
RIGHT = 12
TOP = 14
BOTTOM = 34


@dataclass
class Mark:
    x: float
    y: float
    w: float
    h: float
    label: str
    value_text: str


@dataclass
class Tick:
    pos: float
    text: str


@dataclass
class Chart:
    key: str
    title: str
    description: str
    kind: str  # "bar" | "line"
    width: int = WIDTH
    height: int = HEIGHT
    marks: list[Mark] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    path: str = ""
    # The marks as SVG elements, written once here: the template would resolve five
    # variables per mark (a busy 100× chart has a mark per bucket, 1× data often none).
    marks_svg: SafeString = field(default_factory=lambda: mark_safe(""))
    rows: list[tuple[str, str]] = field(default_factory=list)
    empty: bool = False
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM


def format_value(value: float | None, unit: str) -> str:
    """Human words for a metric value: '3', '2 h 5 min', '12.5%'; '—' for no data."""
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "seconds":
        return format_duration(value)
    if unit == "per_day":
        return f"{value:.2f}/day"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def format_duration(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 60:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        whole = int(hours)
        rest = int(round(minutes - whole * 60))
        return f"{whole} h {rest} min" if rest else f"{whole} h"
    return f"{hours / 24:.1f} days"


def _nice_step(value: float) -> float:
    """A 1-2-5 step so that about four steps cover ``value`` with round tick labels."""
    if value <= 0:
        return 1.0
    raw = value / 4
    exponent = math.floor(math.log10(raw))
    for nice in (1, 2, 5, 10):
        if raw <= nice * 10**exponent:
            return nice * 10**exponent
    return 10 ** (exponent + 1)


def _axis_unit(unit: str, peak: float) -> tuple[float, str]:
    """Durations are drawn in minutes, hours or days so the ticks are readable numbers."""
    if unit != "seconds":
        return 1.0, ""
    if peak >= 2 * 86400:
        return 86400.0, "d"
    if peak >= 2 * 3600:
        return 3600.0, "h"
    return 60.0, "min"


def _date_label(value: date, interval: str) -> str:
    if interval == "monthly":
        return f"{value:%b %Y}"
    return f"{value:%d %b}"


def build_chart(
    *,
    key: str,
    title: str,
    series: list[dict[str, Any]],
    unit: str,
    interval: str,
    kind: str = "line",
) -> Chart:
    """Lay out a bar or line chart of ``[{"date", "value"}]``. ``None`` values are gaps."""
    chart = Chart(key=key, title=title, description="", kind=kind)
    chart.rows = [
        (_date_label(p["date"], interval), format_value(p["value"], unit)) for p in series
    ]
    values = [p["value"] for p in series if p["value"] is not None]
    if not values or not any(values) and kind == "line":
        chart.empty = True
        chart.description = f"{title}: no data in this period."
        return chart
    scale_div, suffix = _axis_unit(unit, max(values))
    if unit == "ratio":
        scale_div = 0.01  # ticks in percent
    step_value = _nice_step(max(values) / scale_div)
    steps = max(1, math.ceil(max(values) / scale_div / step_value))
    top = steps * step_value * scale_div
    plot_w = chart.plot_right - chart.plot_left
    plot_h = chart.plot_bottom - chart.plot_top
    n = len(series)
    step = plot_w / max(n, 1)

    def y_of(v: float) -> float:
        return chart.plot_bottom - (v / top) * plot_h if top else chart.plot_bottom

    for i in range(steps + 1):
        v = top * i / steps
        text = f"{v * 100:.0f}%" if unit == "ratio" else f"{v / scale_div:g}{suffix}"
        chart.y_ticks.append(Tick(pos=round(y_of(v), 1), text=text))
    label_every = max(1, math.ceil(n / 8))
    points: list[tuple[float, float]] = []
    path_parts: list[str] = []
    for i, point in enumerate(series):
        cx = chart.plot_left + step * i + step / 2
        if i % label_every == 0:
            chart.x_ticks.append(Tick(pos=round(cx, 1), text=_date_label(point["date"], interval)))
        value = point["value"]
        label = _date_label(point["date"], interval)
        if value is None:
            path_parts.append("")
            continue
        y = y_of(value)
        if kind == "bar":
            if not value:
                continue  # no rectangle for zero; the data table still says 0
            w = max(step * 0.7, 1.0)
            chart.marks.append(
                Mark(
                    x=round(cx - w / 2, 1),
                    y=round(y, 1),
                    w=round(w, 1),
                    h=round(chart.plot_bottom - y, 1),
                    label=label,
                    value_text=format_value(value, unit),
                )
            )
        else:
            points.append((cx, y))
            chart.marks.append(
                Mark(
                    x=round(cx, 1),
                    y=round(y, 1),
                    w=0,
                    h=0,
                    label=label,
                    value_text=format_value(value, unit),
                )
            )
            command = "M" if not path_parts or path_parts[-1] == "" else "L"
            path_parts.append(f"{command}{cx:.1f},{y:.1f}")
    chart.path = " ".join(p for p in path_parts if p)
    chart.marks_svg = _marks_svg(chart)
    peak = max(values)
    per = {"monthly": "month", "weekly": "week"}.get(interval, "day")
    chart.description = (
        f"{title} by {per}, {len(series)} points; highest {format_value(peak, unit)}, "
        f"latest {format_value(series[-1]['value'], unit)}."
    )
    return chart


BAR_SVG = '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>'
POINT_SVG = '<circle class="point" cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>'


def _marks_svg(chart: Chart) -> SafeString:
    if chart.kind == "bar":
        parts = [
            format_html(BAR_SVG, m.x, m.y, m.w, m.h, m.label, m.value_text) for m in chart.marks
        ]
    else:
        parts = [format_html(POINT_SVG, m.x, m.y, m.label, m.value_text) for m in chart.marks]
    return mark_safe("".join(parts))  # each part escaped by format_html

"""Charts drawn on the server as inline SVG: no script, no CDN, styled by the dashboard's stylesheet
(classes only: the Content-Security-Policy allows no style attributes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

__all__ = ["activity_chart", "completion_chart", "funnel_chart"]

_WIDTH, _HEIGHT = 720, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 40, 12, 16, 28


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value`: four gridline steps of 1, 2 or 5 times a power of ten."""
    step = max(-(-value // 4), 1)
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            if multiple * magnitude >= step:
                return multiple * magnitude * 4
        magnitude *= 10


def activity_chart(
    days: Sequence[date], lessons: Sequence[int], learners: Sequence[int], *, title_id: str
) -> Markup:
    """Bars: lessons completed per day; line with dots: active learners per day."""
    count = len(days)
    top = _nice_max(max([*lessons, *learners, 0]))
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    slot = plot_w / max(count, 1)
    bar_w = max(slot * 0.62, 1)

    def y(value: float) -> float:
        return _TOP + plot_h - plot_h * value / top

    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" aria-labelledby="{title_id}" '
            'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        )
    ]
    for step in range(5):
        value = top * step / 4
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
        )
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{int(value)}</text>'
        )
    for index, (day, value) in enumerate(zip(days, lessons, strict=True)):
        x = _LEFT + slot * index + (slot - bar_w) / 2
        height = plot_h * value / top
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y(value):.1f}" width="{bar_w:.1f}" height="{height:.1f}" rx="2">'
            f"<title>{escape(day.isoformat())}: {value} lessons completed</title></rect>"
        )
        if index % 7 == 0 or (index == count - 1 and index % 7 >= 3):
            parts.append(
                f'<text class="axis" x="{_LEFT + slot * index + slot / 2:.1f}" y="{_HEIGHT - 8}" text-anchor="middle">'
                f"{escape(day.strftime('%b %d'))}</text>"
            )
    points = " ".join(f"{_LEFT + slot * i + slot / 2:.1f},{y(v):.1f}" for i, v in enumerate(learners))
    if points:
        parts.append(f'<polyline class="line" points="{points}"/>')
    for index, (day, value) in enumerate(zip(days, learners, strict=True)):
        parts.append(
            f'<circle class="dot" cx="{_LEFT + slot * index + slot / 2:.1f}" cy="{y(value):.1f}" r="3">'
            f"<title>{escape(day.isoformat())}: {value} active learners</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def completion_chart(rows: Sequence[tuple[str, int, int]], *, title_id: str) -> Markup:
    """One horizontal bar per course: (title, enrollments, completed), the rate as a percentage."""
    row_h, label_w, width = 34, 240, _WIDTH
    height = max(row_h * len(rows) + 8, row_h)
    bar_space = width - label_w - 90
    parts = [
        (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{title_id}" '
            'xmlns="http://www.w3.org/2000/svg">'
        )
    ]
    for index, (title, enrolled, completed) in enumerate(rows):
        rate = completed / enrolled if enrolled else 0.0
        top = 4 + index * row_h
        shown = title if len(title) <= 32 else title[:31] + "…"
        parts.append(
            f'<text class="label" x="0" y="{top + 20}">{escape(shown)}<title>{escape(title)}</title></text>'
        )
        parts.append(
            f'<rect class="track" x="{label_w}" y="{top + 6}" width="{bar_space}" height="18" rx="4"/>'
        )
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{top + 6}" width="{bar_space * rate:.1f}" height="18" rx="4"/>'
        )
        parts.append(
            f'<text class="value" x="{label_w + bar_space + 8}" y="{top + 20}">{rate:.0%} '
            f'<tspan class="axis">({completed}/{enrolled})</tspan></text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def funnel_chart(rows: Sequence[tuple[int, str, int, int]], enrollments: int, *, title_id: str) -> Markup:
    """A course's lesson funnel, one row per lesson in curriculum order: (position, title, started,
    completed); the light bar is the students who started it, the dark one those who completed
    it, both against the course's enrollments."""
    row_h, label_w, width = 30, 260, _WIDTH
    height = max(row_h * len(rows) + 8, row_h)
    bar_space = width - label_w - 110
    whole = max(enrollments, 1)
    parts = [
        (
            f'<svg class="chart funnel" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{title_id}" '
            'xmlns="http://www.w3.org/2000/svg">'
        )
    ]
    for index, (position, title, started, completed) in enumerate(rows):
        top = 4 + index * row_h
        name = f"{position}. {title}"
        shown = name if len(name) <= 34 else name[:33] + "…"
        parts.append(
            f'<text class="label" x="0" y="{top + 18}">{escape(shown)}<title>{escape(name)}</title></text>'
        )
        parts.append(
            f'<rect class="rail" x="{label_w}" y="{top + 5}" width="{bar_space}" height="18" rx="3"/>'
        )
        parts.append(
            f'<rect class="track" x="{label_w}" y="{top + 5}" width="{bar_space * min(started, whole) / whole:.1f}" height="18" rx="3">'
            f"<title>{started} of {enrollments} started</title></rect>"
        )
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{top + 5}" width="{bar_space * min(completed, whole) / whole:.1f}" height="18" rx="3">'
            f"<title>{completed} of {enrollments} completed</title></rect>"
        )
        rate = completed / enrollments if enrollments else 0.0
        parts.append(
            f'<text class="value" x="{label_w + bar_space + 8}" y="{top + 18}">{rate:.0%} '
            f'<tspan class="axis">({completed}/{enrollments})</tspan></text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))

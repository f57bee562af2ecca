"""Small charts of the staff's start page, drawn on the server as inline SVG: nothing is loaded
from anywhere (the pages' Content-Security-Policy allows only this server, crm/settings.py), nothing
runs in the browser, and every bar links to the admin list behind it.

Every text is escaped (`format_html`); sizes are in SVG user units and the charts scale to their
container (`viewBox`, `width: 100%`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def _number(value: float) -> str:
    """A coordinate as SVG text (one decimal)."""
    return f"{value:.1f}"


@dataclass(frozen=True)
class Bar:
    """One bar (or one part of a stacked bar): its label, value, link and CSS class."""

    label: str
    value: int
    url: str
    css: str = "crm-bar"


def horizontal_bars(*, title: str, bars: Sequence[Bar], unit: str) -> SafeString:
    """One horizontal bar per item, its label on the left and its value on the right."""
    row, label_width, value_width, width = 30, 150, 60, 520
    track = width - label_width - value_width
    top = max((bar.value for bar in bars), default=0) or 1
    rows = []
    for index, bar in enumerate(bars):
        y = index * row
        length = round(track * bar.value / top) if bar.value else 0
        rows.append(
            format_html(
                '<a href="{url}"><title>{label}: {value} {unit}</title>'
                '<text x="{lx}" y="{ty}" text-anchor="end" class="crm-chart-label">{label}</text>'
                '<rect x="{bx}" y="{by}" width="{length}" height="20" rx="2" class="{css}"></rect>'
                '<text x="{vx}" y="{ty}" class="crm-chart-value">{value}</text></a>',
                url=bar.url,
                label=bar.label,
                value=bar.value,
                unit=unit,
                lx=label_width - 8,
                ty=y + 15,
                bx=label_width,
                by=y + 2,
                length=max(length, 2),
                css=bar.css,
                vx=label_width + max(length, 2) + 6,
            )
        )
    height = row * len(bars)
    return format_html(
        '<svg class="crm-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        title,
        width,
        height,
        title,
        format_html_join("", "{}", ((r,) for r in rows)),
    )


@dataclass(frozen=True)
class Column:
    """One stacked column: its label (under it) and its parts, bottom first."""

    label: str
    parts: Sequence[Bar]


def stacked_columns(*, title: str, columns: Sequence[Column], legend: Sequence[tuple[str, str]]) -> SafeString:
    """Stacked vertical columns with their totals on top and a legend (`(label, css)` pairs)."""
    width, plot_height, top_margin, bottom_margin, gap = 520, 150, 18, 34, 8
    column_width = (width - gap) / max(1, len(columns)) - gap
    top = max((sum(part.value for part in column.parts) for column in columns), default=0) or 1
    drawn = []
    for index, column in enumerate(columns):
        x = gap + index * (column_width + gap)
        base: float = top_margin + plot_height
        total = 0
        for part in column.parts:
            if not part.value:
                continue
            height = plot_height * part.value / top
            base -= height
            total += part.value
            drawn.append(
                format_html(
                    '<a href="{}"><title>{}: {} ({})</title>'
                    '<rect x="{}" y="{}" width="{}" height="{}" class="{}"></rect></a>',
                    part.url,
                    column.label,
                    part.value,
                    part.label,
                    _number(x),
                    _number(base),
                    _number(column_width),
                    _number(height),
                    part.css,
                )
            )
        drawn.append(
            format_html(
                '<text x="{}" y="{}" text-anchor="middle" class="crm-chart-value">{}</text>'
                '<text x="{}" y="{}" text-anchor="middle" class="crm-chart-label">{}</text>',
                _number(x + column_width / 2),
                _number(base - 4),
                total,
                _number(x + column_width / 2),
                top_margin + plot_height + 16,
                column.label,
            )
        )
    legend_y = top_margin + plot_height + 22
    keys = format_html_join(
        "",
        '<rect x="{}" y="{}" width="12" height="12" class="{}"></rect>'
        '<text x="{}" y="{}" class="crm-chart-label">{}</text>',
        (
            (8 + index * 200, legend_y, css, 26 + index * 200, legend_y + 10, label)
            for index, (label, css) in enumerate(legend)
        ),
    )
    return format_html(
        '<svg class="crm-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="100%" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}{}</svg>',
        title,
        width,
        top_margin + plot_height + bottom_margin + 4,
        title,
        format_html_join("", "{}", ((d,) for d in drawn)),
        keys,
    )

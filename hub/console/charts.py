"""Charts for the Reports pages: line, bar and heat-map SVGs, and the table of numbers shown
beside each one.

Pure functions of the numbers (no I/O, no script, no external requests) returning markup that
reads without the console's stylesheet: presentation attributes give the look (no ``style``
attributes: the console's Content-Security-Policy refuses them), CSS classes allow restyling,
and text is ``currentColor`` so it follows the page. The output is byte-for-byte the same for
the same input, so rebuilt reports compare equal.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext

from markupsafe import Markup, escape

Formatter = Callable[[float], str]

NO_DATA = "No data for this period"
#: Okabe-Ito (colour-blind safe), the colours with at least 3:1 contrast on white first.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")
#: Line styles by series, so series differ in more than colour (and in print).
DASHES = ("", "7 4", "2 3", "10 3 2 3")
#: The heat map's single hue, from no share to all of it.
HEAT_LOW = (0xEF, 0xF6, 0xFF)
HEAT_HIGH = (0x08, 0x30, 0x6B)

# Sizes in viewBox units. Charts are 400 wide, so in a 360 px window (about 300 px left for
# the chart) text of 15 units shows at 11-12 px; wider pages show it larger.
_WIDTH = 400
_FONT = 15
_CHAR = 0.6  # average advance of a character, in ems (wide characters count twice)
_LINE_HEIGHT = 22
_LABEL_CHARS = 14  # longest axis label before it is cut with an ellipsis (the tooltip has all)
_PLOT_HEIGHT = 200
_DECIMAL = Context(prec=28)
# Characters XML 1.0 does not allow, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a line chart: a value per x label, None where that period has no data."""

    name: str
    values: Sequence[float | None]


# -- numbers ------------------------------------------------------------------------------


def number(value: float) -> str:
    """A value as a chart labels it: ``1,234``, ``4.25``, ``0.5``; very large or small ones
    as ``2.5e+09``."""
    value = value + 0.0  # no "-0"
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1e9 or (0 < magnitude < 0.01):
        return f"{value:.3g}"
    if value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def percent(value: float) -> str:
    """A share of 0..1 as a whole percentage: ``0.456`` -> ``46%``."""
    if not math.isfinite(value * 100):
        return number(value)
    return f"{value * 100 + 0.0:.0f}%"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``low``..``high`` and zero (axes here start
    at zero): ``nice_ticks(0, 37)`` -> ``[0, 10, 20, 30, 40]``."""
    return [float(tick) for tick in _ticks(low, high, count)]


def _ticks(low: float, high: float, count: int = 5) -> list[Decimal]:
    # Decimal, so that any finite float works (no overflow past 1.8e308, no step of 0.1 + 0.2)
    with localcontext(_DECIMAL):
        lo = min(Decimal(0), Decimal(low), Decimal(high))
        hi = max(Decimal(0), Decimal(low), Decimal(high))
        if lo == hi:
            hi = Decimal(1)
        raw = (hi - lo) / max(count, 1)
        exponent = raw.adjusted()
        mantissa = raw.scaleb(-exponent)
        nice = next(m for m in (1, 2, 5, 10) if mantissa <= m)
        step = Decimal(nice).scaleb(exponent)
        first = (lo / step).to_integral_value(ROUND_FLOOR)
        last = (hi / step).to_integral_value(ROUND_CEILING)
        return [((first + i) * step).normalize() + 0 for i in range(int(last - first) + 1)]


def _fraction(value: float | Decimal, ticks: Sequence[Decimal]) -> float:
    """Where ``value`` sits between the first tick (0.0) and the last (1.0)."""
    with localcontext(_DECIMAL):
        return float((Decimal(value) - ticks[0]) / (ticks[-1] - ticks[0]))


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _n(value: float) -> str:
    """A coordinate, with fixed decimals (deterministic output)."""
    text = f"{value + 0.0:.1f}"
    return "0.0" if text == "-0.0" else text


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit.startswith("%") else f"{text} {unit}"


def _formatter(given: Formatter | None, unit: str) -> Formatter:
    base = given or number
    return lambda value: _with_unit(base(value), unit)


# -- text ---------------------------------------------------------------------------------


def _e(text: object) -> str:
    """Text escaped for XML and HTML, characters XML cannot carry replaced."""
    return str(escape(_NOT_XML.sub("\ufffd", str(text))))


def _width(text: str, size: float = _FONT) -> float:
    """Roughly how wide ``text`` renders (no font metrics on a server: an estimate)."""
    ems = sum(1.0 if unicodedata.east_asian_width(c) in "WF" else _CHAR for c in text)
    return ems * size


def _fit(text: str, width: float, size: float = _FONT) -> str:
    """``text`` cut with an ellipsis so it is about ``width`` wide at most."""
    if _width(text, size) <= width:
        return text
    kept = ""
    for char in text:
        if _width(kept + char + "\u2026", size) > width:
            break
        kept += char
    return kept + "\u2026"


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "middle",
    css: str = "chart-label",
    fill: str = "currentColor",
    full: str | None = None,
    size: int = _FONT,
) -> str:
    """A ``<text>``; ``full`` (when the shown text is cut) becomes its tooltip."""
    tip = f"<title>{_e(full)}</title>" if full is not None and full != text else ""
    return (
        f'<text class="{css}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" '
        f'font-size="{size}" fill="{fill}">{tip}{_e(text)}</text>'
    )


def _svg(title: str, desc: str, width: float, height: float, body: Sequence[str]) -> Markup:
    content = "".join(body)
    # Ids from the content: stable across rebuilds, distinct for different charts on a page.
    key = hashlib.sha256(f"{title}\0{desc}\0{content}".encode("utf-8", "replace")).hexdigest()
    ident = f"chart-{key[:12]}"
    return Markup(  # noqa: S704 - every piece of text in it went through _e
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="100%" preserveAspectRatio="xMidYMid meet" '
        f'font-family="system-ui, -apple-system, &quot;Segoe UI&quot;, sans-serif">'
        f'<title id="{ident}-title">{_e(title)}</title>'
        f'<desc id="{ident}-desc">{_e(desc)}</desc>{content}</svg>'
    )


def _no_data(title: str) -> Markup:
    body = [_text(_WIDTH / 2, 50, NO_DATA, css="chart-empty")]
    return _svg(title, NO_DATA, _WIDTH, 80, body)


# -- axes ---------------------------------------------------------------------------------


def _value_axis(
    ticks: Sequence[Decimal], fmt: Formatter, *, top: float, left: float, right: float
) -> list[str]:
    """Horizontal gridlines and labels of a vertical value axis from ``top`` down."""
    parts = ['<g class="chart-axis chart-y-axis">']
    for tick in ticks:
        y = top + _PLOT_HEIGHT * (1 - _fraction(tick, ticks))
        css, opacity = ("chart-zero", "0.6") if tick == 0 else ("chart-grid", "0.15")
        parts.append(
            f'<line class="{css}" x1="{_n(left)}" y1="{_n(y)}" x2="{_n(right)}" y2="{_n(y)}" '
            f'stroke="currentColor" stroke-opacity="{opacity}"/>'
        )
        parts.append(_text(left - 6, y + _FONT * 0.35, fmt(float(tick)), anchor="end"))
    parts.append("</g>")
    return parts


def _category_axis(
    labels: Sequence[str], *, left: float, slot: float, y: float, always_last: bool
) -> list[str]:
    """Labels under bands of ``slot`` width, thinned so neighbours do not overlap (counted
    back from the last, the latest period, when ``always_last``)."""
    shown = [_fit(label, _width("x" * _LABEL_CHARS)) for label in labels]
    widest = max(_width(label) for label in shown)
    step = max(1, math.ceil((widest + 8) / slot))
    count = len(labels)
    order = range(count - 1, -1, -1) if always_last else range(count)
    placed: dict[int, tuple[float, float]] = {}  # index -> (start, end) of the label
    for i in order:
        if (count - 1 - i if always_last else i) % step:
            continue
        half = _width(shown[i]) / 2 + 4
        # The first and last stay inside the picture; one pushed onto a neighbour goes.
        x = min(max(left + slot * (i + 0.5), half), _WIDTH - half)
        if all(x + half <= start or x - half >= end for start, end in placed.values()):
            placed[i] = (x - half, x + half)
    parts = ['<g class="chart-axis chart-x-axis">']
    for i in sorted(placed):
        start, end = placed[i]
        parts.append(_text((start + end) / 2, y, shown[i], full=labels[i]))
    parts.append("</g>")
    return parts


def _value_label_width(ticks: Sequence[Decimal], fmt: Formatter) -> float:
    return min(max(_width(fmt(float(tick))) for tick in ticks), _WIDTH * 0.3)


# -- line chart ---------------------------------------------------------------------------


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    y_format: Formatter | None = None,
) -> Markup:
    """Series over periods (one value per x label; None breaks the line). ``unit`` follows
    every number shown (``4 min``); ``y_format`` formats the numbers (default :func:`number`)."""
    for line in series:
        if len(line.values) != len(x_labels):
            raise ValueError(
                f"series {line.name!r} has {len(line.values)} values for {len(x_labels)} labels"
            )
    data = [[_finite(v) for v in line.values] for line in series]
    known = [v for values in data for v in values if v is not None]
    if not x_labels or not known:
        return _no_data(title)
    fmt = _formatter(y_format, unit)
    ticks = _ticks(min(known), max(known))
    legend, legend_height = _legend([line.name for line in series]) if len(series) > 1 else ([], 0)
    top = 12 + legend_height
    left = _value_label_width(ticks, fmt) + 12
    right = _WIDTH - 8
    slot = (right - left) / len(x_labels)
    bottom = top + _PLOT_HEIGHT
    parts = [*legend, *_value_axis(ticks, fmt, top=top, left=left, right=right)]
    parts += _category_axis(x_labels, left=left, slot=slot, y=bottom + 20, always_last=True)
    for index, (line, values) in enumerate(zip(series, data, strict=True)):
        color, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        points = [
            None
            if v is None
            else (left + slot * (i + 0.5), bottom - _PLOT_HEIGHT * _fraction(v, ticks))
            for i, v in enumerate(values)
        ]
        parts.append(f'<g class="chart-series chart-line-{index}" stroke="{color}" fill="{color}">')
        for run in _runs(points):
            if len(run) > 1:
                dashes = f' stroke-dasharray="{dash}"' if dash else ""
                coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in run)
                parts.append(
                    f'<polyline class="chart-line" points="{coords}" fill="none" '
                    f'stroke-width="2.5" stroke-linejoin="round"{dashes}/>'
                )
        for label, value, point in zip(x_labels, values, points, strict=True):
            if value is not None and point is not None:
                tip = f"{label}: {line.name} {fmt(value)}"
                parts.append(
                    f'<circle class="chart-point" cx="{_n(point[0])}" cy="{_n(point[1])}" '
                    f'r="3"><title>{_e(tip)}</title></circle>'
                )
        parts.append("</g>")
    desc = _line_desc(x_labels, series, data, fmt)
    return _svg(title, desc, _WIDTH, bottom + 30, parts)


def _runs(
    points: Sequence[tuple[float, float] | None],
) -> list[list[tuple[float, float]]]:
    """The unbroken stretches of a line (a None ends one)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def _legend(names: Sequence[str]) -> tuple[list[str], float]:
    """Swatch and name per series, flowing onto more rows as needed; and its height."""
    parts = ['<g class="chart-legend">']
    x, y = 8.0, 12.0 + _FONT * 0.35
    for index, name in enumerate(names):
        shown = _fit(name, _WIDTH - 16 - 30)
        width = 30 + _width(shown) + 16
        if x > 8 and x + width > _WIDTH - 8:
            x, y = 8.0, y + _LINE_HEIGHT
        color, dash = PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line class="chart-swatch chart-line-{index}" x1="{_n(x)}" y1="{_n(y - 5)}" '
            f'x2="{_n(x + 24)}" y2="{_n(y - 5)}" stroke="{color}" stroke-width="3"{dashes}/>'
        )
        parts.append(_text(x + 30, y, shown, anchor="start", full=name))
        x += width
    parts.append("</g>")
    return parts, y + 4


def _line_desc(
    x_labels: Sequence[str],
    series: Sequence[Series],
    data: Sequence[Sequence[float | None]],
    fmt: Formatter,
) -> str:
    count = len(x_labels)
    span = (
        f"1 period ({x_labels[0]})"
        if count == 1
        else f"{count} periods from {x_labels[0]} to {x_labels[-1]}"
    )
    words = [f"Line chart of {len(series)} series over {span}."]
    for line, values in zip(series, data, strict=True):
        known = [(i, v) for i, v in enumerate(values) if v is not None]
        if not known:
            words.append(f"{line.name}: no data.")
            continue
        latest = known[-1]
        highest = max(known, key=lambda item: item[1])
        words.append(
            f"{line.name}: latest {fmt(latest[1])} ({x_labels[latest[0]]}), "
            f"highest {fmt(highest[1])} ({x_labels[highest[0]]})."
        )
    return " ".join(words)


# -- bar chart ----------------------------------------------------------------------------


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    unit: str = "",
    horizontal: bool = True,
    value_format: Formatter | None = None,
) -> Markup:
    """A bar per label, its value printed by it. Horizontal (the default) suits named
    categories such as channels; vertical suits periods."""
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values for {len(labels)} labels")
    data = [_finite(v) for v in values]
    known = [v for v in data if v is not None]
    if not labels or not any(known):
        return _no_data(title)
    fmt = _formatter(value_format, unit)
    ticks = _ticks(min(known), max(known))
    texts = ["no data" if v is None else fmt(v) for v in data]
    desc = _bar_desc(labels, data, fmt)
    if horizontal:
        return _horizontal_bars(title, desc, labels, data, texts, ticks, fmt)
    return _vertical_bars(title, desc, labels, data, texts, ticks, fmt)


def _bar(x: float, y: float, width: float, height: float, tip: str) -> str:
    return (
        f'<rect class="chart-bar" x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" '
        f'height="{_n(height)}" fill="{PALETTE[0]}"><title>{_e(tip)}</title></rect>'
    )


def _horizontal_bars(
    title: str,
    desc: str,
    labels: Sequence[str],
    data: Sequence[float | None],
    texts: Sequence[str],
    ticks: Sequence[Decimal],
    fmt: Formatter,
) -> Markup:
    row, bar = 28.0, 18.0
    label_width = min(max(_width(label) for label in labels), _WIDTH * 0.35)
    left = label_width + 16
    right = _WIDTH - min(max(_width(text) for text in texts), _WIDTH * 0.25) - 12
    # The outer tick labels are centred on the plot's ends: keep them inside the picture.
    right = min(right, _WIDTH - min(_width(fmt(float(ticks[-1]))), _WIDTH * 0.25) / 2 - 4)
    span = right - left
    zero = left + span * _fraction(0, ticks)
    top = 8.0
    parts = ['<g class="chart-axis chart-x-axis">']
    bottom = top + row * len(labels)
    for tick in ticks:
        x = left + span * _fraction(tick, ticks)
        css, opacity = ("chart-zero", "0.6") if tick == 0 else ("chart-grid", "0.15")
        parts.append(
            f'<line class="{css}" x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(bottom)}" '
            f'stroke="currentColor" stroke-opacity="{opacity}"/>'
        )
        parts.append(_text(x, bottom + 20, fmt(float(tick))))
    parts.append('</g><g class="chart-bars">')
    for i, (label, value, text) in enumerate(zip(labels, data, texts, strict=True)):
        y = top + row * i
        middle = y + row / 2 + _FONT * 0.35
        parts.append(_text(left - 8, middle, _fit(label, label_width), anchor="end", full=label))
        end = zero if value is None else left + span * _fraction(value, ticks)
        if value is not None:
            x0, x1 = sorted((zero, end))
            parts.append(_bar(x0, y + (row - bar) / 2, x1 - x0, bar, f"{label}: {text}"))
        parts.append(_text(max(zero, end) + 6, middle, text, anchor="start", css="chart-value"))
    parts.append("</g>")
    return _svg(title, desc, _WIDTH, bottom + 30, parts)


def _vertical_bars(
    title: str,
    desc: str,
    labels: Sequence[str],
    data: Sequence[float | None],
    texts: Sequence[str],
    ticks: Sequence[Decimal],
    fmt: Formatter,
) -> Markup:
    top = 12.0 + _FONT
    left = _value_label_width(ticks, fmt) + 12
    right = _WIDTH - 8
    slot = (right - left) / len(labels)
    bottom = top + _PLOT_HEIGHT
    zero = bottom - _PLOT_HEIGHT * _fraction(0, ticks)
    parts = _value_axis(ticks, fmt, top=top, left=left, right=right)
    parts += _category_axis(labels, left=left, slot=slot, y=bottom + 20, always_last=False)
    parts.append('<g class="chart-bars">')
    for i, (label, value, text) in enumerate(zip(labels, data, texts, strict=True)):
        if value is None:
            continue
        middle = left + slot * (i + 0.5)
        end = bottom - _PLOT_HEIGHT * _fraction(value, ticks)
        y0, y1 = sorted((zero, end))
        parts.append(_bar(middle - slot * 0.35, y0, slot * 0.7, y1 - y0, f"{label}: {text}"))
        if _width(text) <= slot:  # the value over its bar, where it fits (else the tooltip)
            parts.append(_text(middle, min(zero, end) - 5, text, css="chart-value"))
    parts.append("</g>")
    return _svg(title, desc, _WIDTH, bottom + 30, parts)


def _bar_desc(labels: Sequence[str], data: Sequence[float | None], fmt: Formatter) -> str:
    known = [(label, v) for label, v in zip(labels, data, strict=True) if v is not None]
    highest = max(known, key=lambda item: item[1])
    lowest = min(known, key=lambda item: item[1])
    words = f"Bar chart of {len(labels)} {'bar' if len(labels) == 1 else 'bars'}."
    if len(known) == 1:
        return f"{words} {highest[0]}: {fmt(highest[1])}."
    return (
        f"{words} Highest: {highest[0]}, {fmt(highest[1])}; lowest: {lowest[0]}, {fmt(lowest[1])}."
    )


# -- heat map -----------------------------------------------------------------------------


def heat_color(share: float) -> str:
    """The fill of a cell holding ``share`` (0..1, clamped) on the single-hue scale."""
    t = min(max(share, 0.0), 1.0)
    channels = (round(a + (b - a) * t) for a, b in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return "#" + "".join(f"{c:02X}" for c in channels)


def _luminance(color: str) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(int(color[i : i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(first: str, second: str) -> float:
    """The WCAG contrast ratio of two ``#RRGGBB`` colours."""
    darker, lighter = sorted((_luminance(first), _luminance(second)))
    return (lighter + 0.05) / (darker + 0.05)


def ink_on(fill: str) -> str:
    """Black or white, whichever reads better on ``fill`` (at least 4.58:1 on any colour)."""
    return "#000000" if contrast(fill, "#000000") >= contrast(fill, "#FFFFFF") else "#FFFFFF"


def heat_map(
    title: str,
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    cells: Sequence[Sequence[float | None]],
    *,
    value_format: Formatter | None = None,
) -> Markup:
    """Shares of 0..1 in a grid (a retention cohort per row, months since per column), each
    cell coloured by its share and printed (default :func:`percent`). None, or a row shorter
    than the columns (the newest cohorts), leaves cells blank."""
    if len(cells) != len(row_labels):
        raise ValueError(f"{len(cells)} rows of cells for {len(row_labels)} row labels")
    if any(len(row) > len(column_labels) for row in cells):
        raise ValueError(f"a row has more cells than the {len(column_labels)} columns")
    grid = [
        [_finite(row[j]) if j < len(row) else None for j in range(len(column_labels))]
        for row in cells
    ]
    known = [v for row in grid for v in row if v is not None]
    if not known or not column_labels:
        return _no_data(title)
    fmt = value_format or percent
    texts = [[None if v is None else fmt(v) for v in row] for row in grid]
    widest = max(_width(t) for row in texts for t in row if t is not None)
    label_width = min(max(_width(label) for label in row_labels), _WIDTH * 0.3)
    left = label_width + 14
    cell_w = max((_WIDTH - 8 - left) / len(column_labels), widest + 8, 36)
    width = max(_WIDTH, left + cell_w * len(column_labels) + 8)
    cell_h, top = 30.0, 8.0 + _LINE_HEIGHT
    parts = ['<g class="chart-axis chart-x-axis">']
    for j, label in enumerate(column_labels):
        x = left + cell_w * (j + 0.5)
        parts.append(_text(x, top - 8, _fit(label, cell_w - 4), full=label))
    parts.append('</g><g class="chart-axis chart-y-axis">')
    for i, label in enumerate(row_labels):
        y = top + cell_h * (i + 0.5) + _FONT * 0.35
        parts.append(_text(left - 8, y, _fit(label, label_width), anchor="end", full=label))
    parts.append('</g><g class="chart-cells">')
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            text = texts[i][j]
            if value is None or text is None:
                continue
            fill = heat_color(value)
            x, y = left + cell_w * j, top + cell_h * i
            tip = f"{row_labels[i]}, {column_labels[j]}: {text}"
            parts.append(
                f'<rect class="chart-cell" x="{_n(x)}" y="{_n(y)}" width="{_n(cell_w)}" '
                f'height="{_n(cell_h)}" fill="{fill}" stroke="#FFFFFF" stroke-width="1">'
                f"<title>{_e(tip)}</title></rect>"
            )
            parts.append(
                _text(x + cell_w / 2, y + cell_h / 2 + _FONT * 0.35, text, fill=ink_on(fill))
            )
    bottom = top + cell_h * len(row_labels)
    parts.append("</g>")
    parts += _heat_key(fmt, left, bottom + 14)
    desc = _heat_desc(row_labels, column_labels, grid, fmt)
    return _svg(title, desc, width, bottom + 14 + 20 + _LINE_HEIGHT, parts)


def _heat_key(fmt: Formatter, left: float, top: float) -> list[str]:
    """The scale: five swatches from 0 to 1, each with its value."""
    parts = ['<g class="chart-legend">']
    swatch = 56.0
    for k in range(5):
        share = k / 4
        fill = heat_color(share)
        x = left + swatch * k
        parts.append(
            f'<rect class="chart-swatch" x="{_n(x)}" y="{_n(top)}" width="{_n(swatch)}" '
            f'height="20" fill="{fill}" stroke="currentColor" stroke-opacity="0.3"/>'
        )
        parts.append(_text(x + swatch / 2, top + 20 + _FONT + 2, fmt(share)))
    parts.append("</g>")
    return parts


def _heat_desc(
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    grid: Sequence[Sequence[float | None]],
    fmt: Formatter,
) -> str:
    known = [
        (v, row_labels[i], column_labels[j])
        for i, row in enumerate(grid)
        for j, v in enumerate(row)
        if v is not None
    ]
    highest = max(known, key=lambda item: item[0])
    lowest = min(known, key=lambda item: item[0])
    return (
        f"Heat map of {len(row_labels)} rows by {len(column_labels)} columns, "
        f"{len(known)} with values. Highest: {highest[1]}, {highest[2]}: {fmt(highest[0])}; "
        f"lowest: {lowest[1]}, {lowest[2]}: {fmt(lowest[0])}."
    )


# -- the numbers as a table -------------------------------------------------------------------


def data_table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Markup:
    """The numbers of a chart as an HTML table beside it: a column header per ``header``
    entry, and each row's first cell as that row's header (the period, channel or cohort)."""
    head = "".join(f'<th scope="col">{_e(name)}</th>' for name in header)
    body = []
    for row in rows:
        cells = [
            f'<th scope="row">{_e(cell)}</th>' if j == 0 else f"<td>{_e(cell)}</td>"
            for j, cell in enumerate(row)
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return Markup(  # noqa: S704 - every piece of text in it went through _e
        f'<table class="chart-table"><caption>{_e(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )

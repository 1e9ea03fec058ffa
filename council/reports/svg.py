"""Hand-written SVG charts, returned as strings to inline in a page: no plotting library, no
scripts, nothing fetched. Every chart has a visible title, axis labels, an accessible
``<title>``/``aria-label``, and a ``<title>`` tooltip on each mark; all data text is escaped."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Okabe-Ito: distinguishable with the common colour-vision deficiencies. Seats and arms take
# these, by their index in the seating (or plan) order, in every chart of a page.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999")
# Reference lines (no-persona baselines, the ends of the drift axis) never take a seat's colour.
REFERENCE_COLOURS = ("#6A3D9A", "#4D4D4D", "#8C510A", "#B2182B")
WIDTH = 800
_LABEL_CHARS = 26


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def reference_colour(index: int) -> str:
    return REFERENCE_COLOURS[index % len(REFERENCE_COLOURS)]


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0")


def _short(text: str, limit: int = _LABEL_CHARS) -> str:
    """At most ``limit`` characters, cut in the middle so a round number at the end stays."""
    if len(text) <= limit:
        return text
    tail = limit // 3
    return text[: limit - 1 - tail] + "…" + text[len(text) - tail :]


def _num(v: float, digits: int = 3) -> str:
    return f"{v:.{digits}f}"


def _open(width: float, height: float, title: str, desc: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" '
        f'aria-label="{_e(title)}" font-family="system-ui, sans-serif" font-size="12">'
        f"<title>{_e(title)}</title><desc>{_e(desc or title)}</desc>"
        f'<text x="{_n(width / 2)}" y="20" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{_e(title)}</text>'
    )


def nice_scale(lo: float, hi: float, count: int = 5) -> tuple[float, float, list[float]]:
    """A domain widened to round tick values, and the ticks."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        lo, hi = 0.0, 1.0
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    start, stop = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = [round(start + i * step, 10) for i in range(round((stop - start) / step) + 1)]
    return start, stop, ticks


def _tick(value: float) -> str:
    return f"{value:g}"


@dataclass
class Series:
    """One line (or one set of dots): a value per x label, ``None`` where there is none."""

    name: str
    values: Sequence[float | None]
    intervals: Sequence[tuple[float, float] | None] = field(default_factory=list)
    colour: str | None = None


@dataclass
class Reference:
    """A horizontal line across the plot (a baseline, the ends of the drift axis)."""

    value: float
    label: str
    colour: str = "#555555"
    dash: str = "6 4"


def xy_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    x_axis: str,
    y_axis: str,
    refs: Sequence[Reference] = (),
    connect: bool = True,
    include: Sequence[float] = (),
    desc: str = "",
    from_zero: bool = True,
) -> str:
    """Points over categorical x labels: lines (``connect``) or dots, with 95% whiskers where a
    series has intervals, and dashed reference lines listed in the legend. The y axis starts
    at 0 unless ``from_zero`` is false, and then its label says where it starts."""
    found: list[float] = [*include, *(r.value for r in refs), *([0.0] if from_zero else [])]
    for s in series:
        found += [v for v in s.values if v is not None]
        found += [b for pair in s.intervals if pair is not None for b in pair]
    has_data = any(v is not None for s in series for v in s.values)
    lo, hi, ticks = nice_scale(min(found, default=0.0), max(found, default=1.0))
    if lo > 0:
        y_axis = f"{y_axis} (axis starts at {_tick(lo)}, not 0)"

    rotate = len(x_labels) > 4 or any(len(lab) > 12 for lab in x_labels)
    longest = max((len(_short(lab)) for lab in x_labels), default=4)
    bottom = 46 + (longest * 3.4 if rotate else 16)
    top, plot_h, legend_x = 40.0, 240.0, WIDTH - 232.0
    band_guess = (legend_x - 64.0) / max(1, len(x_labels))
    # A rotated label reaches left of its point: leave room for the first one.
    left = max(64.0, longest * 5.4 - band_guess / 2 + 8) if rotate else 64.0
    plot_w = legend_x - 24 - left
    legend: list[tuple[str, str, str | None]] = [
        (s.name, s.colour or colour(i), None) for i, s in enumerate(series)
    ]
    legend += [(r.label, r.colour, r.dash) for r in refs]
    height = max(top + plot_h + bottom, top + 20 * len(legend) + 20)
    parts = [_open(WIDTH, height, title, desc)]

    def y_of(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    band = plot_w / max(1, len(x_labels))

    def x_of(i: int) -> float:
        return left + (i + 0.5) * band

    for t in ticks:  # grid and y ticks
        y = y_of(t)
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="#e3e3e3"/>'
        )
        parts.append(
            f'<text x="{_n(left - 6)}" y="{_n(y + 4)}" text-anchor="end">{_tick(t)}</text>'
        )
    parts.append(
        f'<path d="M{_n(left)},{_n(top)} V{_n(top + plot_h)} H{_n(left + plot_w)}" '
        f'fill="none" stroke="#333"/>'
    )
    for i, label in enumerate(x_labels):
        x, y = x_of(i), top + plot_h + 14
        anchor, transform = (
            ("end", f' transform="rotate(-35 {_n(x)} {_n(y)})"') if rotate else ("middle", "")
        )
        parts.append(
            f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{transform}>'
            f"<title>{_e(label)}</title>{_e(_short(label))}</text>"
        )
    parts.append(
        f'<text x="{_n(left + plot_w / 2)}" y="{_n(height - 8)}" text-anchor="middle" '
        f'font-weight="bold">{_e(x_axis)}</text>'
    )
    cy = top + plot_h / 2
    parts.append(
        f'<text x="16" y="{_n(cy)}" text-anchor="middle" font-weight="bold" '
        f'transform="rotate(-90 16 {_n(cy)})">{_e(y_axis)}</text>'
    )
    for ref in refs:
        y = y_of(ref.value)
        parts.append(
            f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="{ref.colour}" stroke-width="1.5" stroke-dasharray="{ref.dash}">'
            f"<title>{_e(ref.label)}: {_num(ref.value)}</title></line>"
        )
    dodge = min(8.0, band / (len(series) + 1)) if connect and len(series) > 1 else 0.0
    for index, s in enumerate(series):
        stroke = s.colour or colour(index)
        offset = (index - (len(series) - 1) / 2) * dodge
        if connect:
            segments: list[list[str]] = [[]]
            for i, v in enumerate(s.values):
                if v is None:
                    segments.append([])
                else:
                    segments[-1].append(f"{_n(x_of(i) + offset)},{_n(y_of(v))}")
            for seg in segments:
                if len(seg) > 1:
                    parts.append(
                        f'<polyline points="{" ".join(seg)}" fill="none" '
                        f'stroke="{stroke}" stroke-width="2"/>'
                    )
        for i, v in enumerate(s.values):
            if v is None:
                continue
            x = x_of(i) + offset
            pair = s.intervals[i] if i < len(s.intervals) else None
            tip = f"{s.name} at {x_labels[i]}: {_num(v)}"
            if pair is not None:
                tip += f" (95% CI {_num(pair[0])} to {_num(pair[1])})"
                y1, y2 = y_of(pair[0]), y_of(pair[1])
                parts.append(
                    f'<path d="M{_n(x)},{_n(y1)} V{_n(y2)} M{_n(x - 5)},{_n(y1)} H{_n(x + 5)} '
                    f'M{_n(x - 5)},{_n(y2)} H{_n(x + 5)}" stroke="{stroke}" stroke-width="1.5" '
                    f'fill="none"/>'
                )
            parts.append(
                f'<circle cx="{_n(x)}" cy="{_n(y_of(v))}" r="4.5" fill="{stroke}">'
                f"<title>{_e(tip)}</title></circle>"
            )
    if not has_data:
        parts.append(
            f'<text x="{_n(left + plot_w / 2)}" y="{_n(cy)}" text-anchor="middle" '
            f'fill="#666">no data</text>'
        )
    lx = legend_x
    for row, (name, stroke, dash) in enumerate(legend):
        y = top + 10 + row * 20
        style = f' stroke-dasharray="{dash}"' if dash else ""
        kind = "reference" if dash else "series"
        # data-* name each entry and its colour, so a test can compare charts of one page.
        parts.append(
            f'<g class="legend-{kind}" data-name="{_e(name)}" data-colour="{stroke}">'
            f'<line x1="{_n(lx)}" x2="{_n(lx + 22)}" y1="{_n(y)}" y2="{_n(y)}" '
            f'stroke="{stroke}" stroke-width="2.5"{style}/>'
            f'<text x="{_n(lx + 28)}" y="{_n(y + 4)}"><title>{_e(name)}</title>'
            f"{_e(_short(name, 28))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _blend(t: float) -> str:
    """White (t = 0) to dark blue (t = 1)."""
    t = min(1.0, max(0.0, t))
    a, b = (247, 251, 255), (8, 48, 107)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def heatmap(
    title: str,
    labels: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    desc: str = "",
    keys: Mapping[str, str] | None = None,
) -> str:
    """Cosine similarity between seats: a square of cells, darker for more similar, the value
    in each cell (when it fits) and in its tooltip. ``keys`` maps a seat to its colour, shown
    as a swatch beside its row so the heatmap reads with the page's other charts."""
    n = len(labels)
    cell = max(26.0, min(64.0, 420.0 / max(1, n)))
    margin = 14 + 6.5 * max((len(_short(lab, 20)) for lab in labels), default=4)
    left, top = 40 + margin, 40 + margin * 0.75
    side = cell * n
    scale_x = left + side + 30
    width = max(360.0, scale_x + 90)
    height = top + side + 46
    values = [v for row in matrix for v in row if v is not None]
    floor = min(0.0, min(values, default=0.0))
    parts = [_open(width, height, title, desc)]
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            x, y = left + j * cell, top + i * cell
            if value is None:
                fill, text, tip = "#ffffff", "", "no value"
            else:
                t = (value - floor) / (1.0 - floor) if floor < 1.0 else 1.0
                fill, text = _blend(t), f"{value:.2f}"
                tip = f"{labels[i]} and {labels[j]}: cosine similarity {value:.3f}"
            parts.append(
                f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(cell)}" height="{_n(cell)}" '
                f'fill="{fill}" stroke="#ffffff"><title>{_e(tip)}</title></rect>'
            )
            if text and cell >= 34:
                t = (value - floor) / (1.0 - floor) if value is not None and floor < 1 else 0
                ink = "#ffffff" if t > 0.55 else "#111111"
                parts.append(
                    f'<text x="{_n(x + cell / 2)}" y="{_n(y + cell / 2 + 4)}" '
                    f'text-anchor="middle" fill="{ink}" font-size="11">{text}</text>'
                )
    for i, label in enumerate(labels):
        y = top + i * cell + cell / 2 + 4
        parts.append(
            f'<text x="{_n(left - 16)}" y="{_n(y)}" text-anchor="end"><title>{_e(label)}'
            f"</title>{_e(_short(label, 20))}</text>"
        )
        key = (keys or {}).get(label)
        if key:
            parts.append(
                f'<g class="legend-series" data-name="{_e(label)}" data-colour="{key}">'
                f'<rect x="{_n(left - 12)}" y="{_n(y - 9)}" width="9" height="9" fill="{key}">'
                f"<title>{_e(label)}</title></rect></g>"
            )
        x = left + i * cell + cell / 2
        parts.append(
            f'<text x="{_n(x)}" y="{_n(top - 6)}" text-anchor="start" '
            f'transform="rotate(-45 {_n(x)} {_n(top - 6)})"><title>{_e(label)}</title>'
            f"{_e(_short(label, 20))}</text>"
        )
    parts.append(
        f'<text x="{_n(left + side / 2)}" y="{_n(height - 10)}" text-anchor="middle" '
        f'font-weight="bold">seat</text>'
    )
    cy = top + side / 2
    parts.append(
        f'<text x="16" y="{_n(cy)}" text-anchor="middle" font-weight="bold" '
        f'transform="rotate(-90 16 {_n(cy)})">seat</text>'
    )
    steps = 5  # the colour key: cosine similarity from the floor to 1
    for k in range(steps):
        value = 1.0 - k * (1.0 - floor) / (steps - 1)
        y = top + k * 18
        parts.append(
            f'<rect x="{_n(scale_x)}" y="{_n(y)}" width="16" height="16" '
            f'fill="{_blend((value - floor) / (1 - floor) if floor < 1 else 1)}" '
            f'stroke="#999"/><text x="{_n(scale_x + 22)}" y="{_n(y + 12)}">'
            f"{value:.2f}</text>"
        )
    parts.append(f'<text x="{_n(scale_x)}" y="{_n(top - 8)}" font-size="11">cosine</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar(
    title: str, parts_: Sequence[tuple[str, float]], *, x_axis: str, y_axis: str, desc: str = ""
) -> str:
    """Shares of a whole (each 0 to 1, as measured) as one horizontal bar, with percentages and
    a legend. Shares are drawn as they are, never rescaled: the caller refuses to draw shares
    that add up to more than the whole."""
    left, right, top, bar_h = 110.0, WIDTH - 40.0, 44.0, 40.0
    height = top + bar_h + 90
    parts = [_open(WIDTH, height, title, desc)]
    x = left
    span = right - left
    for index, (name, value) in enumerate(parts_):
        share = min(1.0, max(0.0, value))
        w = share * span
        fill = colour(index)
        tip = f"{name}: {share * 100:.1f}% of the total variance"
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(top)}" width="{_n(w)}" height="{_n(bar_h)}" '
            f'fill="{fill}"><title>{_e(tip)}</title></rect>'
        )
        if w > 44:
            parts.append(
                f'<text x="{_n(x + w / 2)}" y="{_n(top + bar_h / 2 + 4)}" '
                f'text-anchor="middle" fill="#ffffff">{share * 100:.0f}%</text>'
            )
        x += w
    parts.append(
        f'<rect x="{_n(left)}" y="{_n(top)}" width="{_n(span)}" height="{_n(bar_h)}" '
        f'fill="none" stroke="#333"/>'
    )
    parts.append(
        f'<text x="{_n(left - 8)}" y="{_n(top + bar_h / 2 + 4)}" text-anchor="end" '
        f'font-weight="bold">{_e(y_axis)}</text>'
    )
    for pct in range(0, 101, 25):
        tx = left + pct / 100 * span
        parts.append(
            f'<line x1="{_n(tx)}" x2="{_n(tx)}" y1="{_n(top + bar_h)}" '
            f'y2="{_n(top + bar_h + 5)}" stroke="#333"/><text x="{_n(tx)}" '
            f'y="{_n(top + bar_h + 18)}" text-anchor="middle">{pct}%</text>'
        )
    parts.append(
        f'<text x="{_n(left + span / 2)}" y="{_n(top + bar_h + 36)}" '
        f'text-anchor="middle" font-weight="bold">{_e(x_axis)}</text>'
    )
    lx = left
    for index, (name, value) in enumerate(parts_):
        share = min(1.0, max(0.0, value))
        label = f"{_short(name, 20)} {share * 100:.1f}%"
        parts.append(
            f'<rect x="{_n(lx)}" y="{_n(height - 22)}" width="12" height="12" '
            f'fill="{colour(index)}"/><text x="{_n(lx + 17)}" y="{_n(height - 12)}">'
            f"{_e(label)}</text>"
        )
        lx += 30 + 7 * len(label)
    parts.append("</svg>")
    return "".join(parts)

"""Error-vs-iteration curves drawn with braille characters (2x4 dots per cell), no plotting package.

Several series overlay in one panel; training error is drawn dotted and test error solid, in the spirit of
He et al. 2016, Fig. 6 (thin dashed = training error, bold = testing error). Each series ends with its label so
lines stay distinguishable without colour (NO_COLOR). Points that share a pixel column are averaged, which
also smooths the noisy per-batch training error.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from core.formatting import count

PALETTE = ("#4ea1ff", "#ff8c42", "#5fd068", "#e85d75", "#c792ea", "#e6c84f", "#3fc1c9", "#b0b0b0")
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] inside a braille cell


@dataclass
class Series:
    label: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = PALETTE[0]
    dotted: bool = False
    end_label: str = ""  # written right of the last point; "" = none
    sparse: bool = False  # an edge of a min-max band: a dot every third pixel column, no legend entry


@dataclass
class Canvas:
    """A braille canvas: ``width`` x ``height`` cells, 2 x 4 pixels each."""

    width: int
    height: int
    bits: list[list[int]] = field(default_factory=list)
    owner: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bits = [[0] * self.width for _ in range(self.height)]
        self.owner = [[-1] * self.width for _ in range(self.height)]

    def dot(self, px: int, py: int, who: int) -> None:
        if 0 <= px < self.width * 2 and 0 <= py < self.height * 4:
            cy, cx = py // 4, px // 2
            self.bits[cy][cx] |= _DOTS[py % 4][px % 2]
            self.owner[cy][cx] = who

    def chars(self) -> list[str]:
        return ["".join(chr(0x2800 + b) if b else " " for b in row) for row in self.bits]


def column_means(xs: Sequence[float], ys: Sequence[float], x0: float, x1: float, columns: int) -> list[float | None]:
    """Mean y per pixel column over [x0, x1]; linear interpolation between columns that got no point."""
    sums = [0.0] * columns
    counts = [0] * columns
    span = (x1 - x0) or 1.0
    for x, y in zip(xs, ys):
        if y is None or x is None or not math.isfinite(y):
            continue
        c = int(round((x - x0) / span * (columns - 1)))
        if 0 <= c < columns:
            sums[c] += y
            counts[c] += 1
    out: list[float | None] = [s / n if n else None for s, n in zip(sums, counts)]
    known = [i for i, v in enumerate(out) if v is not None]
    for a, b in zip(known, known[1:]):
        for i in range(a + 1, b):
            out[i] = out[a] + (out[b] - out[a]) * (i - a) / (b - a)
    return out


def nice_ceiling(value: float) -> float:
    """The next of 1, 2, 2.5, 3, 4, 5 x 10^k at or above value (axis tops: 100, 50, 40, 20, 10 ...)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 2.5, 3, 4, 5, 10):
        if m * 10 ** exp >= value - 1e-9:
            return m * 10 ** exp
    return 10 ** (exp + 1)  # pragma: no cover


def draw(series: Sequence[Series], width: int, height: int, *, ymax: float | None = None,
         xmax: float | None = None, unit: str = "%") -> Text:
    """The whole plot (y axis, curves, x axis) as Text of ``height`` lines and ``width`` cells."""
    if width < 12 or height < 4:
        return Text("(too small to plot)", style="dim")
    all_x = [x for s in series for x in s.xs]
    all_y = [y for s in series for y in s.ys if y is not None and math.isfinite(y)]
    if not all_x or not all_y:
        return Text("no points yet", style="dim")
    top = ymax if ymax is not None else nice_ceiling(max(all_y))
    right = xmax if xmax is not None else max(all_x)
    right = right or 1.0
    plot_h = height - 2
    tick_rows = sorted({0, (plot_h - 1) // 2, plot_h - 1})
    ticks = {r: _tick(top * (1 - r / max(plot_h - 1, 1)), top) for r in tick_rows}
    ticks[0] += unit
    label_w = max(len(t) for t in ticks.values())
    end_w = max([len(s.end_label) for s in series if s.end_label] or [0])
    end_w = end_w + 1 if end_w and width - label_w - 1 - end_w >= 10 else 0
    plot_w = width - label_w - 1 - end_w
    canvas = Canvas(plot_w, plot_h)
    px_w, px_h = plot_w * 2, plot_h * 4
    ends: dict[int, tuple[int, int]] = {}
    for idx, s in enumerate(series):
        cols = column_means(s.xs, s.ys, 0.0, right, px_w)
        prev = None
        for px, y in enumerate(cols):
            if y is None:
                prev = None
                continue
            if y > top:
                prev = None
                continue
            py = int(round((1 - y / top) * (px_h - 1)))
            if s.dotted or s.sparse:
                if px % (3 if s.sparse else 2) == 0:
                    canvas.dot(px, py, idx)
            else:
                lo, hi = (py, py) if prev is None else (min(prev, py), max(prev, py))
                for yy in range(lo, hi + 1):
                    canvas.dot(px, yy, idx)
            prev = py
            ends[idx] = (px // 2, py // 4)
    rows = canvas.chars()
    end_marks: dict[int, tuple[str, str]] = {}
    if end_w:
        for idx, (cx, cy) in sorted(ends.items(), key=lambda item: item[1][1]):
            if not series[idx].end_label:
                continue
            for row in (cy, cy + 1, cy - 1, cy + 2, cy - 2):   # labels that would collide move a row or two
                if 0 <= row < plot_h and row not in end_marks:
                    end_marks[row] = (series[idx].end_label, series[idx].color)
                    break
    out = Text(no_wrap=True, overflow="crop")
    for r in range(plot_h):
        out.append(ticks.get(r, "").rjust(label_w), style="dim")
        out.append("┤" if r in ticks else "│", style="dim")
        line = rows[r]
        owners = canvas.owner[r]
        start = 0
        while start < plot_w:
            who = owners[start]
            end = start
            while end < plot_w and owners[end] == who:
                end += 1
            out.append(line[start:end], style=series[who].color if who >= 0 else "")
            start = end
        if end_w:
            mark = end_marks.get(r)
            if mark:
                label, color = mark
                out.append(" " + label[: end_w - 1], style=color)
                out.append(" " * (end_w - 1 - len(label[: end_w - 1])))
            else:
                out.append(" " * end_w)
        out.append("\n")
    out.append(" " * label_w + "└" + "─" * plot_w + " " * end_w + "\n", style="dim")
    axis = [" "] * (plot_w + 1)
    for frac in (0.0, 0.5, 1.0):
        label = count(right * frac)
        pos = int(round(frac * plot_w))
        pos = min(max(0, pos - len(label) // 2), plot_w + 1 - len(label))
        for i, ch in enumerate(label):
            axis[pos + i] = ch
    out.append(" " * label_w + "".join(axis) + " " * end_w, style="dim")
    return out


def _tick(value: float, top: float) -> str:
    if top >= 10 or value == 0:
        return f"{value:.0f}"
    return f"{value:.2g}"


class CurvePlot(Widget):
    """A panel of overlaid error curves; set ``series`` (and optionally ``ymax``) to redraw."""

    DEFAULT_CSS = """
    CurvePlot { height: 1fr; min-height: 6; }
    """

    series: reactive[list[Series]] = reactive(list, always_update=True)
    ymax: reactive[float | None] = reactive(None)
    xmax: reactive[float | None] = reactive(None)

    def __init__(self, title: str = "", *, name: str | None = None, id: str | None = None,
                 classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.title = title

    def render(self) -> Text:
        title_h = 1 if self.title else 0
        text = Text(no_wrap=True, overflow="crop")
        if self.title:
            text.append(self.title[: self.size.width] + "\n", style="bold")
        text.append_text(draw(self.series, self.size.width, self.size.height - title_h, ymax=self.ymax,
                              xmax=self.xmax))
        return text


def legend(series: Sequence[Series]) -> Text:
    """One entry per series: a coloured sample of its line style and its label."""
    text = Text()
    for s in series:
        if s.sparse:
            continue
        if text:
            text.append("  ")
        text.append("⠒⠒ " if s.dotted else "━━ ", style=s.color)
        text.append(s.label)
    return text


def run_series(label: str, steps: Sequence[dict], epochs: Sequence[dict], color: str,
               end_label: str = "") -> list[Series]:
    """A run's training error over iterations (steps.jsonl, dotted) and test error at each epoch end (solid)."""
    train = Series(f"{label} train", [r["step"] for r in steps if "step" in r and "err" in r],
                   [r["err"] for r in steps if "step" in r and "err" in r], color=color, dotted=True)
    test_rows = [e for e in epochs if isinstance(e.get("test_err"), (int, float)) and "step" in e]
    test = Series(f"{label} test", [e["step"] for e in test_rows], [e["test_err"] for e in test_rows], color=color,
                  end_label=end_label)
    return [train, test]


def focus_range(finals: Sequence[float | None]) -> float | None:
    """A y-axis top that shows the end of training: twice the worst final error, rounded up (None: no data).

    Runs that end below 10 % get the paper's Fig. 6 range (0-20 %)."""
    values = [v for v in finals if v is not None and math.isfinite(v)]
    if not values:
        return None
    return min(100.0, nice_ceiling(max(2 * max(values), 5.0)))

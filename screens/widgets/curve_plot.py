"""Curves drawn with braille characters (2x4 dots per cell), no plotting package.

Several series overlay in one panel; training error is drawn dotted and test error solid, in the spirit of
He et al. 2016, Fig. 6 (thin dashed = training error, bold = testing error). Test error is a line through the epoch
ends with a marker at each (a different marker per run), and each series can end with its label, so curves stay
apart without colour (NO_COLOR). Points that share a pixel column are averaged, which also smooths the noisy
per-batch training error.

The y axis fits the data by default (``y_limits``: curves that move between 60 and 85 % fill the panel instead of
lying flat in 0-100 %), or shows the paper's Fig. 6 range (0-20 %) or the full range; it can be logarithmic.

Why not textual-plotext: it pins plotext < 6 and rebuilds the whole figure as ANSI text on every refresh, 10-17x
slower than ``draw`` on the same data (``python bench/plot_render.py``: 28 vs 2.8 ms for two runs of 2,000 points,
280 vs 17 ms at 20,000), and its lines need colour to be told apart; this module averages per pixel column, marks
epoch ends and labels line ends.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from core.util.formatting import count

PALETTE = ("#4ea1ff", "#ff8c42", "#5fd068", "#e85d75", "#c792ea", "#e6c84f", "#3fc1c9", "#b0b0b0")
MARKERS = ("●", "■", "▲", "◆", "✚", "✖", "○", "□")       # one per run: test-error points without colour
Y_MODES = ("auto", "fig6", "full")                       # z cycles through them
Y_MODE_NAMES = {"auto": "fit to the data", "fig6": "0-20 % (the paper's Fig. 6)", "full": "0-100 %"}
Y_MODE_SHORT = {"auto": "fitted", "fig6": "0-20 % (Fig. 6)", "full": "0-100 %"}
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
    marker: str = ""      # drawn at every point (the epoch ends of a test-error series); "" = none
    scatter: bool = False  # the markers alone, no line between them (a study's trials over two objectives)


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


def nice_floor(value: float) -> float:
    """The largest of 1, 2, 5 x 10^k at or below value (a log axis' bottom: 50 under errors of 60-95 %, not 10)."""
    exp = math.floor(math.log10(value))
    return max(m * 10 ** exp for m in (1, 2, 5) if m * 10 ** exp <= value + 1e-12)


def nice_ceiling(value: float) -> float:
    """The next of 1, 2, 2.5, 3, 4, 5 x 10^k at or above value (axis tops: 100, 50, 40, 20, 10 ...)."""
    if value <= 0:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 2.5, 3, 4, 5, 10):
        if m * 10 ** exp >= value - 1e-9:
            return m * 10 ** exp
    return 10 ** (exp + 1)  # pragma: no cover


def y_limits(series: Sequence[Series], mode: str = "auto", log: bool = False,
             unit: str = "%") -> tuple[float, float] | None:
    """(bottom, top) of the y axis: ``auto`` fits the data with round ends, ``fig6`` is 0-20 %, ``full`` 0-100 %
    (both for errors); a log axis runs from the round values (1, 2, 5 x 10^k) around the data. None: no data."""
    ys = [y for s in series for y in s.ys if y is not None and math.isfinite(y)]
    if log:
        ys = [y for y in ys if y > 0]
    if not ys:
        return None
    lo, hi = min(ys), max(ys)
    if unit == "%" and mode == "fig6":
        lo, hi = (min(lo, 1.0) if log else 0.0), 20.0
    elif unit == "%" and mode == "full":
        lo, hi = (min(lo, 1.0) if log else 0.0), 100.0
    if log:
        return nice_floor(lo), nice_ceiling(hi)
    if mode != "auto" and unit == "%":
        return lo, hi
    span = hi - lo or abs(hi) or 1.0
    step = nice_ceiling(span / 4) / 2
    bottom = math.floor((lo - 0.05 * span) / step) * step
    top = math.ceil((hi + 0.05 * span) / step) * step
    return (max(0.0, bottom) if lo >= 0 else bottom), top


def draw(series: Sequence[Series], width: int, height: int, *, ymax: float | None = None,  # noqa: C901, PLR0912, PLR0915
         xmax: float | None = None, unit: str = "%", ymin: float | None = None, log: bool = False) -> Text:
    """The whole plot (y axis, curves, x axis) as Text of ``height`` lines and ``width`` cells. The y axis runs
    from ``ymin`` to ``ymax`` (default: fitted to the data, ``y_limits``); ``log``: a logarithmic axis."""
    if width < 12 or height < 4:
        return Text("(too small to plot)", style="dim")
    all_x = [x for s in series for x in s.xs]
    fitted = y_limits(series, "auto", log, unit)
    if not all_x or fitted is None:
        return Text("no points yet", style="dim")
    bottom = ymin if ymin is not None else fitted[0]
    top = ymax if ymax is not None else fitted[1]
    if log:
        bottom = bottom if bottom > 0 else fitted[0]
    if top <= bottom:
        top = bottom + 1.0
    right = (xmax if xmax is not None else max(all_x)) or 1.0

    def frac(y: float) -> float | None:
        """Height of y on the axis, 0 (bottom) .. 1 (top); None outside (or not positive on a log axis)."""
        if log:
            if y <= 0:
                return None
            f = (math.log10(y) - math.log10(bottom)) / (math.log10(top) - math.log10(bottom))
        else:
            f = (y - bottom) / (top - bottom)
        return f if -1e-9 <= f <= 1 + 1e-9 else None

    plot_h = height - 2
    ticks = {r: _tick(_value_at(1 - r / max(plot_h - 1, 1), bottom, top, log), top - bottom) for r in (0, plot_h - 1)}
    middle = _round_middle(bottom, top, log)          # a round value (50, not 54) on the row nearest to it
    row = None if frac(middle) is None else int(round((1 - frac(middle)) * (plot_h - 1)))
    if row is not None and 0 < row < plot_h - 1:
        ticks[row] = _tick(middle, top - bottom)
    ticks[0] += unit
    label_w = max(len(t) for t in ticks.values())
    end_w = max([len(s.end_label) for s in series if s.end_label] or [0])
    end_w = end_w + 1 if end_w and width - label_w - 1 - end_w >= 10 else 0
    plot_w = width - label_w - 1 - end_w
    canvas = Canvas(plot_w, plot_h)
    px_w, px_h = plot_w * 2, plot_h * 4
    ends: dict[int, tuple[int, int]] = {}
    marks: dict[tuple[int, int], tuple[str, str]] = {}      # (row, cell) -> (marker, colour)
    for idx, s in enumerate(series):
        prev = None
        for px, y in enumerate(column_means(s.xs, s.ys, 0.0, right, px_w) if not s.scatter else ()):
            f = None if y is None else frac(y)
            if f is None:
                prev = None
                continue
            py = int(round((1 - f) * (px_h - 1)))
            if s.dotted or s.sparse:
                if px % (3 if s.sparse else 2) == 0:
                    canvas.dot(px, py, idx)
            else:
                lo, hi = (py, py) if prev is None else (min(prev, py), max(prev, py))
                for yy in range(lo, hi + 1):
                    canvas.dot(px, yy, idx)
            prev = py
            ends[idx] = (px // 2, py // 4)
        for x, y in zip(s.xs, s.ys) if s.marker else ():
            f = None if y is None or not math.isfinite(y) else frac(y)
            if f is not None and 0 <= x <= right:
                px = int(round(x / right * (px_w - 1)))
                marks[(int(round((1 - f) * (px_h - 1))) // 4, px // 2)] = (s.marker, s.color)
    rows = canvas.chars()
    end_marks: dict[int, tuple[str, str]] = {}
    if end_w:
        for idx, (_cx, cy) in sorted(ends.items(), key=lambda item: item[1][1]):
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
        _append_row(out, rows[r], canvas.owner[r], series, {c: m for (row, c), m in marks.items() if row == r})
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
    for frac_x in (0.0, 0.5, 1.0):
        label = count(right * frac_x)
        pos = int(round(frac_x * plot_w))
        pos = min(max(0, pos - len(label) // 2), plot_w + 1 - len(label))
        for i, ch in enumerate(label):
            axis[pos + i] = ch
    out.append(" " * label_w + "".join(axis) + " " * end_w, style="dim")
    return out


def _append_row(out: Text, line: str, owners: list[int], series: Sequence[Series],
                marks: dict[int, tuple[str, str]]) -> None:
    """One row of the canvas, each run of cells in its series' colour, markers over the dots."""
    start = 0
    while start < len(line):
        if start in marks:
            glyph, color = marks[start]
            out.append(glyph, style=f"bold {color}")
            start += 1
            continue
        who, end = owners[start], start
        while end < len(line) and owners[end] == who and end not in marks:
            end += 1
        out.append(line[start:end], style=series[who].color if who >= 0 else "")
        start = end


def _value_at(f: float, bottom: float, top: float, log: bool) -> float:
    if log:
        return 10 ** (math.log10(bottom) + f * (math.log10(top) - math.log10(bottom)))
    return bottom + f * (top - bottom)


def _round_middle(bottom: float, top: float, log: bool) -> float:
    """A round number near the middle of the axis: one significant digit of the axis' scale (45 on 0-90 -> 50,
    1.25 on 0-2.5 -> 1); on a log axis the nearest 1, 2 or 5 x 10^k to the geometric middle."""
    if log:
        mid = math.sqrt(bottom * top)
        exp = math.floor(math.log10(mid))
        return min((m * 10 ** e for e in (exp, exp + 1) for m in (1, 2, 5)),
                   key=lambda v: abs(math.log10(v) - math.log10(mid)))
    unit = 10 ** math.floor(math.log10((top - bottom) / 2))
    return math.floor((bottom + top) / 2 / unit + 0.5) * unit


def _tick(value: float, span: float) -> str:
    if span >= 10 or value == 0:
        return f"{value:.0f}" if abs(value) >= 1 or value == 0 else f"{value:.2g}"
    return f"{value:.3g}"


class CurvePlot(Widget):
    """A panel of overlaid curves; set ``series`` (and optionally the axis: ``ymin``/``ymax``, ``log``)."""

    DEFAULT_CSS = """
    CurvePlot { height: 1fr; min-height: 6; }
    """

    series: reactive[list[Series]] = reactive(list, always_update=True)
    ymin: reactive[float | None] = reactive(None)
    ymax: reactive[float | None] = reactive(None)
    xmax: reactive[float | None] = reactive(None)
    log: reactive[bool] = reactive(False)

    def __init__(self, title: str = "", *, unit: str = "%", name: str | None = None, id: str | None = None,
                 classes: str | None = None):
        super().__init__(name=name, id=id, classes=classes)
        self.title = title
        self.unit = unit

    def set_axis(self, mode: str, log: bool = False) -> None:
        """The y axis for the current series: ``mode`` one of Y_MODES."""
        limits = y_limits(self.series, mode, log, self.unit)
        self.ymin, self.ymax = limits if limits is not None else (None, None)
        self.log = log

    def render(self) -> Text:
        title_h = 1 if self.title else 0
        text = Text(no_wrap=True, overflow="crop")
        if self.title:
            text.append(self.title[: self.size.width] + "\n", style="bold")
        text.append_text(draw(self.series, self.size.width, self.size.height - title_h, ymin=self.ymin,
                              ymax=self.ymax, xmax=self.xmax, unit=self.unit, log=self.log))
        return text


def legend(series: Sequence[Series]) -> Text:
    """One entry per series: a coloured sample of its line style (and marker) and its label."""
    text = Text()
    for s in series:
        if s.sparse:
            continue
        if text:
            text.append("  ")
        sample = f"{s.marker} " if s.scatter else "⠒⠒ " if s.dotted else (f"━{s.marker}━ " if s.marker else "━━ ")
        text.append(sample, style=s.color)
        text.append(s.label)
    return text


def run_series(label: str, steps: Sequence[dict], epochs: Sequence[dict], color: str,
               end_label: str = "", marker: str = MARKERS[0]) -> list[Series]:
    """A run's training error over iterations (steps.jsonl, dotted) and test error at each epoch end (a solid line
    through the epoch ends, ``marker`` at each)."""
    train = Series(f"{label} train", [r["step"] for r in steps if "step" in r and "err" in r],
                   [r["err"] for r in steps if "step" in r and "err" in r], color=color, dotted=True)
    test_rows = [e for e in epochs if isinstance(e.get("test_err"), (int, float)) and "step" in e]
    test = Series(f"{label} test", [e["step"] for e in test_rows], [e["test_err"] for e in test_rows], color=color,
                  end_label=end_label, marker=marker)
    return [train, test]


def axis_title(what: str, mode: str, log: bool, short: bool = False, narrow: bool = False) -> str:
    """'error % vs iterations · fit to the data · z: 0-20 % (the paper's Fig. 6) · y: log'; ``narrow``: the same
    in short words ('fitted · z: 0-20 % (Fig. 6)', fits 80 columns); ``short``: 'plain networks · 0-20 % (Fig. 6)
    · log' (for half-width panels; the keys are named elsewhere)."""
    if short:
        return f"{what} · {Y_MODE_SHORT[mode]}{' · log' if log else ''}"
    names = Y_MODE_SHORT if narrow else Y_MODE_NAMES
    following = Y_MODES[(Y_MODES.index(mode) + 1) % len(Y_MODES)]
    return (f"{what} · {names[mode]}{' · log' if log else ''} · z: {names[following]} · "
            f"y: {'linear' if log else 'log'}")

"""What one chart redraw costs: ResLab's braille plot (screens/widgets/curve_plot.draw) against plotext, the
library textual-plotext wraps, on the same data (issue 12, point 6: "consider textual-plotext").

The data is what the detail screen of a 164-epoch run shows: two runs, each a training-error series of N points
(steps.jsonl rows) and a test-error series of one point per epoch, drawn into a 96x14 panel. Both sides produce the
finished text of the panel (plotext: ``build()``, the ANSI string textual-plotext turns into a Rich Text).

    python bench/plot_render.py                  # N = 2,000 and 20,000 points per run
    pip install plotext                          # to include plotext; without it only ResLab's side is timed

Prints the median of 20 redraws per side and the ratio plotext / braille, measured in this one run.
"""
from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from screens.widgets.curve_plot import MARKERS, draw, run_series

WIDTH, HEIGHT, REPEAT = 96, 14, 20


def data(n: int, epochs: int = 164, shift: float = 0.0):
    steps = [{"step": i * 10, "err": 8 + shift + 80 * math.exp(-i / (n / 6)) + (i % 7) * 0.3} for i in range(n)]
    per_epoch = n * 10 // epochs
    ends = [{"epoch": e, "step": e * per_epoch, "test_err": 9 + shift + 70 * math.exp(-e / 25)}
            for e in range(1, epochs + 1)]
    return steps, ends


def median_s(fn) -> float:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def braille(runs) -> None:
    series = []
    for i, (steps, ends) in enumerate(runs):
        series += run_series(f"run{i}", steps, ends, "#ffffff", marker=MARKERS[i])
    draw(series, WIDTH, HEIGHT)


def plotext_build(plt, runs) -> None:
    plt.clear_figure()
    plt.plotsize(WIDTH, HEIGHT)
    for i, (steps, ends) in enumerate(runs):
        plt.plot([r["step"] for r in steps], [r["err"] for r in steps], marker="braille", label=f"run{i} train")
        plt.plot([e["step"] for e in ends], [e["test_err"] for e in ends], marker=MARKERS[i], label=f"run{i} test")
    plt.build()


def main() -> None:
    try:
        import plotext as plt
    except ImportError:
        plt = None
        print("plotext is not installed: timing ResLab's plot only (pip install plotext to compare)")
    for n in (2_000, 20_000):
        runs = [data(n), data(n, shift=3.0)]
        ours = median_s(lambda runs=runs: braille(runs))
        line = f"{n:>6} points/run  braille {ours * 1000:7.1f} ms"
        if plt is not None:
            theirs = median_s(lambda runs=runs: plotext_build(plt, runs))
            line += f"  plotext {theirs * 1000:7.1f} ms  ratio plotext/braille {theirs / ours:5.1f}x"
        print(line)


if __name__ == "__main__":
    main()

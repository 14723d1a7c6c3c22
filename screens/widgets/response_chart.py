"""Layer responses (He et al. 2016, Fig. 7) as terminal bar charts: the std of each 3x3 layer's response by layer
index and sorted by magnitude, bars from zero (eighth-block characters, 8 levels per row)."""
from __future__ import annotations

import math

from rich.text import Text

_BLOCKS = " ▁▂▃▄▅▆▇█"


def bars(values: list[float], width: int, rows: int = 4, top: float | None = None) -> list[str]:
    """``rows`` lines of vertical bars from 0 to ``top`` (default: the largest value), one to three columns per value;
    with more values than ``width`` columns, neighbours are averaged."""
    if not values or width < 1:
        return []
    if len(values) > width:
        step = len(values) / width
        values = [sum(chunk) / len(chunk) for chunk in
                  (values[int(i * step): max(int(i * step) + 1, int((i + 1) * step))] for i in range(width))]
    top = top or max(values) or 1.0
    levels = [round(min(v, top) / top * rows * 8) for v in values]
    wide = max(1, min(3, width // len(levels)))          # up to 3 columns a layer when there is room
    return ["".join(_BLOCKS[min(8, max(0, lv - r * 8))] * wide for lv in levels) for r in range(rows - 1, -1, -1)]


def _number(value: object) -> float:
    """A std from layer_responses.json as a float (NaN for anything that is not a number)."""
    try:
        return float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        return math.nan


def response_chart(data: dict, width: int, rows: int = 4) -> Text:
    """Both charts of one run's layer_responses.json, with the scale and the layer count."""
    given = [_number(layer.get("std") if isinstance(layer, dict) else None) for layer in data.get("layers") or []]
    text = Text("layer responses ", style="bold")
    text.append(f"(std of each 3x3 layer's output after BN, before addition and ReLU; {len(given)} layers, "
                f"{data.get('images', '?')} test images, epoch {data.get('epoch', '?')})\n", style="dim")
    stds = [v for v in given if math.isfinite(v)]
    if len(stds) < len(given):       # a checkpoint whose weights are NaN or inf gives such responses: drawn as 0
        text.append(f"{len(given) - len(stds)} of {len(given)} layers have no finite response (NaN or inf: the "
                    f"checkpoint's weights are not finite)\n", style="yellow")
        stds = [v if math.isfinite(v) else 0.0 for v in given] if stds else []
    if not stds:
        return text.append("no layers" if not given else "nothing to draw")
    top = max(stds)
    label_w = 8
    for title, values in (("by index", stds), ("sorted", sorted(stds, reverse=True))):
        lines = bars(values, max(1, width - label_w - 1), rows, top)
        for i, line in enumerate(lines):     # the axis: top value, the chart's name, 0 at the bottom
            head = f"{top:.3g}" if i == 0 else ("0" if i == len(lines) - 1 else (title if i == 1 else ""))
            text.append(f"{head:>{label_w}} ", style="dim")
            text.append(line + "\n", style="cyan")
    text.append(f"{'':>{label_w}} min {min(stds):.3g} · max {top:.3g} · mean {sum(stds) / len(stds):.3g}",
                style="dim")
    return text

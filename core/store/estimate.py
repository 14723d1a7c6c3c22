"""How long runs will take before they are launched: the measured pace of this folder's past runs on the same kind
of device, scaled to each new run's net (core.spec.archs.conv_cost) and length (core.data.plan.planned_steps).

A run's pace is its wall-clock seconds (training, evaluation, checkpoints) per training image seen. The nearest
past runs by convolution cost speak for a new one (the same net when there is one: small nets are not
cost-proportional on a CPU); with no past run on that kind of device there is no estimate, and the caller says so.
No torch and no model building here: the form calls it on every edit.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.data.plan import planned_steps
from core.spec.archs import conv_cost

MIN_STEPS = 20          # a run measured over fewer iterations (start-up dominates) does not set a pace
MIN_SECONDS = 5.0
NEAREST = 5             # the past runs, nearest in cost, whose median pace is taken


@dataclass(frozen=True)
class Estimate:
    seconds: float
    basis: str          # "3 past cpu runs": what the figure rests on


def device_kind(device: str, auto: str = "cpu") -> str:
    """'cuda' for cuda / cuda:N, 'cpu', 'mps'; ``auto`` says what device=auto means on this machine."""
    if device == "auto":
        return auto
    return device.split(":")[0]


def _cost(cfg: Any) -> float:
    return conv_cost(getattr(cfg, "arch", "resnet"), cfg.depth, cfg.width, tuple(getattr(cfg, "widths", ()) or ()))


def _net(cfg: Any) -> tuple:
    return cfg.arch, cfg.depth, cfg.width, tuple(getattr(cfg, "widths", ()) or ()), getattr(cfg, "stem_width", 0)


def _paces(infos: Iterable[Any], kind: str) -> list[tuple[float, Any, float]]:
    """(seconds per training image per unit of cost, config, cost) of each past run on ``kind`` that trained long
    enough to say."""
    out = []
    for info in infos:
        cfg, status = info.config, info.status
        if cfg is None or not status or device_kind(str(status.get("device") or ""), "?") != kind:
            continue
        step, elapsed = info.step, status.get("elapsed_s")
        cost = _cost(cfg)
        if step < MIN_STEPS or not isinstance(elapsed, (int, float)) or elapsed < MIN_SECONDS or cost <= 0:
            continue
        out.append((elapsed / (step * cfg.batch_size) / cost, cfg, cost))
    return out


def estimate(configs: list[Any], infos: Iterable[Any], auto_kind: str = "cpu") -> Estimate | None:
    """The wall-clock time of training ``configs`` one after another, or None when no past run on their kind of
    device has trained long enough to measure a pace."""
    by_kind: dict[str, list] = {}
    infos = list(infos)
    total, used = 0.0, set()
    for cfg in configs:
        kind = device_kind(cfg.device, auto_kind)
        if kind not in by_kind:
            by_kind[kind] = _paces(infos, kind)
        paces = by_kind[kind]
        cost = _cost(cfg)
        if not paces or cost <= 0:
            return None
        same = [p for p in paces if _net(p[1]) == _net(cfg)]
        near = same or sorted(paces, key=lambda p: abs(math.log(p[2] / cost)))[:NEAREST]
        pace = statistics.median(p[0] for p in near)
        used.update(id(p) for p in near)
        total += planned_steps(cfg)[1] * cfg.batch_size * cost * pace
    kinds = "/".join(sorted({device_kind(c.device, auto_kind) for c in configs}))
    return Estimate(total, f"pace of {len(used)} past {kinds} run{'s' if len(used) != 1 else ''}")

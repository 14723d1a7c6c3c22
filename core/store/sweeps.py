"""A sweep's plan: every run a `train --sweep` launch means to train, recorded before the first run is made.

``train`` with several runs writes ``<runs>/.sweeps/NAME.json`` (atomically: the plan is whole or absent) before it
creates a run folder, then creates every run at once as ``queued`` and trains them one after another. A kill -9 (the
OOM killer, a power cut) at any moment therefore leaves a sweep whose every run is on disk, or at least in its plan:
``sweep_progress`` says what is done and what is not, and ``resume --sweep NAME`` (cli/sweep.py) creates what the plan
holds and the folder lacks and trains every run that has not finished. The folder is hidden: it is never read as a
run (no run id starts with a dot).

Plan entries are ``{"config": RunConfig as a dict, "run": run id or null}``; an entry whose run id was not recorded
yet (a kill between a run's creation and the plan's update) is matched to the sweep's run with the same config.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.spec.config import ConfigError, RunConfig
from core.store.info import RunInfo
from core.store.reader import DamagedFileError, short
from core.store.rules import ACTIVE
from core.util.files import atomic_write_json

PLAN_DIR = ".sweeps"
MAX_PLAN_BYTES = 32 << 20        # 1,000 runs (grid.MAX_RUNS) of a few kB each, several launches of one name


def plan_path(root: Path, name: str) -> Path:
    return Path(root) / PLAN_DIR / f"{name}.json"


def read_plan(root: Path, name: str) -> list[dict[str, Any]]:
    """The sweep's plan entries ([] when it has none: a sweep made before plans, or by `queue add`). Raises
    DamagedFileError when the file is not what ResLab writes."""
    path = plan_path(root, name)
    if not path.exists():
        return []
    from core.util.files import read_bytes

    try:
        obj = json.loads(read_bytes(path, MAX_PLAN_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DamagedFileError(f"{PLAN_DIR}/{path.name} is unreadable ({exc})") from None
    entries = obj.get("runs") if isinstance(obj, dict) else None
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("config"), dict) and (e.get("run") is None or
                                                                        isinstance(e.get("run"), str))
            for e in entries):
        raise DamagedFileError(f"{PLAN_DIR}/{path.name} holds {short(obj)}, not a sweep plan")
    return entries


def _write(root: Path, name: str, entries: list[dict[str, Any]]) -> None:
    path = plan_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"sweep": name, "runs": entries})


def add_to_plan(root: Path, name: str, configs: Sequence[RunConfig]) -> int:
    """Append ``configs`` (as they will be created: data folder fixed) to the sweep's plan; returns the index of the
    first. A later launch with the same --sweep-name adds to the sweep, as its runs join it."""
    try:
        entries = read_plan(root, name)
    except DamagedFileError:
        entries = []            # a damaged plan is replaced by what is known now: the runs on disk stay the sweep's
    first = len(entries)
    _write(root, name, entries + [{"config": c.to_dict(), "run": None} for c in configs])
    return first


def record_runs(root: Path, name: str, ids: dict[int, str]) -> None:
    """Write the run ids of plan entries (index -> id) once their folders exist."""
    entries = read_plan(root, name)
    for i, run_id in ids.items():
        if 0 <= i < len(entries):
            entries[i]["run"] = run_id
    _write(root, name, entries)


@dataclass
class PlanItem:
    index: int
    config: RunConfig | None          # None: the plan's copy is unreadable (the run, when it exists, has its own)
    info: RunInfo | None              # None: planned, but its folder was never made (a kill -9 at the launch)


@dataclass
class SweepProgress:
    """Where a sweep stands: its planned runs, each with its folder's info when it has one."""

    name: str
    items: list[PlanItem] = field(default_factory=list)
    planned: bool = False             # False: no plan file; the runs on disk are the whole sweep as far as known

    def count(self, *states: str) -> int:
        return sum(1 for it in self.items if it.info is not None and it.info.state in states)

    @property
    def missing(self) -> int:
        return sum(1 for it in self.items if it.info is None)

    @property
    def running(self) -> bool:
        return self.count(*ACTIVE) > 0

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.count("finished") == len(self.items)

    @property
    def incomplete(self) -> bool:
        """Left unfinished (not merely in progress): runs not finished and no run of it training now."""
        return not self.complete and not self.running and (self.missing > 0 or self.count(
            "queued", "stopped", "crashed") > 0)

    def text(self) -> str:
        """'sweep sw: 2 of 4 runs finished; not started: 1 queued, 1 never created; stopped 0 ...'."""
        parts = [f"{self.count('finished')} of {len(self.items)} runs finished"]
        for state in ("running", "paused", "queued", "stopped", "crashed", "failed", "out-of-memory", "diverged",
                      "damaged"):
            if n := self.count(state):
                parts.append(f"{n} {'not started (queued)' if state == 'queued' else state}")
        if self.missing:
            parts.append(f"{self.missing} planned but never created")
        return f"sweep {self.name}: " + ", ".join(parts)


def sweep_progress(root: Path, name: str, infos: Sequence[RunInfo]) -> SweepProgress:
    """The sweep's plan matched with its runs (``infos``: the runs folder's list). Without a plan (or with a damaged
    one) the sweep is the runs that name it."""
    mine = [i for i in infos if i.config is not None and i.config.sweep_name == name]
    try:
        entries = read_plan(root, name)
    except DamagedFileError:
        entries = []
    if not entries:
        return SweepProgress(name, [PlanItem(k, i.config, i) for k, i in enumerate(mine)])
    by_id = {i.id: i for i in infos}
    taken = {e["run"] for e in entries if e.get("run") in by_id}
    items = []
    for k, entry in enumerate(entries):
        cfg = _config(entry["config"])
        info = by_id.get(entry.get("run") or "")
        if info is None and cfg is not None:       # its id never recorded: the sweep's run with this config
            info = next((i for i in mine if i.id not in taken and i.config == cfg), None)
            if info is not None:
                taken.add(info.id)
        items.append(PlanItem(k, cfg, info))
    extra = [i for i in mine if i.id not in taken]     # runs that joined the sweep otherwise (`queue add`, the form)
    items += [PlanItem(len(items) + n, i.config, i) for n, i in enumerate(extra)]
    return SweepProgress(name, items, planned=True)


def _config(data: dict) -> RunConfig | None:
    try:
        return RunConfig.from_dict(data, strict=False)
    except (ConfigError, TypeError, ValueError):
        return None


def incomplete_notes(infos: Sequence[RunInfo]) -> list[str]:
    """A report's note per sweep among ``infos`` that a kill, a crash or a stop left unfinished: its numbers cover
    only part of what it planned, and the command that finishes it."""
    if not infos:
        return []
    root = infos[0].path.parent
    names = sorted({i.config.sweep_name for i in infos if i.config is not None and i.config.sweep_name})
    notes = []
    for name in names:
        progress = sweep_progress(root, name, infos)
        if progress.incomplete:
            notes.append(f"{progress.text()}: the sweep is incomplete (finish it with `resume --sweep {name}`, then "
                         f"report again)")
    return notes

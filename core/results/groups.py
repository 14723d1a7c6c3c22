"""Seed groups: runs that differ only in their seed, summarised the way the paper reports them.

He et al. 2016 (Table 6) give ResNet-110 as "6.43 (6.61 ± 0.16)": the best of 5 runs and their mean ± standard
deviation. A ``RunGroup`` holds such runs and gives n, best, mean and the sample standard deviation (n - 1 in the
denominator) of their final test errors, and their mean curves with a min-max band.

Settings that never change what a run learns (its name, folders, logging interval, device and speed options) do
not split a group; everything else does. ``select_runs`` turns what a user asked for into runs fit for one table,
or a ``ReportError`` that says what is wrong (no runs, no finished epoch).
"""
from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields

from core.spec.config import RunConfig
from core.store.runs import ACTIVE, Run, RunInfo
from core.util.errors import ReportError
from core.util.formatting import model_name

# Fields that do not change what a run learns: runs differing only in these (and the seed) form one group.
NOT_LEARNING = ("name", "sweep_name", "data_dir", "download", "log_every", "device", "channels_last", "compile",
                "on_oom", "deterministic", "tensorboard")
KINDS = ("none", "A", "B")                       # table columns and figure panels, in the paper's order
KIND_TITLES = {"none": "plain", "A": "ResNet A", "B": "ResNet B"}


DATA_KEYS = ("dataset", "train_images", "test_images", "val_images", "fingerprint")   # core/data/identity.py
DATASET_TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "synthetic": "synthetic data"}
X_AXES = ("auto", "epoch", "iter", "time")      # what the curves are drawn against


_GROUP_FIELDS = tuple(f.name for f in fields(RunConfig) if f.name not in ("seed", *NOT_LEARNING))


def group_id(cfg: RunConfig) -> tuple:
    """``group_key`` as a tuple of the same settings: equal for the same group, ten times cheaper to make (a table's
    10,000 runs took 0.9 s with the JSON text)."""
    return tuple(getattr(cfg, name) for name in _GROUP_FIELDS)


def run_group(info: RunInfo) -> tuple | None:
    """The run's ``group_id`` (None without a config), kept with the RunInfo (``memo``)."""
    if info.config is None:
        return None
    kept = info.memo.get("group")
    if kept is None:
        kept = info.memo["group"] = group_id(info.config)
    return kept


def group_key(cfg: RunConfig) -> str:
    """The settings that define a group (``_GROUP_FIELDS``: everything but the seed and the fields in
    ``NOT_LEARNING``) as JSON text: ``group_id`` where an order of groups is wanted."""
    return json.dumps(dict(zip(_GROUP_FIELDS, group_id(cfg))), sort_keys=True)


def data_identity(info: RunInfo) -> dict:
    """What a run trained on: the identity its trainer recorded at start (status.json "data": data set, image
    counts, a fingerprint of the images), or for a run from before that, its data set and data folder."""
    recorded = info.status.get("data") if isinstance(info.status, dict) else None
    if isinstance(recorded, dict) and recorded.get("fingerprint"):
        return {k: recorded.get(k) for k in DATA_KEYS}
    cfg = info.config
    return {"dataset": cfg.dataset, "data_dir": "" if cfg.dataset == "synthetic" else cfg.data_dir,
            "max_train_images": cfg.max_train_images, "max_test_images": cfg.max_test_images}


def data_text(identity: dict) -> str:
    """'CIFAR-10, 500 training images, 100 test images' (or the data folder where no counts were recorded)."""
    title = DATASET_TITLES.get(identity.get("dataset"), str(identity.get("dataset")))
    if identity.get("train_images") is None:
        return title + (f" from {identity['data_dir']}" if identity.get("data_dir") else "")
    text = f"{title}, {identity['train_images']:,} training images, {identity['test_images']:,} test images"
    return text + (f", {identity['val_images']:,} held out" if identity.get("val_images") else "")


def is_partial(info: RunInfo) -> bool:
    """A run whose numbers are not final: not finished, or fewer epochs done than planned."""
    total = info.total_epochs
    return info.state != "finished" or (total is not None and info.epochs_done < total)


@dataclass
class Band:
    """A group's mean curve over iterations and the min-max band of its runs (n runs at every point)."""

    xs: list[float]
    mean: list[float]
    lo: list[float]
    hi: list[float]
    n: int


@dataclass
class RunGroup:
    """Runs of the same settings but their seeds (``runs`` ordered by seed)."""

    config: RunConfig                      # the first run's config: the group's settings (its seed aside)
    runs: list[RunInfo] = field(default_factory=list)
    data: dict = field(default_factory=dict)   # what every run of it trained on (data_identity)

    # -- the paper's figures ----------------------------------------------------------------------------------------
    def per_seed(self) -> dict[int, list[float]]:
        """Seed -> the final test errors (%) of its runs: two runs of one seed and settings are repeats."""
        out: dict[int, list[float]] = {}
        for i in self.runs:
            if isinstance(i.final_test_err, (int, float)) and i.config is not None:
                out.setdefault(i.config.seed, []).append(float(i.final_test_err))
        return dict(sorted(out.items()))

    @property
    def finals(self) -> list[float]:
        """One final test error (%) per distinct seed (the mean of its repeats), runs without one left out: repeats
        are not seeds, so n, mean and std count seeds."""
        return [statistics.fmean(v) for v in self.per_seed().values()]

    @property
    def n(self) -> int:
        """Distinct seeds with a final error."""
        return len(self.finals)

    @property
    def n_runs(self) -> int:
        """Runs with a final error (more than ``n`` where a seed was repeated)."""
        return sum(len(v) for v in self.per_seed().values())

    @property
    def best(self) -> float | None:
        return min(self.finals) if self.finals else None

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.finals) if self.finals else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (n - 1), as the paper's "mean ± std" over runs; None for a single run."""
        return statistics.stdev(self.finals) if self.n >= 2 else None

    @property
    def partial(self) -> int:
        """How many of the runs are not final (still running, stopped, crashed, failed...)."""
        return sum(1 for i in self.runs if is_partial(i))

    @property
    def seeds(self) -> list[int]:
        return [i.config.seed for i in self.runs if i.config is not None]

    @property
    def kind(self) -> str:
        return self.config.shortcut

    @property
    def depth(self) -> int:
        return self.config.depth

    @property
    def name(self) -> str:
        """'plain-20', 'ResNet-56', 'ResNet-56 B' (option A is the paper's default and goes unsaid), 'PreAct-164 B',
        'WRN-28-10 B d0.3'."""
        c = self.config
        name = model_name(self.depth, self.kind, c.arch, c.width) + (f" {self.kind}" if self.kind not in ("A", "none")
                                                                      else "")
        return name + (f" d{c.dropout:g}" if c.dropout else "")

    def cell(self, digits: int = 2) -> str:
        """'6.43 (6.61 ± 0.16, n=5)' as in the paper; '7.51 (n=1)' for one run; '-' for none."""
        if not self.n:
            return "-"
        f = f"{{:.{digits}f}}"
        runs = f"; {self.n_runs} runs, {self.n} seed{'s' if self.n != 1 else ''}" if self.n_runs > self.n else ""
        if self.n == 1:
            return f"{f.format(self.best)} (n=1{runs})"
        return f"{f.format(self.best)} ({f.format(self.mean)} ± {f.format(self.std)}, n={self.n}{runs})"

    # -- curves ----------------------------------------------------------------------------------------------------
    def curves(self, x: str = "iter", steps: Callable[[RunInfo], list[dict]] | None = None,
               ) -> tuple[Band | None, Band | None]:
        """(training error from steps.jsonl, test error at epoch ends) as mean with min-max band over the runs,
        against ``x``: iterations, epochs or seconds of training (see ``step_to``). ``steps``: a run's steps.jsonl
        rows as already read (the TUI's, read off its event loop); else read here.

        The runs are put on one grid (the union of their points, linear interpolation); past the end of a partial
        run the others go on alone."""
        rows = steps or _read_steps
        train = [_xy(rows(i), "err", step_to(i, x)) for i in self.runs]
        test = [_xy(i.epochs, "test_err", step_to(i, x)) for i in self.runs]
        return band(train), band(test)

    def lr_curve(self, x: str = "iter", steps: Callable[[RunInfo], list[dict]] | None = None) -> Band | None:
        """The learning rate the runs trained at (steps.jsonl), against ``x``: where a schedule drops shows."""
        rows = steps or _read_steps
        return band([_xy(rows(i), "lr", step_to(i, x)) for i in self.runs])


def _read_steps(info: RunInfo) -> list[dict]:
    return Run(info.path).read_steps()


def step_to(info: RunInfo, x: str):
    """A function from iteration to ``x``: 'iter' (itself), 'epoch' (iterations / iterations per epoch) or 'time'
    (seconds of training, interpolated between the ends of the run's epochs)."""
    if x == "iter":
        return lambda step: step
    ends = [(float(r["step"]), float(r.get("seconds") or 0.0)) for r in info.epochs
            if isinstance(r.get("step"), (int, float)) and r.get("step")]
    if x == "epoch":
        ipe = info.status.get("iters_per_epoch") if isinstance(info.status, dict) else None
        if not isinstance(ipe, (int, float)) or ipe <= 0:
            ipe = ends[0][0] / max(1, info.epochs[0].get("epoch", 1)) if ends else 1.0
        return lambda step: step / ipe
    # numpy here, not at the top: the TUI's runs screen imports this module before its first draw (numpy ~0.15 s)
    import numpy as np

    xs, ts = [0.0] + [e[0] for e in ends], list(np.cumsum([0.0] + [e[1] for e in ends]))
    return lambda step: float(np.interp(step, xs, ts)) if len(xs) > 1 else 0.0


def pick_x(groups: Sequence[RunGroup], x: str = "auto") -> str:
    """The x axis for these groups: as asked, or for 'auto' epochs when batch sizes or training sets differ (their
    iterations do not line up) or the runs' lengths are in epochs, else iterations (the paper's recipe)."""
    if x != "auto":
        return x
    sizes = {(g.config.batch_size, g.data.get("train_images"), g.config.max_train_images) for g in groups}
    by_epoch = any(g.config.iterations == 0 for g in groups)
    return "epoch" if len(sizes) > 1 or by_epoch else "iter"


def _xy(rows: Iterable[dict], key: str, to=lambda s: s) -> tuple[list[float], list[float]]:
    pts = [(float(to(r["step"])), float(r[key])) for r in rows
           if isinstance(r.get("step"), (int, float)) and isinstance(r.get(key), (int, float))
           and math.isfinite(r[key])]
    pts.sort()
    return [p[0] for p in pts], [p[1] for p in pts]


def band(curves: Sequence[tuple[Sequence[float], Sequence[float]]]) -> Band | None:
    """Mean, min and max of several (xs, ys) curves on the union of their xs (linear interpolation). Where some
    curves have ended (a partial run), the rest go on alone: each point uses the curves that cover it."""
    curves = [c for c in curves if len(c[0])]
    if not curves:
        return None
    import numpy as np

    xs = sorted({x for c in curves for x in c[0]})
    grid = np.array(xs, dtype=float)
    ys = np.array([np.where((grid >= c[0][0]) & (grid <= c[0][-1]), np.interp(grid, c[0], c[1]), np.nan)
                   for c in curves])
    return Band(xs, np.nanmean(ys, 0).tolist(), np.nanmin(ys, 0).tolist(), np.nanmax(ys, 0).tolist(), len(curves))


# -- grouping and selection --------------------------------------------------------------------------------------------
def group_runs(infos: Iterable[RunInfo]) -> list[RunGroup]:
    """Runs grouped by their settings but the seed, and by the data they trained on (runs on different data never
    pool); groups ordered by kind (plain, A, B), then depth."""
    groups: dict[str, RunGroup] = {}
    for info in infos:
        if info.config is None:
            continue
        data = data_identity(info)
        key = group_key(info.config) + json.dumps(data, sort_keys=True)
        if key not in groups:
            groups[key] = RunGroup(info.config, data=data)
        groups[key].runs.append(info)
    out = list(groups.values())
    for g in out:
        g.runs.sort(key=lambda i: (i.config.seed, i.id))
        g.config = g.runs[0].config
    out.sort(key=lambda g: (KINDS.index(g.kind) if g.kind in KINDS else len(KINDS), g.depth, group_key(g.config)))
    return out


def settings(g: RunGroup) -> dict:
    """A group's settings that define it, its data among them ('data': data_text)."""
    d = {k: v for k, v in g.config.to_dict().items() if k not in ("seed", *NOT_LEARNING)}    # RunConfig's order
    return {**d, "data": data_text(g.data) if g.data else ""}


def variant_labels(groups: Sequence[RunGroup]) -> dict[int, str]:
    """For each group (by id()), the settings besides depth and shortcut that tell it apart from the others
    ('width=64, optimizer=adam'); '' for all when every group shares them."""
    dicts = [settings(g) for g in groups]
    keys = [k for k in (dicts[0] if dicts else {}) if k not in ("depth", "shortcut")
            and any(d.get(k) != dicts[0].get(k) for d in dicts[1:])]
    keys = one_width_key(keys, dicts)
    return {id(g): ", ".join(f"{k}={_short(d[k])}" for k in keys) for g, d in zip(groups, dicts)}


def one_width_key(keys: list[str], dicts: Sequence[dict]) -> list[str]:
    """``keys`` with only one of width and widths where both vary (they always vary together): width while every
    net has the paper's doubling w, 2w, 4w, else widths (30/60/90 says more than 30)."""
    if "width" not in keys or "widths" not in keys:
        return keys
    doubling = all(list(d["widths"]) == [d["width"], 2 * d["width"], 4 * d["width"]] for d in dicts)
    return [k for k in keys if k != ("widths" if doubling else "width")]


def _short(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def select_runs(infos: Sequence[RunInfo], *, named: bool) -> tuple[list[RunInfo], list[str]]:
    """The runs fit for one report, and notes about runs left out.

    ``named``: the user named these runs, so one that cannot be used is an error; otherwise (``--all``) damaged runs
    and runs with no finished epoch are left out with a note. Raises ReportError for no usable runs. Runs of different
    data sets are fine: the report gives each data set its own section (core/results/report.py ``sections``)."""
    if not infos:
        raise ReportError("no runs to report on: name runs (see `runs`) or use --all with a runs folder that has some")
    usable, notes = [], []
    for info in infos:
        problem = ""
        if info.state == "damaged" or info.config is None:
            problem = f"is damaged ({info.damaged or 'unreadable'})"
        elif not info.epochs:
            problem = f"has no finished epoch yet ({info.state})"
        if problem:
            if named:
                raise ReportError(f"run {info.id} {problem}; a report needs at least one finished epoch per run")
            notes.append(f"left out {info.id}: it {problem}")
            continue
        if info.state in ACTIVE:
            notes.append(f"{info.id} is still {info.state}: its numbers are partial")
        elif info.state in ("diverged", "failed", "out-of-memory"):     # not merely unfinished: it cannot go on
            notes.append(f"{info.id} {info.state} ({info.error or 'no reason recorded'}): its numbers are those of "
                         f"its last finished epoch")
        usable.append(info)
    if not usable:
        raise ReportError("no run has a finished epoch yet: nothing to report (" + "; ".join(notes) + ")")
    return usable, notes

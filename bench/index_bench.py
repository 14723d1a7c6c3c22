"""Ten thousand runs: listing a lab's runs folder with the index (core/store/index.py) against reading every folder.

Makes ``--runs`` copies of one finished tiny run (trained here once; checkpoint and curves hard-linked, so 10,000 cost
little disk), then measures in fresh processes, each against the reference of the same command reading every folder
(``RESLAB_INDEX_MIN_RUNS`` set past the folder's size), in one run:

- ``runs`` and ``runs --format json``: cold (no index yet: it is built), then warm;
- the TUI's watcher (in process), as the app's thread reads the folders: the first screen's runs
  (``RunWatcher.poll(budget=FIRST_READ)``), the whole table from the index's rows (``read_cached``), then every folder
  checked (``read``/``apply``), warm index against none;
- a `/` filter over the whole table (core/store/query.py where it exists) and the resident memory of that process;
- the app itself (``App.run_test``, 120x40, warm index): its first draw, the whole table in its RunsTable, every
  folder checked, its idle CPU over 20 s, each key of a `/` filter typed (Pilot's round trip, and the key's work on
  the event loop: filter, table, title), and its resident memory; and the same app on ten of the runs, the
  reference of the same run (Pilot's round trip of a key alone is over 100 ms here).

    python bench/index_bench.py                # 10,000 runs (~2 minutes to make)
    python bench/index_bench.py --runs 2000

Never part of the test suite: timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.store.index import INDEX_FILE, MIN_RUNS_ENV  # noqa: E402
from core.store.settings import read_json  # noqa: E402

LINKED = ("checkpoint.pt", "best.pt", "steps.jsonl", "events.log")


def make(root: Path, n: int) -> None:
    """One real finished run, then ``n - 1`` copies with their own ids and creation times."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "tui_app.py", "train", "--depth", "8", "--width", "4", "--dataset", "synthetic",
                    "--max-train-images", "256", "--max-test-images", "128", "--epochs", "3", "--batch-size", "64",
                    "--device", "cpu", "--precision", "fp32", "--name", "seed", "--runs-dir", str(root)],
                   cwd=REPO, env=env, check=True, capture_output=True)
    (src,) = [p for p in root.iterdir() if p.is_dir()]
    status = read_json(src / "status.json")
    config = json.loads((src / "config.json").read_text())
    for i in range(1, n):
        dst = root / f"{src.name}-{i:05d}"
        dst.mkdir()
        for f in src.iterdir():
            if f.name in LINKED:
                os.link(f, dst / f.name)
            elif f.name == "status.json":
                (dst / f.name).write_text(json.dumps({**status, "created_at": status["created_at"] + i}))
            elif f.name == "config.json":
                (dst / f.name).write_text(json.dumps({**config, "name": f"seed-{i}"}))   # the same settings as
                # the checkpoint (another seed would make every copy a damaged run, its note wrapped in every row)
            elif f.is_file() and f.name != "lock":
                shutil.copy(f, dst / f.name)


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


WATCHER = """
import resource, sys, time
t = time.perf_counter()
from core.store.runs import RunStore
from screens.app import FIRST_READ, READ_BATCH
from screens.watch import RunWatcher
w = RunWatcher(RunStore(sys.argv[1]))
w.poll(budget=FIRST_READ)
first = time.perf_counter() - t
todo = list(w.pending)
w.apply(w.read_cached(todo), verified=False)       # as the app does: the index's rows first, then every folder checked
table = time.perf_counter() - t
for s in range(0, len(todo), READ_BATCH):
    w.apply(w.read(todo[s:s + READ_BATCH]))
checked = time.perf_counter() - t
assert len(w.infos) == len(w._ids) and not w.unverified
infos = w.ordered()
flt = None
try:
    from core.store.query import matches, parse_query
    t = time.perf_counter()
    q = parse_query("seed>=5000 and state=finished resnet")
    n = sum(1 for i in infos if matches(i, q))
    flt = time.perf_counter() - t
except ImportError:
    pass
print(first, table, len(infos), flt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, checked)
"""


APP = """
import asyncio, resource, sys, time
t0 = time.perf_counter()
from screens.app import make_app
from screens.runs import RunsScreen
from screens.widgets.run_table import RunsTable

handled = []                    # each filter key's work on the event loop: the filter, the table, the title
typing = []
_refresh = RunsScreen.refresh_table


def refresh_table(self):
    t = time.perf_counter()
    _refresh(self)
    if typing:
        handled.append(time.perf_counter() - t)


RunsScreen.refresh_table = refresh_table


async def main(root, n):
    app = make_app(runs_dir=root, poll_interval=1.0)
    marks = {}
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.perf_counter() + 300
        while len(marks) < 3 and time.perf_counter() < deadline:
            if "first" not in marks and isinstance(app.screen, RunsScreen) and app.first_drawn:
                marks["first"] = time.perf_counter() - t0
            if "table" not in marks and isinstance(app.screen, RunsScreen) \
                    and app.screen.query_one(RunsTable).row_count >= n:
                marks["table"] = time.perf_counter() - t0
            if "checked" not in marks and len(app.watcher.infos) >= n and not app.watcher.unverified \
                    and not app.watcher.pending:
                marks["checked"] = time.perf_counter() - t0
            await asyncio.sleep(0.02)
        await asyncio.sleep(5)               # torch and the trainer preloaded after the first draw, then idle
        r0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        await asyncio.sleep(20)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        marks["idle"] = 100 * cpu / (time.perf_counter() - w0)
        await pilot.press("slash")
        await pilot.pause()
        typing.append(True)
        keys = []
        for key in "r20 seed>=5000":
            t = time.perf_counter()
            await pilot.press("space" if key == " " else key)
            await pilot.pause()
            keys.append(time.perf_counter() - t)
        marks["key_median"], marks["key_max"] = sorted(keys)[len(keys) // 2], max(keys)
        marks["work_median"], marks["work_max"] = sorted(handled)[len(handled) // 2], max(handled)
    marks["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(" ".join(f"{marks.get(k, float('nan')):.3f}" for k in
                   ("first", "table", "checked", "idle", "key_median", "key_max", "work_median", "work_max", "rss")))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10000)
    ap.add_argument("--keep", default="", help="make (or reuse) the runs folder here")
    args = ap.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="reslab-index-"))
    root = tmp / "runs"
    if not root.is_dir():
        root.mkdir(parents=True)
        t = time.perf_counter()
        make(root, args.runs)
        print(f"made {args.runs} runs in {time.perf_counter() - t:.0f} s", flush=True)
    n = len([p for p in root.iterdir() if p.is_dir()])
    # Python as users run it: compiled modules cached (a sandbox's PYTHONDONTWRITEBYTECODE=1 makes every process
    # compile ~50 modules again, 0.15 s of each figure); the first, untimed, call writes the cache
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", MIN_RUNS_ENV)}
    ref_env = {**base, MIN_RUNS_ENV: str(10**9)}
    env = base
    timed([sys.executable, "tui_app.py", "runs", "--runs-dir", str(root / "nothing-here")], env)
    print(f"{n} runs in {root}; load {os.getloadavg()[0]:.1f}", flush=True)
    for fmt in ([], ["--format", "json"]):
        cmd = [sys.executable, "tui_app.py", "runs", *fmt, "--runs-dir", str(root)]
        for p in root.glob(INDEX_FILE + "*"):
            p.unlink()
        ref = timed(cmd, ref_env)
        cold = timed(cmd, env)
        warm = min(timed(cmd, env) for _ in range(3))
        print(f"runs {' '.join(fmt) or '(table)'}: every folder read {ref:.2f} s; index cold {cold:.2f} s, warm "
              f"{warm:.2f} s ({ref / warm:.1f}x)", flush=True)
    for label, e in (("every folder read", ref_env), ("warm index", env)):
        out = subprocess.run([sys.executable, "-c", WATCHER, str(root)], cwd=REPO, env={**e, "PYTHONPATH": str(REPO)},
                             check=True, capture_output=True, text=True).stdout.split()
        flt = "" if out[3] == "None" else f", a / filter over all rows {float(out[3]) * 1000:.0f} ms"
        print(f"TUI watcher, {label}: first screen {float(out[0]):.2f} s, the whole table ({out[2]} rows) "
              f"{float(out[1]):.2f} s, every folder checked {float(out[5]):.2f} s{flt}, resident "
              f"{float(out[4]):.0f} MB; load {os.getloadavg()[0]:.1f}", flush=True)
    small = tmp / "ten"          # the reference of the same app: ten of the runs (Pilot's own round trip of a key)
    if not small.is_dir():
        small.mkdir()
        for p in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:10]:
            shutil.copytree(p, small / p.name, symlinks=True)
    tens = len([p for p in small.iterdir() if p.is_dir()])
    for folder, count, label in ((small, tens, f"{tens} runs (the reference)"), (root, n, f"{n} runs, warm index")):
        out = subprocess.run([sys.executable, "-c", APP, str(folder), str(count)], cwd=REPO, check=True,
                             capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}).stdout.split()
        first, table, checked, idle, key_median, key_max, work_median, work_max, rss = map(float, out)
        print(f"the app (in process, 120x40), {label}: first draw {first:.2f} s, the whole table in its RunsTable "
              f"{table:.2f} s, every folder checked {checked:.2f} s; idle {idle:.2f}% of a core over 20 s; a / filter "
              f"key through Pilot {key_median * 1000:.0f} ms median, {key_max * 1000:.0f} ms at most, its work on "
              f"the event loop {work_median * 1000:.0f} ms median, {work_max * 1000:.0f} ms at most; resident "
              f"{rss:.0f} MB; load {os.getloadavg()[0]:.1f}", flush=True)
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

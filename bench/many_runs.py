"""A lab's runs folder: how the TUI's watcher copes with thousands of run folders (issue 21, point 10).

Makes ``--runs`` finished run folders (tests/ui/fixtures.write_run: a config, a status, 12 epochs each) in a temp
folder, then measures, in one process:

- first draw: what the app reads before it draws the table (``RunWatcher.poll(budget=FIRST_READ)``), against the
  reference of reading every folder first (what the app did before: ``poll()``), as a ratio;
- the rest: reading the remaining folders as the app's thread does (``read`` + ``apply``);
- idle: the CPU time of one steady poll when nothing changes, as the percentage of a core at the app's 1 s interval,
  against the reference of looking at every folder's four files on every poll (the old watcher). ``--polls``
  should be a multiple of SLICES x DEEP (30) for a fair mean: an ended run's files are looked at on one turn in DEEP.

    python bench/many_runs.py                 # 2,000 runs
    python bench/many_runs.py --runs 500 --polls 30

Never part of the test suite: timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.store.runs import RunStore  # noqa: E402
from screens import watch  # noqa: E402
from screens.app import FIRST_READ, READ_BATCH  # noqa: E402
from tests.ui.fixtures import quick, write_run  # noqa: E402


def make(root: Path, n: int) -> None:
    for i in range(n):
        write_run(root, f"r{i:05d}", quick(depth=20, seed=i % 5), "finished", epochs_done=12,
                  final_test=8 + (i % 7) / 10, order=i)


def steady_cpu(w: watch.RunWatcher, polls: int) -> float:
    """CPU seconds of one poll when nothing changes (mean over ``polls``)."""
    start = time.process_time()
    for _ in range(polls):
        w.poll()
    return (time.process_time() - start) / polls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--polls", type=int, default=60, help="steady polls timed")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        root.mkdir()
        t0 = time.perf_counter()
        make(root, args.runs)
        print(f"made {args.runs} run folders in {time.perf_counter() - t0:.1f} s", flush=True)
        store = RunStore(root)

        ref = watch.RunWatcher(store)
        t0 = time.perf_counter()
        ref.poll()
        all_first = time.perf_counter() - t0

        w = watch.RunWatcher(store)
        t0 = time.perf_counter()
        w.poll(budget=FIRST_READ)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        while w.pending:
            w.apply(w.read(w.pending[:READ_BATCH]))
        rest = time.perf_counter() - t0
        assert len(w.infos) == args.runs, (len(w.infos), args.runs)

        slices, deep = watch.SLICES, watch.DEEP
        cpu = steady_cpu(w, args.polls)
        watch.SLICES = watch.DEEP = 1         # the reference: every folder's files on every poll
        w._root_mtime = None                  # ... and the folder listed every time
        ref_cpu = steady_cpu(_Relisting(w), args.polls)
        watch.SLICES, watch.DEEP = slices, deep
    print(f"first draw after reading {FIRST_READ} of {args.runs} folders: {first:.2f} s; reading all first (the "
          f"reference): {all_first:.2f} s; ratio {all_first / first:.1f}x; the other {args.runs - FIRST_READ} "
          f"follow in {rest:.2f} s off the event loop")
    print(f"idle poll: {cpu * 1000:.1f} ms CPU = {cpu * 100:.2f}% of a core at 1 poll/s; reference (every file of "
          f"every folder, every poll): {ref_cpu * 1000:.1f} ms = {ref_cpu * 100:.2f}%; ratio {ref_cpu / cpu:.1f}x")
    return 0


class _Relisting:
    """The watcher with its folder listed on every poll (the old behaviour), for the reference figure."""

    def __init__(self, w: watch.RunWatcher):
        self.w = w

    def poll(self) -> set[str]:
        self.w._root_mtime = None
        return self.w.poll()


if __name__ == "__main__":
    sys.exit(main())

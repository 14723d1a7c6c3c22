"""Key -> screen drawn, in-process (issue 34, item 11): a run's detail, the new-run form, compare, and back.

The app runs under Textual's Pilot (headless, ``--size`` 100x30) over a folder of ``--runs`` finished runs written by
tests/ui/fixtures.write_run: a quarter of them the paper's length (164 epochs of 391 iterations: 6,400 points in
steps.jsonl), the rest short (12 epochs). Nothing trains. Once the table is drawn and the app's preload is done, each
measure posts the key events (as the terminal driver does) and stops the clock at the first frame the app composes
for the new screen (``App._display``, which the headless driver then drops): the time a person waits, less the
terminal's own write. Then Backspace goes back to the runs table (measured too) and the next round begins.

    python bench/screen_latency.py                    # 40 runs, 100x30, 15 rounds; prints medians, p90, max
    python bench/screen_latency.py --profile detail   # the same, then cProfile of 10 detail openings (top 25)

Timings depend on the machine and its load: the load average is printed before and after. Never part of the tests.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if "--code" in sys.argv:          # measure another checkout's code (main, for a ratio in the same run)
    ROOT = Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
sys.path.insert(0, str(ROOT))

os.environ.setdefault("RESLAB_CONFIG_DIR", tempfile.mkdtemp(prefix="reslab-config-"))   # never the user's settings

from textual import events  # noqa: E402

from screens.app import make_app  # noqa: E402
from tests.ui.fixtures import preset, quick, write_run  # noqa: E402

KEY_CHARS = {"enter": "\r", "backspace": "\x7f", "space": " "}


def make_runs(root: Path, n: int) -> list[str]:
    """``n`` finished runs, newest first in the table: every fourth one of the paper's length."""
    ids = []
    for i in range(n):
        long = i % 4 == 0
        cfg = preset("he2016").with_overrides(depth=20 + 6 * (i % 5)) if long else quick(depth=20 + 6 * (i % 5),
                                                                                         seed=i)
        run_id = f"{'long' if long else 'short'}-{i:02d}"
        write_run(root, run_id, cfg, "finished", epochs_done=cfg.epochs, ipe=391 if long else 50,
                  final_test=7.0 + i % 7, order=i)
        ids.append(run_id)
    return ids


class Frames:
    """The times at which the app composed a frame (wall clock, and the process's CPU time: on a loaded machine the
    wall time is mostly waiting for a core), and of which screen (a hook on ``App._display``)."""

    def __init__(self, app):
        self.seen: list[tuple[tuple[float, float], object]] = []
        original = app._display

        def display(screen, renderable):
            if renderable is not None:
                self.seen.append((clock(), screen))
            return original(screen, renderable)

        app._display = display

    async def first(self, since: tuple[float, float], kind: str, timeout: float = 30.0) -> tuple[float, float]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, screen in self.seen:
                if t[0] >= since[0] and type(screen).__name__ == kind:
                    return t[0] - since[0], t[1] - since[1]
            await asyncio.sleep(0.0005)
        raise TimeoutError(f"no frame of {kind} within {timeout} s")


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def post(app, *keys: str) -> tuple[float, float]:
    t0 = clock()
    for key in keys:
        app.post_message(events.Key(key, KEY_CHARS.get(key, key if len(key) == 1 else None)))
    return t0


async def settle(pilot) -> None:
    await pilot.pause(0.15)


async def settled(app, pilot, runs: int) -> None:
    """Every folder read, the table drawn, the engine preloaded (and frozen out of the collector), the form built."""
    deadline = time.monotonic() + 120
    while not ("core.train.trainer" in sys.modules and app.first_drawn and len(app.watcher.infos) == runs):
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not settle")
        await asyncio.sleep(0.05)
    await pilot.pause(1.5)


async def run_bench(args) -> dict:
    root = Path(tempfile.mkdtemp(prefix="reslab-latency-")) / "runs"
    root.mkdir(parents=True)
    make_runs(root, args.runs)
    app = make_app(runs_dir=root)
    width, height = map(int, args.size.split("x"))
    results: dict[str, list[float]] = {}
    async with app.run_test(size=(width, height)) as pilot:
        await settled(app, pilot, args.runs)
        frames = Frames(app)
        table = app.screen.query_one("RunsTable")
        rows = [row.key.value for row in table.ordered_rows]
        long_row = next(i for i, r in enumerate(rows) if r.startswith("long"))
        short_row = next(i for i, r in enumerate(rows) if r.startswith("short"))

        async def measure(name: str, keys: tuple[str, ...], kind: str, before=None, back: str = "backspace") -> None:
            if before is not None:
                await before()
            t = await frames.first(post(app, *keys), kind)
            results.setdefault(name, []).append(t)
            if args.verbose:
                print(f"{name}: {t[0] * 1000:.1f} ms ({t[1] * 1000:.1f} ms CPU)")
            await settle(pilot)
            t = await frames.first(post(app, back), "RunsScreen")
            results.setdefault(f"back from {name} ({back})", []).append(t)
            await settle(pilot)

        async def cursor(row: int):
            table.move_cursor(row=row, animate=False)
            await settle(pilot)

        measures = {
            "detail": [lambda: measure("detail (164-epoch run)", ("enter",), "DetailScreen", lambda: cursor(long_row)),
                       lambda: measure("detail (12-epoch run)", ("enter",), "DetailScreen", lambda: cursor(short_row))],
            "form": [lambda: measure("form (n)", ("n",), "NewRunScreen", back="escape")],   # backspace edits a field
            "compare": [lambda: marked_two(), lambda: measure("compare (c, 2 runs)", ("c",), "CompareScreen")],
        }

        async def marked_two():
            if not app.marked:
                for row in (long_row, short_row):
                    await cursor(row)
                    post(app, "space")
                await settle(pilot)

        chosen = [args.profile] if args.profile else list(measures)
        profiler = __import__("cProfile").Profile() if args.profile else None
        for _ in range(args.rounds):
            for name in chosen:
                for step in measures[name]:
                    if profiler:
                        profiler.enable()
                    await step()
                    if profiler:
                        profiler.disable()
        if profiler:
            stats = __import__("pstats").Stats(profiler).sort_stats("cumulative")
            stats.print_stats(30)
            if args.callers:
                stats.print_callers(args.callers)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--size", default="100x30")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", choices=("detail", "form", "compare"), default=None)
    parser.add_argument("--verbose", action="store_true", help="print each measure as it is taken")
    parser.add_argument("--callers", metavar="NAME", help="with --profile: who calls the functions matching NAME")
    parser.add_argument("--code", metavar="DIR", help="the checkout whose screens to measure [default: this one]")
    args = parser.parse_args()
    load_before = os.getloadavg()
    results = asyncio.run(run_bench(args))
    load_after = os.getloadavg()
    print(f"{ROOT}: {args.runs} runs at {args.size}, {args.rounds} rounds; load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f} (on {os.cpu_count()} CPUs)")
    summary = {}
    for name, pairs in results.items():
        wall, cpu = sorted(1000 * p[0] for p in pairs), sorted(1000 * p[1] for p in pairs)
        p90 = wall[min(len(wall) - 1, int(round(0.9 * (len(wall) - 1))))]
        summary[name] = {"median_ms": round(statistics.median(wall), 1), "p90_ms": round(p90, 1),
                         "max_ms": round(wall[-1], 1), "cpu_median_ms": round(statistics.median(cpu), 1),
                         "n": len(wall)}
        print(f"  {name:<44} median {statistics.median(wall):7.1f} ms   p90 {p90:7.1f}   max {wall[-1]:7.1f}   "
              f"CPU median {statistics.median(cpu):6.1f} ms")
    print(json.dumps({"runs": args.runs, "size": args.size, "load": [load_before[0], load_after[0]],
                      "results": summary}))


if __name__ == "__main__":
    main()

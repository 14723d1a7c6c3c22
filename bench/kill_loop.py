"""Kill -9 experiments (issue 35): a sweep and a report killed at random moments, again and again, lose nothing.

``sweep``: ``train --sweep seed=1-3`` is killed with SIGKILL at a random moment, then ``resume --sweep`` is started
and killed again, ``--times`` kills in all; a last ``resume --sweep`` runs to its end. Nothing is lost when every run
the sweep planned exists once and finished, and its epochs.jsonl holds epochs 1..N once each.

``report``: ``report --sweep`` is killed at a random moment ``--times`` times into one folder each; nothing is torn
when each folder is either absent or whole (report.md and every file it names are there and non-empty, PNGs end in
IEND) and no hidden staging folder is left once a later report ran.

    python bench/kill_loop.py sweep --times 10
    python bench/kill_loop.py report --times 10

Prints what each kill left and a last line "sweep: 10 kills, nothing lost"; exits 1 when something was. The test
tests/core/test_reliability_round3.py runs each experiment with two kills.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "synthetic", "--depth", "8", "--width", "4", "--max-train-images", "128", "--max-test-images",
        "64", "--batch-size", "32", "--schedule", "constant", "--device", "cpu", "--log-every", "2",
        "--precision", "fp32", "--channels-last", "off"]     # 4 iterations per epoch
SWEEP = "killed"


def reslab(*args: str, runs: Path) -> list[str]:
    return [sys.executable, str(REPO / "tui_app.py"), *args, "--runs-dir", str(runs)]


def env() -> dict:
    return {**{k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}, "PYTHONUNBUFFERED": "1"}


def kill_at_random(argv: list[str], low: float, high: float, rng: random.Random) -> str:
    """Start ``argv``, SIGKILL it after a random delay (or let it end first); what happened, in words."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), cwd=REPO)
    delay = rng.uniform(low, high)
    try:
        proc.wait(timeout=delay)
        return f"ended by itself (exit {proc.returncode}) before {delay:.1f} s"
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"killed after {delay:.1f} s"


def sweep_losses(runs: Path, epochs: int, planned: int) -> list[str]:
    """What a finished sweep lost: runs missing, extra or unfinished, epochs missing or repeated."""
    from core.store.runs import RunStore

    mine = [i for i in RunStore(runs).list() if i.config is not None and i.config.sweep_name == SWEEP]
    lost = [] if len(mine) == planned else [f"{len(mine)} runs on disk, {planned} planned"]
    for info in mine:
        got = [row["epoch"] for row in info.epochs]
        if info.state != "finished" or got != list(range(1, epochs + 1)):
            lost.append(f"{info.id} is {info.state} with epochs {got}")
    if sorted(i.config.seed for i in mine) != list(range(1, planned + 1)):
        lost.append(f"seeds {sorted(i.config.seed for i in mine)}")
    return lost


def sweep_experiment(runs: Path, times: int, rng: random.Random, epochs: int = 2, seeds: int = 3,
                     window: tuple[float, float] = (1.0, 9.0)) -> list[str]:
    """``times`` kills of a sweep (of `train`, then of `resume --sweep` once the plan exists), then a whole run of the
    same; returns what was lost ([]: nothing)."""
    train = reslab("train", *TINY, "--epochs", str(epochs), "--sweep", f"seed=1-{seeds}", "--sweep-name", SWEEP,
                   runs=runs)
    finish = reslab("resume", "--sweep", SWEEP, runs=runs)
    plan = runs / ".sweeps" / f"{SWEEP}.json"
    for k in range(times):          # `train` until it has made the plan (a kill before that leaves nothing at all)
        print(f"kill {k + 1}: {kill_at_random(finish if plan.exists() else train, *window, rng)}", flush=True)
    last = subprocess.run(finish if plan.exists() else train, capture_output=True, text=True, env=env(), cwd=REPO,
                          timeout=600)
    if last.returncode != 0:
        return [f"the last command exit {last.returncode}: {last.stdout[-500:]} {last.stderr[-500:]}"]
    return sweep_losses(runs, epochs, seeds)


def torn_files(folder: Path) -> list[str]:
    """A report folder is whole (report.md and every file, non-empty, PNGs ending in IEND) or absent."""
    if not folder.exists():
        return []
    md = folder / "report.md"
    if not md.is_file() or md.stat().st_size == 0:
        return [f"{folder.name}: no report.md ({sorted(p.name for p in folder.iterdir())})"]
    torn = []
    for path in folder.rglob("*"):
        if path.is_file() and (path.stat().st_size == 0 or path.suffix == ".png" and
                               not path.read_bytes().endswith(b"IEND\xaeB`\x82")):
            torn.append(f"{folder.name}/{path.relative_to(folder)} is torn")
    return torn


def report_experiment(runs: Path, out: Path, times: int, rng: random.Random,
                      window: tuple[float, float] = (1.0, 6.0)) -> list[str]:
    """``times`` reports of sweep SWEEP (finished) killed at random moments, each into its own folder; then one whole
    report; returns what was torn or left behind ([]: nothing)."""
    torn, kills = [], 0
    for k in range(3 * times):              # a report that ended before its kill does not count as one
        if kills == times:
            break
        folder = out / f"killed-{k}"
        what = kill_at_random(reslab("report", "--sweep", SWEEP, "--out", str(folder), runs=runs), *window, rng)
        kills += what.startswith("killed")
        torn += torn_files(folder)
        print(f"try {k + 1}: {what}; {'whole' if folder.exists() else 'absent'}", flush=True)
    if kills < times:
        torn.append(f"only {kills} of {times} reports were killed before they ended: narrow the window")
    whole = subprocess.run(reslab("report", "--sweep", SWEEP, "--out", str(out / "whole"), runs=runs),
                           capture_output=True, text=True, env=env(), cwd=REPO, timeout=600)
    if whole.returncode != 0:
        return torn + [f"report exit {whole.returncode}: {whole.stderr[-500:]}"]
    left = [p.name for p in out.iterdir() if p.name.startswith(".")]
    return torn + torn_files(out / "whole") + ([f"staging left behind: {left}"] if left else [])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", choices=("sweep", "report"))
    p.add_argument("--times", type=int, default=10)
    p.add_argument("--seed", type=int, default=int(time.time()))
    args = p.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed}; load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        if args.experiment == "sweep":
            lost = sweep_experiment(runs, args.times, rng)
        else:
            lost = sweep_experiment(runs, 0, rng)
            lost = lost or report_experiment(runs, Path(tmp) / "reports", args.times, rng)
    print(json.dumps(lost, indent=1) if lost else
          f"{args.experiment}: {args.times} kills, nothing {'lost' if args.experiment == 'sweep' else 'torn'}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())

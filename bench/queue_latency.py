"""The queue's figures: how many runs train at once on the scheduler's slots, and how long a freed slot stays empty.

Queues ``--runs`` identical runs in a fresh runs folder, serves it with a real scheduler process
(``tui_app.py scheduler --foreground --devices ... --per-device ...``) and reads everything back from the run
folders once the scheduler has left (it leaves ``--idle-exit`` seconds after the last run):

* concurrency: the most runs whose [started_at, finished_at] (the trainers' own status times) overlap, and the
  sum of the runs' durations over the wall time (the reference: one slot would give 1.0);
* slot hand-over: for consecutive runs on one slot, from the trainer of the first writing ``finished`` to
  (a) the scheduler starting the next trainer process (queue.json started_at) and (b) that trainer running
  (its status started_at: python, torch and the data loaded);
* wall time from the first start to the last finish (compare ``--per-device 1`` and ``4`` on one GPU).

    python bench/queue_latency.py                                   # 4 tiny CPU runs on cpu,cpu (~30 s)
    python bench/queue_latency.py --devices cuda:0 --per-device 1 --depth 20 --epochs 3 --runs 4 --dataset cifar10
    python bench/queue_latency.py --devices cuda:0 --per-device 4 --depth 20 --epochs 3 --runs 4 --dataset cifar10

Never part of the test suite: timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.serve import queue as Q  # noqa: E402
from core.spec.config import RunConfig  # noqa: E402
from core.store.runs import RunStore  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default="cpu,cpu")
    p.add_argument("--per-device", type=int, default=1)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--width", type=int, default=4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dataset", default="synthetic", help="synthetic (no data needed) or cifar10 (--data-dir)")
    p.add_argument("--data-dir", default="")
    p.add_argument("--train-images", type=int, default=512, help="0 = all (with cifar10)")
    p.add_argument("--runs-dir", default="", help="keep the runs here [default: a temporary folder]")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()

    root = Path(args.runs_dir or tempfile.mkdtemp(prefix="queue-bench-"))
    device = "cpu" if args.devices.replace(",", "").replace("cpu", "") == "" else "auto"
    cfg = RunConfig(depth=args.depth, width=args.width, dataset=args.dataset, data_dir=args.data_dir,
                    download=False, max_train_images=args.train_images, max_test_images=min(args.train_images, 1000),
                    epochs=args.epochs, iterations=0, milestones=(), schedule="cosine", lr=0.05, device=device,
                    channels_last="off", precision="auto", log_every=10)
    store = RunStore(root)
    runs = Q.enqueue(store, [cfg.with_overrides(name=f"bench-{i + 1}", seed=i + 1) for i in range(args.runs)])
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(REPO / "tui_app.py"), "scheduler", "--foreground", "--devices",
                           args.devices, "--per-device", str(args.per_device), "--idle-exit", "1", "--runs-dir",
                           str(root)], capture_output=True, text=True)
    if proc.returncode:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        return 1
    st = [run.read_status() for run in runs]
    qs = [Q.read_entry(run) for run in runs]
    if any(s.get("state") != "finished" for s in st):
        print("not every run finished:", [(r.id, s.get("state"), s.get("error")) for r, s in zip(runs, st)])
        return 1
    spans = [(s["started_at"], s["finished_at"]) for s in st]
    at_once = max(sum(a <= t < b for a, b in spans) for t, _ in spans)
    wall = max(b for _, b in spans) - min(a for a, _ in spans)
    busy = sum(b - a for a, b in spans)
    spawn_gaps, run_gaps = [], []
    for slot in sorted({q["slot"] for q in qs}):
        on = sorted((q["started_at"], s) for q, s in zip(qs, st) if q["slot"] == slot)
        for (_, prev), (spawned, nxt) in zip(on, on[1:]):
            spawn_gaps.append(spawned - prev["finished_at"])
            run_gaps.append(nxt["started_at"] - prev["finished_at"])
    figures = {"devices": args.devices, "per_device": args.per_device, "runs": args.runs, "depth": args.depth,
               "epochs": args.epochs, "max_concurrent": at_once, "wall_s": round(wall, 2),
               "busy_over_wall": round(busy / wall, 2),
               "per_run_s": round(statistics.median(b - a for a, b in spans), 2),
               "slot_free_to_spawn_s": round(statistics.median(spawn_gaps), 3) if spawn_gaps else None,
               "slot_free_to_training_s": round(statistics.median(run_gaps), 2) if run_gaps else None,
               "slot_free_to_training_max_s": round(max(run_gaps), 2) if run_gaps else None,
               "total_s": round(time.time() - t0, 1)}
    print(f"{args.runs} runs of ResNet-{args.depth} w{args.width}, {args.epochs} epochs, on {args.devices} "
          f"x{args.per_device}: at most {at_once} at once; runs' busy time / wall time = {figures['busy_over_wall']}x "
          f"(1 slot = 1.0x); wall {wall:.1f} s (median run {figures['per_run_s']} s)")
    if spawn_gaps:
        print(f"slot freed -> next trainer process started: median {figures['slot_free_to_spawn_s']} s; "
              f"-> that trainer training: median {figures['slot_free_to_training_s']} s "
              f"(max {figures['slot_free_to_training_max_s']} s; python + torch import + data)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

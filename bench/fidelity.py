"""Fidelity: test error per epoch of the engine against the usual PyTorch CIFAR loop, same model, data and seeds.

The engine is ``train`` itself (``core.train.trainer.train_run`` on a RunConfig of the he2016 recipe, shortened to
``--epochs`` with lr /10 at ``--milestones``). The usual loop is the one most CIFAR code is: torchvision's
``CIFAR10`` with ``RandomCrop(32, 4)``, ``RandomHorizontalFlip``, ``ToTensor``, ``Normalize`` (per-channel
mean/std), ``DataLoader(shuffle=True)``, ``torch.optim.SGD``, ``MultiStepLR``, and the engine's own
``cifar_resnet`` initialised with ``kaiming_normal_`` in its default fan-in mode (akamaster/pytorch_resnet_cifar10).
Both sides see the same images (the folder of ``--data-dir``, else ../shared's CIFAR-10 subset written to a temp
folder) and the same seeds; each prints its test error after every epoch, then the paired difference (engine minus
loop) per epoch: mean ± sample std over the seeds.

One thing at a time can be switched on either side to find what makes a difference:
``--engine-normalize channel`` (the engine's per-channel mean/std instead of the paper's per-pixel mean),
``--init he-fan-in`` (the run setting ``init``: the engine's convolutions drawn fan-in instead of fan-out, or
torch-default), ``--loop-normalize pixel``, ``--loop-init he-fan-out``. ``--init`` with two values trains the engine
with each, paired by seed (first minus second), the loop with ``--skip-loop`` left out: what the paper's init costs.

    python bench/fidelity.py --train-per-class 1000 --test-per-class 200 --epochs 3 --milestones 2 --seeds 1 2 3
    python bench/fidelity.py --data-dir DATA --epochs 3 --milestones 2 --device cuda      # the full set, on a GPU
    # the paper's fan-out init against fan-in, per-channel normalisation, 5 seeds on the full set (issue 28):
    python bench/fidelity.py --data-dir DATA --epochs 3 --milestones 2 --seeds 1 2 3 4 5 --device cuda \
        --engine-normalize channel --init he-fan-out he-fan-in --skip-loop

Never part of the test suite: it trains for minutes.
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

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import TOOL, reference_dataset  # noqa: E402

from core.spec.config import INITS  # noqa: E402
from core.spec.presets import preset  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from core.train import models  # noqa: E402
from core.train.trainer import train_run  # noqa: E402

PIXEL = "pixel"


def engine_errors(args, root: Path, seed: int, work: Path, init: str) -> list[float]:
    cfg = preset("he2016", depth=args.depth, shortcut="A", data_dir=str(root), epochs=args.epochs, iterations=0,
                 milestones=tuple(args.milestones), milestone_unit="epoch", seed=seed, device=args.device,
                 normalize=args.engine_normalize, channels_last="off", init=init, name=f"fid-{init}-s{seed}")
    run, state = train_run(RunStore(work), cfg)
    if state != "finished":
        sys.exit(f"the engine's run ended {state}: {run.read_status().get('error')}")
    return [row["test_err"] for row in run.read_epochs()]


def loop_errors(args, root: Path, seed: int) -> list[float]:
    """The usual loop, written as most CIFAR scripts are."""
    from torch.utils.data import DataLoader

    torch.manual_seed(seed)
    device = torch.device("cuda" if args.device.startswith("cuda") else "cpu")
    train = reference_dataset(root, train=True, normalize=args.loop_normalize)
    test = reference_dataset(root, train=False, normalize=args.loop_normalize, augment=False)
    train_loader = DataLoader(train, batch_size=128, shuffle=True, num_workers=args.workers)
    test_loader = DataLoader(test, batch_size=500, shuffle=False, num_workers=args.workers)
    model = models.cifar_resnet(args.depth, "A", 16, 10, init=args.loop_init).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(args.milestones), gamma=0.1)
    errors = []
    for _ in range(args.epochs):
        model.train()
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        wrong = total = 0
        with torch.no_grad():
            for x, y in test_loader:
                out = model(x.to(device))
                wrong += int((out.argmax(1).cpu() != y).sum())
                total += len(y)
        errors.append(100.0 * wrong / total)
    return errors


def prepare(args, tmp: Path) -> Path:
    if args.data_dir:
        return Path(args.data_dir).resolve()
    cmd = [sys.executable, str(TOOL), str(tmp)]
    if args.train_per_class:
        cmd += ["--train-per-class", str(args.train_per_class), "--test-per-class", str(args.test_per_class)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return tmp


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.2f} ± {sd:.2f}"


def train_seed(args, root: Path, seed: int, work: Path, inits: list[str]) -> dict:
    """One seed: the engine under each init, then the loop (unless skipped); the errors per epoch and the seconds."""
    row: dict = {"seed": seed, "engines": {}, "engines_s": {}}
    for init in inits:
        t0 = time.perf_counter()
        row["engines"][init] = engine_errors(args, root, seed, work, init)
        row["engines_s"][init] = time.perf_counter() - t0
    row["engine"], row["engine_s"] = row["engines"][inits[0]], row["engines_s"][inits[0]]    # the first init's
    t1 = time.perf_counter()
    row["loop"] = [float("nan")] * args.epochs if args.skip_loop else loop_errors(args, root, seed)
    row["loop_s"] = time.perf_counter() - t1
    engines = "   ".join(f"{init} {' / '.join(f'{e:.2f}' for e in row['engines'][init])} "
                         f"({row['engines_s'][init]:.0f} s)" for init in inits)
    loop = "" if args.skip_loop else f"   loop {' / '.join(f'{e:.2f}' for e in row['loop'])} ({row['loop_s']:.0f} s)"
    print(f"seed {seed}: {engines}{loop}", flush=True)
    return row


def summarise(args, rows: list[dict], inits: list[str]) -> None:
    """Mean test error per epoch of each side, then the paired differences (mean ± sd over the seeds)."""
    epochs = range(args.epochs)
    means = {init: " / ".join(f"{statistics.mean(r['engines'][init][i] for r in rows):.2f}" for i in epochs)
             for init in inits}
    print("mean:   " + "   ".join(f"engine {init} {m}" for init, m in means.items()) + (
        "" if args.skip_loop else "   loop " + " / ".join(f"{statistics.mean(r['loop'][i] for r in rows):.2f}"
                                                          for i in epochs)))
    if len(inits) > 1:
        a, b = inits[:2]
        print(f"{a} - {b} per epoch (mean ± sd over seeds): "
              + " / ".join(spread([r["engines"][a][i] - r["engines"][b][i] for r in rows]) for i in epochs)
              + f"; {a} behind in {sum(r['engines'][a][-1] > r['engines'][b][-1] for r in rows)} of {len(rows)} seeds")
    if not args.skip_loop:
        print("engine - loop per epoch (mean ± sd over seeds): "
              + " / ".join(spread([r["engine"][i] - r["loop"][i] for r in rows]) for i in epochs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data-dir", help="folder holding cifar-10-batches-py [default: ../shared's, in a temp folder]")
    ap.add_argument("--train-per-class", type=int, default=0, help="a subset of ../shared's images (0: all 5,000)")
    ap.add_argument("--test-per-class", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--milestones", type=int, nargs="*", default=[2], help="epochs after which lr is divided by 10")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the usual loop")
    ap.add_argument("--engine-normalize", default=PIXEL, choices=("pixel", "channel"))
    ap.add_argument("--init", nargs="+", default=["he-fan-out"], choices=INITS, metavar="INIT",
                    help=f"the engine's init ({', '.join(INITS)}); two values: both, paired by seed")
    ap.add_argument("--loop-normalize", default="channel", choices=("pixel", "channel"))
    ap.add_argument("--loop-init", default="he-fan-in", choices=INITS)
    ap.add_argument("--skip-loop", action="store_true", help="train the engine only (an ablation of the engine)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = ap.parse_args(argv)
    inits = list(dict.fromkeys(args.init))
    with tempfile.TemporaryDirectory() as tmp:
        root = prepare(args, Path(tmp) / "data")
        print(f"ResNet-{args.depth}, {args.epochs} epochs, lr 0.1 /10 after epoch(s) {args.milestones}; engine: "
              f"normalize={args.engine_normalize} init={' and '.join(inits)}; loop: normalize={args.loop_normalize} "
              f"init={args.loop_init}{' (skipped)' if args.skip_loop else ''}; data {root}", flush=True)
        rows = [train_seed(args, root, seed, Path(tmp) / "runs", inits) for seed in args.seeds]
    summarise(args, rows, inits)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

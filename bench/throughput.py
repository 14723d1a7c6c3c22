"""Training throughput of the engine against the usual PyTorch CIFAR loop, measured in the same run.

The reference is the loop most CIFAR code uses (e.g. akamaster/pytorch_resnet_cifar10): torchvision's ``CIFAR10``
dataset over PIL images with ``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor`` and
``Normalize`` in ``DataLoader`` worker processes, fp32, ``loss.item()`` and an accuracy read-back every step.
The engine is the trainer's real path: ``core.data.loader.DeviceLoader`` (the split on the device,
crop/flip/normalise per batch there) feeding ``core.train.step.TrainStep`` with the per-iteration figures kept on the
device and read back every ``log_every`` steps (``core.train.step.StepWindow``). Same model
(``core.train.models.cifar_resnet``), same SGD settings, batch size, device and images (../shared's CIFAR-10, written
once to a temp folder unless --data-dir).

Warm-up iterations are excluded; each side then runs ``--iters`` timed iterations (synchronised on a GPU), the two
alternating in blocks so that other load on a shared machine slows both alike.
Printed: one table (model, batch, precision, compile, engine and reference images/s, their ratio, the estimated
seconds of a 391-iteration epoch, peak device memory) and the loader's own images/s next to the model's.

    python bench/throughput.py                          # ResNet-20 and -56, batch 128, this machine's device
    python bench/throughput.py --depths 20,56,110 --device cuda --precision bf16 --iters 200
    python bench/throughput.py --depths 110 --width 64 --batch-size 64 --iters 50   # the lab report's setting
    python bench/throughput.py --depths 20 --device cpu --precision fp32,bf16      # CPU fp32 and bf16 side by side

Never part of the test suite: timings depend on the machine and on what else runs on it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.data.cifar import load_data  # noqa: E402
from core.spec.config import COMPILE_MODES, PRECISIONS, RunConfig  # noqa: E402
from core.train.compile_warmup import COMPILE_CALLS  # noqa: E402
from core.train.device import DeviceError, resolve_device, sync_device  # noqa: E402
from core.train.models import cifar_resnet  # noqa: E402
from core.train.setup import build  # noqa: E402
from core.train.step import StepWindow, evaluate  # noqa: E402

TOOL = REPO.parent / "shared" / "tools" / "cifar10_jpeg.py"
EPOCH_ITERS = 391          # ceil(50000 / 128): one CIFAR-10 epoch at batch 128


# -- timing helpers ----------------------------------------------------------------------------------------------------
def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak(device: torch.device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def timed(step, warmup: int, iters: int, device: torch.device) -> float:
    """Seconds for ``iters`` calls of ``step`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    sync_device(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        step()
    sync_device(device)
    return time.perf_counter() - t0


def forever(loader):
    while True:
        yield from loader


# -- the engine --------------------------------------------------------------------------------------------------------
def build_engine(cfg: RunConfig, data, device: torch.device, args):
    """The trainer's path (core.train.setup.build): DeviceLoader -> TrainStep, figures kept on the device and read back
    every log_every; the test split cut to ``--eval-images``."""
    full_test = len(data.test_y)
    if args.eval_images:
        data = dataclasses.replace(data, test_x=data.test_x[: args.eval_images], test_y=data.test_y[: args.eval_images])
    torch.manual_seed(0)
    # --channels-last auto: measured on this device, as the trainer does
    setup = build(cfg, device, data)
    model, step_fn, test = setup.model, setup.step, setup.test_loader
    window = StepWindow(cfg.log_every, device)
    batches = forever(setup.train_loader)
    n = [0]

    def step():
        x, y = next(batches)
        loss, wrong = step_fn(x, y, cfg.lr)
        window.put(loss, wrong, n[0], 1, x.shape[0], cfg.lr)
        n[0] += 1
        if window.full:
            window.seal()
            window.drain(keep=1)

    def evaluate_test() -> float:
        evaluate(model, test, step_fn)   # warm-up
        sync_device(device)
        t0 = time.perf_counter()
        evaluate(model, test, step_fn)
        sync_device(device)
        return (time.perf_counter() - t0) * full_test / test.num_samples

    return step, lambda: next(batches), evaluate_test, {"precision": setup.precision,
                                                        "channels_last": setup.channels_last}


# -- the reference -----------------------------------------------------------------------------------------------------
def reference_dataset(root: Path, train: bool = True, normalize: str = "channel", augment: bool = True):
    """torchvision's CIFAR10 over ../shared's copy (same layout, different checksums: integrity checks skipped).
    ``normalize``: "channel", the usual hard-coded per-channel statistics, or "pixel", the training images' mean
    image subtracted (He et al. 2016, as the engine's he2016 recipe); ``augment``: crop and flip (training)."""
    import numpy as np
    import torchvision.transforms as T
    from torchvision.datasets import CIFAR10

    class SharedCIFAR10(CIFAR10):
        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    if normalize == "pixel":
        images = SharedCIFAR10(str(root), train=True, download=False).data        # (N, 32, 32, 3) uint8
        mean = torch.from_numpy(images.astype(np.float64).mean(0) / 255.0).permute(2, 0, 1).float()
        norm = T.Lambda(lambda x: x - mean)
    else:   # the usual hard-coded CIFAR-10 statistics
        norm = T.Normalize(mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
    crop_flip = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    transform = T.Compose([*crop_flip, T.ToTensor(), norm])
    return SharedCIFAR10(str(root), train=train, transform=transform, download=False)


def build_reference(cfg: RunConfig, root: Path, device: torch.device, args):
    """The usual loop: DataLoader workers with PIL transforms, fp32, loss.item() and accuracy read every step."""
    from torch.utils.data import DataLoader

    loader = DataLoader(reference_dataset(root), batch_size=cfg.batch_size, shuffle=True, num_workers=args.workers,
                        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=args.workers > 0)
    torch.manual_seed(0)
    model = cifar_resnet(cfg.depth, cfg.shortcut, cfg.width, 10).to(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    batches = forever(loader)
    stats = {"loss": 0.0, "correct": 0}

    def step():
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        stats["loss"] += loss.item()                          # the usual per-step logging: a host sync
        stats["correct"] += (out.argmax(1) == y).sum().item()

    return step, lambda: next(batches)


def measure(cfg: RunConfig, data, root: Path, device: torch.device, args) -> dict:
    """Both loops built side by side, each warmed up alone (its peak memory taken then), then timed in alternating
    blocks of ``--block`` iterations, so that whatever else the machine does slows both alike. (The reference's
    workers may prefetch during the engine's blocks: if anything, that favours the reference.)"""
    reset_peak(device)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    eng_step, eng_loader, eng_eval, info = build_engine(cfg, data, device, args)
    compile_s = None
    if cfg.compile != "off":   # compiled as the trainer does (reduce-overhead records its graphs); apart from the rates
        t0 = time.perf_counter()
        for _ in range(COMPILE_CALLS):
            eng_step()
        sync_device(device)
        compile_s = time.perf_counter() - t0
    timed(eng_step, args.warmup, 0, device)
    eng_peak = None if peak(device) is None else peak(device) - base
    reset_peak(device)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    ref_step, ref_loader = build_reference(cfg, root, device, args)
    timed(ref_step, args.warmup, 0, device)
    ref_peak = None if peak(device) is None else peak(device) - base
    t_eng = t_ref = 0.0
    done = 0
    block = args.block or max(1, args.iters // 4)
    while done < args.iters:
        k = min(block, args.iters - done)
        t_eng += timed(eng_step, 0, k, device)
        t_ref += timed(ref_step, 0, k, device)
        done += k
    images = args.iters * cfg.batch_size
    return {**info, "engine_img_s": images / t_eng, "reference_img_s": images / t_ref, "compile_s": compile_s,
            "engine_peak_bytes": eng_peak, "reference_peak_bytes": ref_peak,
            "eval_s": eng_eval() if args.eval_images else None,
            "loader_img_s": args.loader_iters * cfg.batch_size / timed(eng_loader, 2, args.loader_iters, device),
            "reference_loader_img_s": args.loader_iters * cfg.batch_size / timed(ref_loader, 2, args.loader_iters,
                                                                                 device)}


# -- main --------------------------------------------------------------------------------------------------------------
def prepare_data(data_dir: str | None, tmp: Path) -> Path:
    if data_dir:
        return Path(data_dir).resolve()
    if not TOOL.exists():
        sys.exit(f"error: {TOOL} not found: pass --data-dir holding cifar-10-batches-py")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(TOOL), str(tmp)], check=True, stdout=subprocess.DEVNULL)
    print(f"wrote ../shared's CIFAR-10 to {tmp} in {time.perf_counter() - t0:.1f} s", flush=True)
    return tmp


def fmt_mem(nbytes: int | None) -> str:
    return "-" if nbytes is None else f"{nbytes / 2**30:.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--depths", default="20,56", help="comma-separated ResNet depths (6n+2)")
    ap.add_argument("--width", type=int, default=16, help="first-stage filters")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20, help="timed iterations per measurement")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations before each measurement")
    ap.add_argument("--loader-iters", type=int, default=50, help="batches timed for the loader-only figures")
    ap.add_argument("--block", type=int, default=0,
                    help="iterations per alternating block of engine and reference [default: iters/4]")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    ap.add_argument("--precision", default="auto", type=precisions,
                    help="the engine's precision, or several comma-separated (fp32,bf16: one row each, each timed "
                         "against the reference; the reference loop is fp32, as usually written)")
    ap.add_argument("--channels-last", default="auto", choices=("auto", "on", "off"),
                    help="the engine's memory format (auto: measured on the device, as the trainer does)")
    ap.add_argument("--compile", nargs="?", const="default", default="off", choices=COMPILE_MODES,
                    help="torch.compile the engine's step: default (inductor) or reduce-overhead (inductor and CUDA "
                         "graphs); a bare --compile is default")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader worker processes of the reference loop")
    ap.add_argument("--eval-images", type=int, default=None,
                    help="also time the engine's test evaluation on this many images (scaled to 10,000) "
                         "[default: 10000 on a GPU, 0 on the CPU]")
    ap.add_argument("--data-dir",
                    help="folder holding cifar-10-batches-py [default: write ../shared's into a temp dir]")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = ap.parse_args(argv)

    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        ap.error(f"--device: {exc}")
    if args.eval_images is None:
        args.eval_images = 10000 if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    depths = [int(d) for d in args.depths.split(",") if d.strip()]
    with tempfile.TemporaryDirectory(prefix="reslab-bench-") as tmp:
        root = prepare_data(args.data_dir, Path(tmp))
        base = RunConfig(data_dir=str(root), download=False, batch_size=args.batch_size, width=args.width,
                         precision=args.precision[0], compile=args.compile, device=str(device), iterations=0,
                         epochs=1, milestones=(), channels_last=args.channels_last)
        data = load_data(base)
        cpu = f"CPU, {torch.get_num_threads()} threads"
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
        print(f"device {device} ({name}), torch {torch.__version__}; {args.iters} timed iterations after "
              f"{args.warmup} warm-up each, alternating in blocks; reference: {args.workers} DataLoader workers, fp32",
              flush=True)
        results = []
        for depth in depths:
            for precision in args.precision:
                m = measure(base.with_overrides(depth=depth, precision=precision), data, root, device, args)
                results.append({"model": f"ResNet-{depth}" + (f" w{args.width}" if args.width != 16 else ""),
                                "depth": depth, "width": args.width, "batch": args.batch_size, "device": str(device),
                                "compile": args.compile, **m,
                                "ratio": m["engine_img_s"] / m["reference_img_s"],
                                "engine_epoch_s": EPOCH_ITERS * args.batch_size / m["engine_img_s"],
                                "reference_epoch_s": EPOCH_ITERS * args.batch_size / m["reference_img_s"]})
                print(f"  ResNet-{depth} {m['precision']}: engine {m['engine_img_s']:,.0f} img/s, reference "
                      f"{m['reference_img_s']:,.0f} img/s", flush=True)
    print_table(results, args)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def precisions(text: str) -> list[str]:
    """--precision: one of auto, fp32, bf16, fp16, or several comma-separated."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in names if p not in PRECISIONS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{', '.join(bad) or repr(text)}: use {', '.join(PRECISIONS)} "
                                         f"(or several, comma-separated)")
    return names


def precision_ratios(results: list[dict]) -> list[str]:
    """'ResNet-20: bf16 0.62x fp32 (engine img/s)' for each model measured in several precisions."""
    lines = []
    for model in dict.fromkeys(r["model"] for r in results):
        rows = {r["precision"]: r["engine_img_s"] for r in results if r["model"] == model}
        if "fp32" in rows and len(rows) > 1:
            lines += [f"{model}: engine {p} {rate / rows['fp32']:.2f}x engine fp32" for p, rate in rows.items()
                      if p != "fp32"]
    return lines


def print_table(results: list[dict], args) -> None:
    head = ("model", "batch", "precision", "compile", "engine img/s", "reference img/s", "ratio",
            "epoch s (391 it)", "ref epoch s", "peak mem")
    rows = []
    for r in results:
        epoch = f"{r['engine_epoch_s']:.1f}" + (f" + {r['eval_s']:.1f} eval" if r.get("eval_s") is not None else "")
        rows.append((r["model"], str(r["batch"]), r["precision"] + (" CL" if r["channels_last"] else ""),
                     r["compile"], f"{r['engine_img_s']:,.0f}", f"{r['reference_img_s']:,.0f}",
                     f"{r['ratio']:.2f}x", epoch, f"{r['reference_epoch_s']:.1f}",
                     fmt_mem(r["engine_peak_bytes"]) + (f" (ref {fmt_mem(r['reference_peak_bytes'])})"
                                                        if r["reference_peak_bytes"] else "")))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    for r in results:
        if r["compile_s"] is not None:
            print(f"{r['model']}: torch.compile took {r['compile_s']:.1f} s (not in the rates)")
    loader = max(r["loader_img_s"] for r in results)
    several = len(args.precision) > 1
    per_model = ", ".join(f"{loader / r['engine_img_s']:,.0f}x {r['model']}{' ' + r['precision'] if several else ''}'s"
                          for r in results)
    ref_loader = max(r["reference_loader_img_s"] for r in results)
    print(f"\nengine loader alone (index, pad-crop, flip, normalise on {results[0]['device']}): {loader:,.0f} img/s "
          f"= {per_model} training rate")
    print(f"reference DataLoader alone ({args.workers} workers, PIL transforms): {ref_loader:,.0f} img/s")
    for line in precision_ratios(results):
        print(line)


if __name__ == "__main__":
    sys.exit(main())

"""Every GPU figure ResLab still owes, from one command that fits one device call (bench/gpu_checks.sh runs this).

A lent GPU machine is ours for ~15 minutes in all, at most 10 a command, so the check is one prepared command with a
time budget, most important first; a step starts only while its estimate fits what is left of the budget, each runs in
its own process with its own timeout, and the results are rewritten after every step (a check cut short still says
what it measured):

1. ``tier``: the ``gpu`` test tier (tests/gpu: what only a GPU can show, CUDA graphs with micro-batches included);
2. ``throughput``: the engine against the usual PyTorch loop, eager, ResNet-20 and -110 (bench/throughput.py);
3. ``compile``: ``--compile default`` and ``reduce-overhead`` (CUDA graphs), each depth and mode its own process;
4. ``epoch``: one real he2016 ResNet-20 epoch through the trainer, eager and with CUDA graphs;
5. ``queue``: four ResNet-20 runs on one GPU, one at a time against four sharing it (bench/queue_latency.py);
6. ``fidelity``: the engine against the usual loop on the full set, 3 epochs, 5 seeds (bench/fidelity.py);
7. ``init``: the paper's fan-out init against fan-in, per-channel normalisation, the same 5 seeds paired (issue 28);
8. ``memory``: ResNet-1202 at batch 128.

Results: ``OUT/gpu_checks.json`` (every figure), ``OUT/gpu_checks.txt`` (a summary to paste) and ``OUT/gpu_checks.log``
(each step's command and the tail of its output); run folders and data go to ``--work``, never under OUT.
``--device cpu`` rehearses the same steps with tiny sizes (tests/bench/test_gpu_checks.py), so the check cannot rot
between the rare sessions that have a GPU. Needs torch, numpy and pytest only (no textual, platformdirs, optuna or
submitit: settings go to RESLAB_CONFIG_DIR / RESLAB_CACHE_DIR under --work).

    python bench/gpu_checks.py --budget 420                      # on the GPU machine
    python bench/gpu_checks.py --device cpu --budget 60 --out /tmp/o   # the rehearsal
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TAIL = 6000                     # characters of a step's output kept in the log


@dataclass
class Step:
    section: str
    name: str
    cmd: list[str]
    estimate_s: float            # started only when this much of the budget is left
    timeout_s: float
    read: Callable[[str], dict] = lambda out: {}   # figures from the step's output (or the files it wrote)
    env: dict = field(default_factory=dict)          # set for this step's process


@dataclass
class Check:
    device: str
    budget: float
    out: Path
    work: Path
    t0: float = field(default_factory=time.monotonic)
    results: dict = field(default_factory=lambda: {"env": {}, "steps": []})
    out_of_budget: bool = False

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.t0)

    def run(self, step: Step) -> dict:
        """Run ``step`` unless the budget is spent: once one step does not fit, no later one starts (the order is
        the order of importance)."""
        entry = {"section": step.section, "name": step.name, "cmd": " ".join(step.cmd)}
        if self.out_of_budget or self.left() < step.estimate_s:
            self.out_of_budget = True
            entry.update(status="skipped", reason=f"budget: {self.left():.0f} s left, needs ~{step.estimate_s:.0f} s")
        else:
            entry.update(self._execute(step))
        self.results["steps"].append(entry)
        self.save()
        print(f"[{time.monotonic() - self.t0:5.0f} s] {step.section}/{step.name}: {entry['status']} "
              f"{entry.get('seconds', '')} {entry.get('reason', '')}", flush=True)
        return entry

    def _execute(self, step: Step) -> dict:
        timeout = max(10.0, min(step.timeout_s, self.left() + 30))
        t = time.monotonic()
        proc = subprocess.Popen(step.cmd, cwd=REPO, env={**child_env(self.work), **step.env}, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out = proc.communicate(timeout=timeout)[0]
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)        # the step's whole process group (a scheduler, its trainers)
            out = proc.communicate()[0]
            status = f"timeout after {timeout:.0f} s"
        entry = {"status": status, "seconds": round(time.monotonic() - t, 1)}
        try:
            entry["figures"] = step.read(out)
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            entry["figures"] = {"unreadable": f"{type(exc).__name__}: {exc}"}
        with open(self.out / "gpu_checks.log", "a") as log:
            log.write(f"\n===== {step.section}/{step.name}: {status}, {entry['seconds']} s\n$ {' '.join(step.cmd)}\n")
            log.write(out[-TAIL:])
        return entry

    def save(self) -> None:
        for name, text in (("gpu_checks.json", json.dumps(self.results, indent=1)),
                           ("gpu_checks.txt", summary(self.results))):
            tmp = self.out / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, self.out / name)


def child_env(work: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", NO_COLOR="1")
    env.setdefault("RESLAB_CONFIG_DIR", str(work / "config"))     # no platformdirs needed on the device
    env.setdefault("RESLAB_CACHE_DIR", str(work / "cache"))
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return env


def read_json(path: Path) -> Callable[[str], dict]:
    return lambda out: {"rows": json.loads(path.read_text())}


def read_pytest(out: str) -> dict:
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", out.splitlines()[-1]
                                                if out.strip() else "")}
    failed = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR", "SKIPPED"))]
    return {**counts, "lines": failed[:20]}


def read_run(runs: Path, name: str) -> Callable[[str], dict]:
    def read(out: str) -> dict:
        status = json.loads((runs / name / "status.json").read_text())
        epochs = [json.loads(line) for line in (runs / name / "epochs.jsonl").read_text().splitlines() if line]
        keep = ("epoch", "seconds", "eval_seconds", "images_per_s", "train_err", "test_err", "peak_mem_bytes")
        return {"state": status.get("state"), "compile_s": status.get("compile_s"),
                "precision": status.get("precision"), "epochs": [{k: e.get(k) for k in keep} for e in epochs]}
    return read


def plan(args, data: Path, work: Path) -> list[Step]:
    cpu = args.device == "cpu"
    py = sys.executable
    w = work / "json"
    w.mkdir(parents=True, exist_ok=True)
    # sizes: the real ones on a GPU, tiny ones for the rehearsal on a CPU
    depths = [8] if cpu else [20, 110]
    # the rehearsal runs every command line, but a CPU compile takes minutes: torch.compile then returns the eager net
    no_compile = {"TORCHDYNAMO_DISABLE": "1"} if cpu else {}
    tp = [py, "bench/throughput.py", "--device", args.device, "--data-dir", str(data)]
    tp += ["--width", "4", "--batch-size", "32", "--iters", "3", "--warmup", "1", "--loader-iters", "3", "--workers",
           "0"] if cpu else ["--iters", "100"]
    # pytest with no plugin but pytest-timeout: the device has none of the UI's (pytest-textual-snapshot)
    steps = [Step("tier", "pytest -m gpu", [py, "-m", "pytest", "-q", "-m", "gpu", "tests/gpu", "-p",
                                            "no:cacheprovider", "-p", "pytest_timeout", "-rs", "--timeout", "200"],
                  20 if cpu else 60, 240, read_pytest, {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})]
    for d in depths:
        steps.append(Step("throughput", f"ResNet-{d} eager", [*tp, "--depths", str(d), "--json", str(w / f"e{d}.json")],
                          10 if cpu else 30, 150, read_json(w / f"e{d}.json")))
    for mode in ("default", "reduce-overhead"):
        for d in depths:
            steps.append(Step("compile", f"ResNet-{d} {mode}", [*tp, "--depths", str(d), "--compile", mode, "--json",
                                                                str(w / f"{mode}{d}.json")],
                              10 if cpu else 60 + d // 2, 240, read_json(w / f"{mode}{d}.json"), no_compile))
    runs = work / "runs"
    tiny = ["--depth", "8", "--width", "4"] if cpu else ["--depth", "20"]
    for mode in ("off", "reduce-overhead"):
        name = f"r20-epoch-{mode}"
        steps.append(Step("epoch", f"he2016 epoch, compile {mode}",
                          [py, "tui_app.py", "train", "--preset", "he2016", *tiny, "--epochs", "1", "--data-dir",
                           str(data), "--no-download", "--runs-dir", str(runs), "--name", name, "--device",
                           args.device, "--compile", mode], 10 if cpu else (40 if mode == "off" else 90), 240,
                          read_run(runs, name), no_compile))
    q = [py, "bench/queue_latency.py", "--devices", "cpu" if cpu else "cuda:0", "--runs", "2" if cpu else "4"]
    q += ["--depth", "8", "--width", "4", "--epochs", "1"] if cpu else [
        "--depth", "20", "--width", "16", "--epochs", "3", "--dataset", "cifar10", "--data-dir", str(data),
        "--train-images", "0"]
    for per in (1, 4):
        steps.append(Step("queue", f"--per-device {per}", [*q, "--per-device", str(per), "--json",
                                                           str(w / f"queue{per}.json")],
                          20 if cpu else 120, 240, lambda out, p=w / f"queue{per}.json": json.loads(p.read_text())))
    fid = [py, "bench/fidelity.py", "--data-dir", str(data), "--device", args.device, "--json", str(w / "fid.json")]
    fid += ["--depth", "8", "--epochs", "2", "--milestones", "1", "--seeds", "1", "--workers", "0"] if cpu else [
        "--epochs", "3", "--milestones", "2", "--seeds", "1", "2", "3", "4", "5"]
    steps.append(Step("fidelity", "engine vs usual loop", fid, 20 if cpu else 200, 420,
                      lambda out: json.loads((w / "fid.json").read_text())))
    init = [*fid[:6], "--json", str(w / "init.json"), *fid[8:], "--engine-normalize", "channel", "--skip-loop",
            "--init", "he-fan-out", "he-fan-in"]           # issue 28: what the paper's init costs, paired by seed
    steps.append(Step("init", "he-fan-out vs he-fan-in", init, 20 if cpu else 240, 480,
                      lambda out: json.loads((w / "init.json").read_text())))
    mem = [*tp, "--depths", "14" if cpu else "1202", "--json", str(w / "mem.json")]
    steps.append(Step("memory", "ResNet-1202 at batch 128" if not cpu else "deeper net", mem, 10 if cpu else 60, 180,
                      read_json(w / "mem.json")))
    wanted = set(args.sections or [s.section for s in steps])
    return [s for s in steps if s.section in wanted]


def summary(results: dict) -> str:
    env = results.get("env", {})
    lines = [f"ResLab GPU checks: {env.get('gpu', '?')}; torch {env.get('torch', '?')}, CUDA {env.get('cuda')}; "
             f"budget {env.get('budget_s')} s", ""]
    for s in results["steps"]:
        head = f"{s['section']:<10} {s['name']:<30} {s['status']:<10} {s.get('seconds', '-')!s:>6} s"
        lines.append(head + (f"  {s['reason']}" if s.get("reason") else ""))
        try:
            lines += [f"    {line}" for line in figure_lines(s["section"], s.get("figures") or {})]
        except (KeyError, TypeError, ValueError) as exc:     # a summary line must never cost the JSON
            lines.append(f"    (figures not summarised: {type(exc).__name__}: {exc})")
    return "\n".join(lines) + "\n"


def figure_lines(section: str, f: dict) -> list[str]:
    if "unreadable" in f:
        return [f"figures unreadable: {f['unreadable']}"]
    if section == "tier":
        return [", ".join(f"{f[k]} {k}" for k in ("passed", "failed", "skipped", "error", "errors") if k in f),
                *f.get("lines", [])]
    if section in ("throughput", "compile", "memory"):
        return [f"{r['model']} batch {r['batch']} {r['precision']}{' CL' if r.get('channels_last') else ''} compile="
                f"{r['compile']}: engine {r['engine_img_s']:,.0f} img/s vs usual loop {r['reference_img_s']:,.0f} "
                f"({r['ratio']:.2f}x); peak {gib(r.get('engine_peak_bytes'))}"
                + (f"; compile {r['compile_s']:.0f} s" if r.get("compile_s") else "") for r in f.get("rows", [])]
    if section == "epoch":
        return [f"{f.get('state')}, {f.get('precision')}, compile {f.get('compile_s')} s"] + [
            f"epoch {e['epoch']}: {e['seconds']} s train + {e.get('eval_seconds')} s eval, {e['images_per_s']} img/s, "
            f"test err {e['test_err']}%" for e in f.get("epochs", [])]
    if section == "queue":
        return [f"wall {f['wall_s']} s, at most {f.get('max_concurrent')} at once, median run {f.get('per_run_s')} s"]
    if section in ("fidelity", "init"):
        return [json.dumps(row) for row in f.get("rows", [])][:12]
    return []


def gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def prepare_data(args, work: Path) -> Path:
    if args.data_dir:
        return Path(args.data_dir).resolve()
    dest = work / "data"
    if not (dest / "cifar-10-batches-py").is_dir():
        tool, npz = REPO.parent / "shared" / "tools" / "cifar10_jpeg.py", None
        if not tool.exists():     # on the device machine ../shared is not there: bench/gpu_checks.sh says what to carry
            tool, npz = REPO / ".shared" / "cifar10_jpeg.py", REPO / ".shared" / "cifar10-jpeg.npz"
            if not (tool.exists() and npz.exists()):
                raise SystemExit("no CIFAR-10 here: ../shared is not beside the repository and .shared/ lacks "
                                 "cifar10_jpeg.py or cifar10-jpeg.npz (mkdir -p .shared && cp ../shared/data/"
                                 "cifar10-jpeg.npz ../shared/tools/cifar10_jpeg.py .shared/), or pass --data-dir")
        cmd = [sys.executable, str(tool), str(dest)] + (["--npz", str(npz)] if npz else [])
        if args.device == "cpu":
            cmd += ["--train-per-class", "20", "--test-per-class", "10"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return dest


def environment(args) -> dict:
    import torch

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "device": args.device, "budget_s": args.budget}
    if args.device != "cpu" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                   bf16=torch.cuda.is_bf16_supported())
    else:
        env["gpu"] = f"none (CPU rehearsal, {os.cpu_count()} cores)"
    return env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda (the real check) or cpu (the rehearsal: tiny sizes)")
    ap.add_argument("--budget", type=float, default=420, help="seconds: no step starts that would pass it")
    ap.add_argument("--out", default=os.environ.get("OUT") or "bench/results", help="where the 3 result files go")
    ap.add_argument("--work", default="", help="run folders, data and JSON of each step [a folder under /tmp]")
    ap.add_argument("--data-dir", default="", help="a folder holding cifar-10-batches-py [written from shared/]")
    ap.add_argument("--sections", nargs="*", choices=("tier", "throughput", "compile", "epoch", "queue", "fidelity",
                                                      "init", "memory"))
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or f"/tmp/reslab-gpu-checks-{os.getpid()}").resolve()
    if work == out or out in work.parents:
        ap.error("--work must lie outside --out (only the result files come back from the device)")
    work.mkdir(parents=True, exist_ok=True)
    check = Check(args.device, args.budget, out, work)
    check.results["env"] = environment(args)
    check.save()
    data = prepare_data(args, work)
    for step in plan(args, data, work):
        check.run(step)
    check.results["env"]["total_s"] = round(time.monotonic() - check.t0, 1)
    check.save()
    print(summary(check.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

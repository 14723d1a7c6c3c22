"""bench/gpu_checks.sh rehearsed on the CPU (issue 29): the one command a lent GPU machine runs must not rot between
the rare sessions that have one. It runs with the device's packages only: textual, platformdirs, optuna and submitit
are hidden from it here."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

HIDDEN = ("textual", "platformdirs", "optuna", "submitit")
BLOCKER = f'''
import sys
class _Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {HIDDEN!r}:
            raise ImportError(f"{{name}} is not on the GPU machine")
        return None
sys.meta_path.insert(0, _Hidden())
'''

pytestmark = pytest.mark.slow


def rehearse(tmp_path: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, dict, Path]:
    if not (SHARED / "tools" / "cifar10_jpeg.py").exists():
        pytest.skip("../shared must sit beside the repository")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    for key in ("OUT", "RESLAB_CONFIG_DIR", "RESLAB_CACHE_DIR"):
        env.pop(key, None)
    proc = subprocess.run(["bash", "bench/gpu_checks.sh", "--device", "cpu", "--out", str(out), "--work",
                           str(tmp_path / "work"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads((out / "gpu_checks.json").read_text()), out


def test_the_check_runs_in_order_within_its_budget_and_leaves_three_files(tmp_path):
    t0 = time.monotonic()
    proc, results, out = rehearse(tmp_path, "--budget", "60")
    assert time.monotonic() - t0 < 60 + 60, "a step may run past the budget by its grace (30 s) and start-up only"
    assert sorted(p.name for p in out.iterdir()) == ["gpu_checks.json", "gpu_checks.log", "gpu_checks.txt"]
    steps = results["steps"]
    assert [s["section"] for s in steps][:2] == ["tier", "throughput"] and steps[-1]["section"] == "memory"
    assert steps[0]["status"] == "ok" and steps[0]["figures"]["skipped"] >= 1    # the gpu tier, skipped on a CPU
    ran = [s for s in steps if s["status"] != "skipped"]
    assert ran and all(s["status"] == "ok" for s in ran), [(s["name"], s["status"]) for s in ran]
    statuses = [s["status"] == "skipped" for s in steps]
    assert statuses == sorted(statuses), "once a step does not fit the budget, none after it starts"
    assert all(s["reason"].startswith("budget:") for s in steps if s["status"] == "skipped")
    assert any(s["status"] == "skipped" for s in steps), "the CPU rehearsal does not fit 60 s: the budget must stop it"
    engine = steps[1]["figures"]["rows"][0]
    assert engine["engine_img_s"] > 0 and engine["reference_img_s"] > 0
    assert "throughput ResNet-8 eager" in (out / "gpu_checks.txt").read_text().replace("  ", " ").replace("  ", " ")


def test_the_later_sections_run_their_real_command_lines(tmp_path):
    proc, results, out = rehearse(tmp_path, "--budget", "200", "--sections", "epoch", "queue", "fidelity", "init")
    by = {(s["section"], s["name"]): s for s in results["steps"]}
    assert [s["status"] for s in results["steps"]] == ["ok"] * 6, [(s["name"], s["status"]) for s in results["steps"]]
    epoch = by[("epoch", "he2016 epoch, compile reduce-overhead")]["figures"]
    assert epoch["state"] == "finished" and epoch["compile_s"] is not None and epoch["epochs"][0]["test_err"] >= 0
    assert by[("queue", "--per-device 4")]["figures"]["wall_s"] > 0
    fidelity = by[("fidelity", "engine vs usual loop")]["figures"]["rows"]
    assert len(fidelity) == 1 and len(fidelity[0]["engine"]) == 2
    init = by[("init", "he-fan-out vs he-fan-in")]["figures"]["rows"]          # issue 28: both inits, paired by seed
    assert set(init[0]["engines"]) == {"he-fan-out", "he-fan-in"} and init[0]["loop"][0] != init[0]["loop"][0]   # nan
    assert not any(p.is_dir() for p in out.iterdir()), "run folders stay under --work"

"""Real-terminal smoke check: `python tui_app.py` inside tmux, driven with send-keys, read with capture-pane.

Run it directly to see the screens and the key latencies (``python -m tests.ui.tmux_smoke``); test_tmux.py runs
the same steps with assertions. It trains a small synthetic ResNet in the app (CPU) and measures how long the
interface takes to answer keys meanwhile: time from send-keys to the changed screen in capture-pane.

No resizing within a session: in a detached tmux session Textual may wait for in-band resize reports that tmux
does not send, so a resize-window is not always seen; each size gets its own session instead.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    """One tmux session on a private server socket in a temporary folder (never touches the user's tmux)."""

    def __init__(self, command: str, width: int, height: int, env: dict[str, str], cwd: Path):
        self.socket_dir = Path(tempfile.mkdtemp(prefix="reslab-tmux-sock-"))
        self.name = "reslab"
        self.base = ["tmux", "-S", str(self.socket_dir / "sock")]
        envs = [f"{k}={v}" for k, v in env.items()]
        subprocess.run(self.base + ["-f", "/dev/null", "new-session", "-d", "-s", self.name, "-x", str(width),
                                    "-y", str(height), "-c", str(cwd), "env", *envs, *command.split()],
                       check=True)
        subprocess.run(self.base + ["set-option", "-t", self.name, "remain-on-exit", "on"], check=True)

    def send(self, *keys: str) -> None:
        subprocess.run(self.base + ["send-keys", "-t", self.name, *keys], check=True)

    def capture(self) -> str:
        return subprocess.run(self.base + ["capture-pane", "-p", "-t", self.name], check=True, capture_output=True,
                              text=True).stdout

    def dead(self) -> bool:
        out = subprocess.run(self.base + ["display-message", "-p", "-t", self.name, "#{pane_dead}"],
                             capture_output=True, text=True).stdout.strip()
        return out == "1"

    def resize(self, width: int, height: int) -> None:
        subprocess.run(self.base + ["resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
                       check=True)

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "screen") -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.capture()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{text}")
            time.sleep(0.01)

    def wait_text(self, needle: str, timeout: float = 30.0) -> str:
        return self.wait_for(lambda t: needle in t, timeout, repr(needle))

    def latency(self, key: str, predicate, timeout: float = 10.0) -> float:
        """Seconds from sending key until the screen satisfies predicate."""
        t0 = time.monotonic()
        self.send(key)
        self.wait_for(predicate, timeout, f"the answer to {key}")
        return time.monotonic() - t0

    def close(self) -> None:
        subprocess.run(self.base + ["kill-server"], capture_output=True)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


def private_dirs(tmp: Path) -> dict[str, str]:
    """The app's settings and cache folders (core/store/settings.py) inside the session's temporary folder."""
    return {"RESLAB_CONFIG_DIR": str(tmp / "config"), "RESLAB_CACHE_DIR": str(tmp / "cache")}


def _wait_steps(runs: Path, run_id: str, steps: int = 2, timeout: float = 120.0) -> None:
    """Until the run has done some iterations (past data loading and model building)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if json.loads((runs / run_id / "status.json").read_text()).get("step", 0) >= steps:
                return
        except (OSError, ValueError):
            pass
        assert time.monotonic() < deadline, f"{run_id} did not reach step {steps}"
        time.sleep(0.1)


def _training(text: str) -> bool:
    """A table row says running with its progress bar."""
    return "running ▰" in text or "running ▱" in text


def training_config(light: bool = False):
    """A run that keeps two CPU cores busy for a while: ResNet-20, width 16, batch 128, synthetic images.
    light: a small net that still trains for minutes (for the test suite; it is stopped long before the end)."""
    from core.spec.config import RunConfig

    if light:
        return RunConfig(depth=8, width=8, dataset="synthetic", max_train_images=1024, max_test_images=256,
                         batch_size=64, epochs=200, iterations=0, milestones=(), schedule="constant", lr=0.05,
                         device="cpu", precision="fp32", log_every=4, download=False, name="live-cpu")
    return RunConfig(depth=20, width=16, dataset="synthetic", max_train_images=2048, max_test_images=512,
                     batch_size=128, epochs=6, iterations=0, milestones=(), schedule="constant", lr=0.05,
                     device="cpu", precision="fp32", log_every=4, download=False, name="live-cpu")


def prepare(root: Path, light: bool = False) -> Path:
    from core.store.runs import RunStore
    from tests.ui.fixtures import populate

    runs = root / "runs"
    populate(runs)
    RunStore(runs).create(training_config(light))   # queued: r trains it in the app
    return runs


def measure(tmux: Tmux, rounds: int = 8) -> list[float]:
    """Open and close the monitor of the highlighted run with enter/escape; each answer's latency."""
    out = []
    for _ in range(rounds):
        out.append(tmux.latency("Enter", lambda t: "Monitor live-cpu" in t))
        out.append(tmux.latency("Escape", lambda t: "? keys" in t))
    return out


def filter_to_live_run(tmux: Tmux) -> None:
    """Type the filter that leaves only the queued run live-cpu in the table (the prepared folder's), then enter."""
    for _ in range(20):      # the first frame can come before the terminal input is read: retry
        tmux.send("/")
        try:
            tmux.wait_text("filter: words", 2.0)
            break
        except AssertionError:
            continue
    tmux.send("-l", "live-cpu")
    tmux.send("Enter")
    tmux.wait_for(lambda t: "r20-A" not in t and "live-cpu" in t, 10, "the filter")


def run_smoke(verbose: bool = True, light: bool = False) -> dict:
    if shutil.which("tmux") is None:
        raise RuntimeError("tmux is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="reslab-tmux-"))
    result: dict = {"screens": {}}
    runs = prepare(tmp, light)
    env = {"RESLAB_DATA": str(tmp / "no-data"), **private_dirs(tmp), "TERM": "xterm-256color", "PYTHONPATH": str(ROOT),
           "COLORTERM": "truecolor"}
    tmux = Tmux(f"{sys.executable} tui_app.py --runs-dir {runs}", 80, 24, env, ROOT)
    try:
        tmux.wait_text("? keys", 60)
        # filter to the queued run, go back to the table, resume it in the app
        filter_to_live_run(tmux)
        result["screens"]["runs_80x24_filtered"] = tmux.capture()
        idle = []
        for _ in range(4):       # a queued run opens its detail screen
            idle.append(tmux.latency("Enter", lambda t: "Run live-cpu" in t))
            idle.append(tmux.latency("Escape", lambda t: "? keys" in t))
        tmux.send("r")
        tmux.wait_for(_training, 90, "live-cpu to train")
        _wait_steps(runs, "live-cpu")
        result["screens"]["runs_80x24_training"] = tmux.capture()
        result["latency_training_s"] = measure(tmux)
        result["latency_idle_s"] = idle
        tmux.send("Enter")
        tmux.wait_text("Monitor live-cpu")
        time.sleep(1.0)
        result["screens"]["monitor_80x24"] = tmux.capture()
        # stop (with confirmation) from the monitor
        tmux.send("s")
        tmux.wait_text("Stop live-cpu?")
        result["screens"]["stop_dialog_80x24"] = tmux.capture()
        tmux.send("Enter")                      # the first answer, Stop, has the focus
        tmux.wait_for(lambda t: "stopped" in t.splitlines()[0], 60, "the monitor's title to say stopped")
        status = json.loads((runs / "live-cpu" / "status.json").read_text())
        result["stopped_at_step"] = status["step"]
        result["checkpoint_after_stop"] = (runs / "live-cpu" / "checkpoint.pt").exists()
        tmux.send("Escape")
        tmux.wait_text("? keys")
        tmux.send("r")                          # resume in the app
        tmux.wait_for(_training, 60, "the run to resume")
        tmux.send("Escape")                     # clear the filter: every run again
        tmux.wait_text("r20-A")
        result["screens"]["runs_80x24_resumed"] = tmux.capture()
        # quit while training: the dialog, then "Stop & quit" (focused first)
        tmux.send("q")
        tmux.wait_text("Quit ResLab?")
        result["screens"]["quit_dialog_80x24"] = tmux.capture()
        tmux.send("Enter")
        deadline = time.monotonic() + 60
        while not tmux.dead() and time.monotonic() < deadline:
            time.sleep(0.05)
        result["exited"] = tmux.dead()
        status = json.loads((runs / "live-cpu" / "status.json").read_text())
        result["state_after_quit"] = status["state"]
        result["step_after_quit"] = status["step"]
        result["resumed_logged"] = any("resumed at" in line for line in
                                       (runs / "live-cpu" / "events.log").read_text().splitlines())
    finally:
        tmux.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        for name, text in result["screens"].items():
            print(f"--- {name} ---\n{text}")
        lat = result["latency_training_s"]
        print(f"key latency while training in the app: median {statistics.median(lat) * 1000:.0f} ms, "
              f"max {max(lat) * 1000:.0f} ms over {len(lat)} keys; idle {[round(x * 1000) for x in idle]} ms")
        print({k: v for k, v in result.items() if k not in ("screens",)})
    return result


def no_color_check() -> set[tuple[int, int, int]]:
    """Start the app with NO_COLOR=1 and return every colour its screen uses (all should be greys)."""
    import re

    tmp = Path(tempfile.mkdtemp(prefix="reslab-nocolor-"))
    runs = prepare(tmp, light=True)
    env = {"RESLAB_DATA": str(tmp / "no-data"), **private_dirs(tmp), "TERM": "xterm-256color", "COLORTERM": "truecolor",
           "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    tmux = Tmux(f"{sys.executable} tui_app.py --runs-dir {runs}", 100, 30, env, ROOT)
    try:
        tmux.wait_text("? keys", 60)
        time.sleep(0.5)
        raw = subprocess.run(tmux.base + ["capture-pane", "-e", "-p", "-t", tmux.name], check=True,
                             capture_output=True, text=True).stdout
    finally:
        tmux.close()
        shutil.rmtree(tmp, ignore_errors=True)
    colours = {tuple(map(int, m)) for m in re.findall(r"[34]8;2;(\d+);(\d+);(\d+)", raw)}
    indexed = re.findall(r"\x1b\[[0-9;]*?(?:^|;)(3[1-6]|9[1-6])(?:;|m)", raw)
    if indexed:
        colours.add((-1, -1, -1))  # a hue from the 16-colour palette
    return colours


def _highlighted(text: str, run_id: str) -> bool:
    """The line under the table names the highlighted run: '<id>  <state>  <model> ...'."""
    return any(line.startswith(f" {run_id}  finished  ") for line in text.splitlines())


def cursor_latencies(tmux: Tmux, rounds: int) -> list[float]:
    """Down/Up between the rows r20-A and plain-20: the line under the table names the highlighted run."""
    out = []
    for _ in range(rounds):
        out.append(tmux.latency("Down", lambda t: _highlighted(t, "plain-20")))
        out.append(tmux.latency("Up", lambda t: _highlighted(t, "r20-A")))
    return out


def latency_study(rounds: int = 15) -> dict[str, list[float]]:
    """Key latency with no training, with a CLI run in another process, and with the run in this app."""
    tmp = Path(tempfile.mkdtemp(prefix="reslab-lat-"))
    runs = prepare(tmp)
    env = {"RESLAB_DATA": str(tmp / "no-data"), **private_dirs(tmp), "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
    tmux = Tmux(f"{sys.executable} tui_app.py --runs-dir {runs}", 100, 30, env, ROOT)
    out: dict[str, list[float]] = {}
    try:
        tmux.wait_text("? keys", 60)
        time.sleep(1.0)
        tmux.send("Down")     # broken-run -> r20-A
        tmux.wait_for(lambda t: _highlighted(t, "r20-A"), 10, "r20-A highlighted")
        out["idle"] = cursor_latencies(tmux, rounds)
        cfg = training_config()
        from core.store.runs import RunStore

        cli = RunStore(runs).create(cfg.with_overrides(name="cli-cpu", epochs=50))
        proc = subprocess.Popen([sys.executable, "tui_app.py", "resume", cli.id, "--runs-dir", str(runs)], cwd=ROOT,
                                env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while json.loads((runs / cli.id / "status.json").read_text()).get("step", 0) < 2:
                assert time.monotonic() < deadline, "the CLI run did not start"
                time.sleep(0.1)
            out["cli_process_training"] = cursor_latencies(tmux, rounds)
        finally:
            proc.terminate()
            proc.wait(60)
        # now train in the app: highlight live-cpu (last row) with the filter, press r, clear the filter
        tmux.send("/")
        tmux.wait_text("filter: words")
        tmux.send("-l", "live-cpu")
        tmux.send("Enter")
        tmux.wait_for(lambda t: "r20-A" not in t, 10, "the filter")
        tmux.send("r")
        tmux.wait_for(_training, 90, "in-app training")
        _wait_steps(runs, "live-cpu")
        tmux.send("Escape")
        tmux.wait_text("r20-A")
        for _ in range(20):      # the cursor stayed on live-cpu (last row): walk up to r20-A
            if _highlighted(tmux.capture(), "r20-A"):
                break
            tmux.send("Up")
            time.sleep(0.3)
        out["in_app_training"] = cursor_latencies(tmux, rounds)
    finally:
        tmux.close()
        shutil.rmtree(tmp, ignore_errors=True)
    for name, values in out.items():
        print(f"{name:>22}: median {statistics.median(values) * 1000:4.0f} ms, p90 "
              f"{sorted(values)[int(0.9 * len(values))] * 1000:4.0f} ms, max {max(values) * 1000:4.0f} ms "
              f"({len(values)} keys)")
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if "--latency" in sys.argv:
        latency_study()
    else:
        run_smoke()

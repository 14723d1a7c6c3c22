"""Key -> screen drawn, in a browser through `serve` against a terminal (tmux), on the same runs folder.

Measures the new-run form (``n``, back with backspace) and a run's detail (enter on the first row, back with
backspace), ``--rounds`` times each, in both front-ends, one after the other in this run, so the ratio compares like
with like. In the browser the time runs from Playwright's key press to the first websocket frame that holds the
answer (xterm.js draws it on its next animation frame); in the terminal from tmux send-keys to the first
capture-pane that shows it (every ~10 ms). Needs playwright and a system Chromium (as tests/web).

    python bench/serve_latency.py --rounds 8

Never part of the test suite: timings depend on the machine and its load (printed beside them).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.tmux_smoke import Tmux, private_dirs  # noqa: E402
from tests.web.test_serve import CHROMIUM, RECORD, free_port  # noqa: E402

ANSWERS = {"form": ("n", "New run"), "detail": ("Enter", "Run ")}
BACK = {"form": ("Escape", "Escape"), "detail": ("Backspace", "BSpace")}      # the form's fields take backspace


def browser_times(url: str, rounds: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {k: [] for k in ANSWERS}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(viewport={"width": 1300, "height": 800}).new_page()
        page.add_init_script(RECORD)
        page.goto(url)
        page.wait_for_function("() => window.__text().includes('? keys')", timeout=120_000)
        page.locator(".textual-terminal").click()
        page.wait_for_timeout(3000)                      # the app's preloads after the first draw
        for _ in range(rounds):
            for name, (key, needle) in ANSWERS.items():
                mark = page.evaluate("() => window.__frames.length")
                t0 = time.perf_counter()
                page.keyboard.press(key)
                page.wait_for_function(f"() => window.__frames.slice({mark}).join('').includes({json.dumps(needle)})",
                                       polling="raf", timeout=60_000)
                out[name].append(time.perf_counter() - t0)
                mark = page.evaluate("() => window.__frames.length")
                page.keyboard.press(BACK[name][0])
                page.wait_for_function(f"() => window.__frames.slice({mark}).join('').includes('? keys')",
                                       polling="raf", timeout=60_000)
                page.wait_for_timeout(300)
        browser.close()
    return out


def terminal_times(runs: Path, tmp: Path, rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {k: [] for k in ANSWERS}
    env = {**private_dirs(tmp), "PYTHONUNBUFFERED": "1"}
    tmux = Tmux(f"{sys.executable} tui_app.py --runs-dir {runs}", 130, 40, env, ROOT)
    try:
        tmux.wait_text("? keys", 120)
        time.sleep(3)
        for _ in range(rounds):
            for name, (key, needle) in ANSWERS.items():
                t0 = time.perf_counter()
                tmux.send(key)
                tmux.wait_for(lambda t, n=needle: n in t and "? keys" not in t.splitlines()[0], 60, name)
                out[name].append(time.perf_counter() - t0)
                tmux.send(BACK[name][1])
                tmux.wait_for(lambda t: "? keys" in t.splitlines()[0], 60, "the runs table")
                time.sleep(0.3)
    finally:
        subprocess.run(tmux.base + ["kill-server"], capture_output=True)
        shutil.rmtree(tmux.socket_dir, ignore_errors=True)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    from tests.ui.fixtures import populate

    tmp = Path(tempfile.mkdtemp(prefix="reslab-serve-latency-"))
    runs = tmp / "runs"
    populate(runs)
    os.environ.update(private_dirs(tmp))
    port = free_port()
    load_before = os.getloadavg()
    proc = subprocess.Popen([sys.executable, "tui_app.py", "serve", "--port", str(port), "--runs-dir", str(runs)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        web = browser_times(f"http://127.0.0.1:{port}/", args.rounds)
    finally:
        proc.terminate()
        proc.wait(20)
    term = terminal_times(runs, tmp, args.rounds)
    result = {}
    for name in ANSWERS:
        b, t = statistics.median(web[name]) * 1e3, statistics.median(term[name]) * 1e3
        result[name] = {"browser_ms": round(b), "terminal_ms": round(t), "ratio": round(b / t, 2)}
        print(f"{name:<7} browser median {b:6.0f} ms (max {max(web[name]) * 1e3:.0f})   terminal median {t:6.0f} ms "
              f"(max {max(term[name]) * 1e3:.0f})   browser/terminal {b / t:.2f}x")
    print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; {args.rounds} rounds")
    print(json.dumps(result))
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

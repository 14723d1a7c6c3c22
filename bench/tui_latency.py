"""How fast the TUI answers in a real terminal while a run trains in the app: tmux send-keys in, capture-pane out.

Measured at each terminal size (default 100x30 and 80x24), with a ResNet-20 (width 16, batch 128, synthetic
images) training on the CPU inside the app, the way a user on a small machine meets it:

* form open: ``n`` on the runs table until the form shows its depth field (first opening, then reopenings);
* clone: ``n`` on a run's detail screen until its form shows;
* type-ahead: ``n`` and ``5 6`` sent in one burst: where the digits end up (the depth field should read 56);
* burst: ``BSpace BSpace BSpace 9`` sent at once into the lr field holding 0.1 (should read 9);
* keys: a digit typed into the depth field until it shows, and Down/Up on the runs table until the line under the
  table names the new row.

Times are from send-keys to the first capture-pane that shows the answer (capture every ~10 ms), so they include
tmux's own round trip (a few ms). Printed: median, p90 and max per measure, and one JSON line.

    python bench/tui_latency.py                      # both sizes, 6 rounds each (~3 minutes on 2 cores)
    python bench/tui_latency.py --sizes 100x30 --rounds 10

Never part of the test suite (timings depend on the machine and its load); tests/ui/test_form.py holds the
behaviour (type-ahead, bursts, selection) under Pilot.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.ui.tmux_smoke import Tmux, _training, _wait_steps, filter_to_live_run, prepare, private_dirs  # noqa: E402

FORM_READY = re.compile(r"^\s*depth\s+\S", re.M)      # the form's depth row with its value


def field_value(text: str, name: str) -> str | None:
    m = re.search(rf"^\s*{name}\s+(\S*)", text, re.M)
    return m.group(1) if m else None


def runs_screen(text: str) -> bool:
    return "? keys" in text


def form_shown(text: str) -> bool:
    return text.lstrip().startswith("New run") and bool(FORM_READY.search(text))


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return (f"median {statistics.median(ms):5.0f} ms  p90 {ms[min(len(ms) - 1, int(0.9 * len(ms)))]:5.0f} ms  "
            f"max {ms[-1]:5.0f} ms  ({len(ms)})")


def start_training(tmux: Tmux, runs: Path, screens: dict) -> None:
    """Filter the table to the queued run, press r (it trains in the app), clear the filter."""
    filter_to_live_run(tmux)
    tmux.send("r")
    tmux.wait_for(_training, 120, "in-app training")
    screens["runs, a notification"] = tmux.capture()      # "resuming live-cpu in this app"
    _wait_steps(runs, "live-cpu")
    tmux.send("Escape")
    tmux.wait_text("r20-A")


def measure_size(width: int, height: int, rounds: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reslab-bench-"))
    runs = prepare(tmp)
    env = {"RESLAB_DATA": str(tmp / "no-data"), "TERM": "xterm-256color", "PYTHONPATH": str(ROOT), **private_dirs(tmp)}
    tmux = Tmux(f"{sys.executable} tui_app.py --runs-dir {runs}", width, height, env, ROOT)
    out: dict = {"size": f"{width}x{height}", "form_open_first_s": None, "form_open_s": [], "clone_open_s": [],
                 "key_in_form_s": [], "table_key_s": [], "screens": {}}
    try:
        tmux.wait_for(runs_screen, 60, "the runs table")
        time.sleep(2.0)     # the app settles (torch import in the background)
        start_training(tmux, runs, out["screens"])
        time.sleep(1.0)
        out["form_open_first_s"] = tmux.latency("n", form_shown, 20)
        out["screens"]["form"] = tmux.capture()
        for _ in range(rounds):
            tmux.send("Escape")
            tmux.wait_for(runs_screen, 10, "the runs table")
            time.sleep(0.3)
            out["form_open_s"].append(tmux.latency("n", form_shown, 20))
        # keys typed into the depth field while training
        for i in range(rounds):
            before = field_value(tmux.capture(), "depth")
            digit = str(i % 10)
            out["key_in_form_s"].append(tmux.latency(digit, lambda t, b=before: field_value(t, "depth") != b))
        tmux.send("Escape")
        tmux.wait_for(runs_screen, 10, "the runs table")
        time.sleep(0.3)
        # type-ahead: n and two digits in one burst
        tmux.send("n", "5", "6")
        tmux.wait_for(form_shown, 20, "the form")
        time.sleep(0.5)
        out["type_ahead_depth"] = field_value(tmux.capture(), "depth")
        # a burst of edits into lr (0.1)
        tmux.send("Escape")
        tmux.wait_for(runs_screen, 10, "the runs table")
        # table cursor keys while training
        for _ in range(rounds):
            for key in ("Up", "Down"):      # the cursor is on the last row (the training run)
                before = _current(tmux.capture())
                out["table_key_s"].append(tmux.latency(key, lambda t, b=before: _current(t) not in (None, b)))
        # clone from a finished run's detail (r20-A)
        for _ in range(rounds):
            _highlight(tmux, "r20-A")
            tmux.send("Enter")
            tmux.wait_text("Run r20-A", 10)
            out["clone_open_s"].append(tmux.latency("n", form_shown, 20))
            tmux.send("Escape")
            tmux.wait_for(runs_screen, 10, "the runs table")
        out["burst_lr"] = _burst(tmux)
        tmux.send("Escape")
        tmux.wait_for(runs_screen, 10, "the runs table")
        _highlight(tmux, "live-cpu", "Down")
        tmux.send("Enter")
        tmux.wait_text("Monitor live-cpu", 10)
        time.sleep(2.0)
        out["screens"]["monitor"] = tmux.capture()
    finally:
        tmux.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _current(text: str) -> str | None:
    """The run named by the line under the table (the highlighted row)."""
    for line in text.splitlines():
        m = re.match(r"^ (\S+)  (finished|stopped|failed|running|queued|damaged|paused)\b", line)
        if m:
            return m.group(1)
    return None


def _highlight(tmux: Tmux, run_id: str, key: str = "Up") -> None:
    for _ in range(20):
        if _current(tmux.capture()) == run_id:
            return
        tmux.send(key)
        time.sleep(0.15)
    raise AssertionError(f"could not highlight {run_id}; the screen shows:\n{tmux.capture()}")


def _burst(tmux: Tmux) -> str | None:
    """Open the form, Tab to lr (it holds 0.1; the help panel under the form names the focused field), then
    BSpace x3 and 9 in one send-keys."""
    tmux.send("n")
    tmux.wait_for(form_shown, 20, "the form")
    for _ in range(12):
        if _focused_is_lr(tmux.capture()):
            break
        tmux.send("Tab")
        time.sleep(0.3)
    else:
        return None
    tmux.send("BSpace", "BSpace", "BSpace", "9")
    time.sleep(1.0)
    return field_value(tmux.capture(), "lr")


def _focused_is_lr(text: str) -> bool:
    """The focus-help panel (terminals under 110 columns) names lr as the focused field."""
    return any(line.strip().startswith("lr: ") for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100x30,80x24")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--screens", action="store_true", help="print the captured screens too")
    args = ap.parse_args(argv)
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    results = []
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        r = measure_size(w, h, args.rounds)
        results.append(r)
        print(f"== {r['size']} while a ResNet-20 trains in the app (CPU)")
        print(f"  form open, first      {r['form_open_first_s'] * 1000:5.0f} ms")
        print(f"  form open, again      {summary(r['form_open_s'])}")
        print(f"  clone from detail     {summary(r['clone_open_s'])}")
        print(f"  key in a form field   {summary(r['key_in_form_s'])}")
        print(f"  Down/Up in the table  {summary(r['table_key_s'])}")
        print(f"  type-ahead 'n 5 6'    depth field reads {r['type_ahead_depth']!r} (want '56')")
        print(f"  burst BSpace x3 9     lr field reads {r['burst_lr']!r} (want '9')")
    if args.screens:
        for r in results:
            for name, text in r["screens"].items():
                print(f"--- {r['size']}: {name} ---\n{text}")
    print(json.dumps([{k: v for k, v in r.items() if k != "screens"} for r in results]))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

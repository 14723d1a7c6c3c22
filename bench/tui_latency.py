"""How fast the TUI answers in a real terminal: tmux send-keys in, capture-pane out (issue 21, points 4 and 10).

Measured at each terminal size (default 100x30 and 80x24). Three groups of measures (``--measures``):

* ``startup``: from the command (tmux new-session running ``tui_app.py``) to the runs table drawn with its rows, a
  fresh process each round; with ``--runs N`` also in a folder of N finished runs (tests/ui/fixtures.write_run, as
  bench/many_runs.py makes them), then the idle CPU of the TUI process over ``--idle-s`` seconds once every folder
  is read (utime+stime from /proc/PID/stat) and its resident memory;
* ``screens``: key -> screen drawn with its content, while a ResNet-20 (width 16, batch 128, synthetic images)
  trains on the CPU inside the app: the form (``n``), a run's detail (enter), compare (``c`` with two runs
  marked), the queue and devices (``g``), the keys (``?``), and back to the runs table (escape) from each;
* ``form``: the form in detail while the run trains: first opening, clone from a detail screen, a key typed into a
  field, Down/Up in the table, type-ahead (``n 5 6`` in one burst) and a burst of edits.

Times are from send-keys (or new-session) to the first capture-pane that shows the answer (capture every ~10 ms),
so they include tmux's own round trip (a few ms). Printed: median, p90 and max per measure, the load average
before and after, and one JSON line.

    python bench/tui_latency.py --measures startup,screens --runs 2000 --rounds 4   # 161 s on 2 busy cores
    python bench/tui_latency.py                     # all three groups, 6 rounds (~7 minutes)
    python bench/tui_latency.py --sizes 100x30 --measures screens --rounds 10

Never part of the test suite (timings depend on the machine and its load); tests/ui/ holds the behaviour
(type-ahead, bursts, the table drawn before torch is imported) under Pilot.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
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


def measure_form(width: int, height: int, rounds: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reslab-bench-"))
    runs = prepare(tmp)
    tmux = Tmux(_command(runs), width, height, _env(tmp), APP)
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




# -- start-up, and a lab's folder of many runs -------------------------------------------------------------------------
APP = ROOT        # the checkout whose tui_app.py runs (--app-root: another one, e.g. a copy of main, to compare)


def _command(runs: Path) -> str:
    return f"{sys.executable} {APP / 'tui_app.py'} --runs-dir {runs}"


def _env(tmp: Path) -> dict[str, str]:
    # ESCDELAY: how long Textual waits after a lone ESC byte for the rest of an escape sequence (100 ms by default),
    # part of every Escape key's time; passed on when set, to tell it apart from the app's own time
    escdelay = {"ESCDELAY": os.environ["ESCDELAY"]} if "ESCDELAY" in os.environ else {}
    return {"RESLAB_DATA": str(tmp / "no-data"), "TERM": "xterm-256color", "PYTHONPATH": str(APP),
            **private_dirs(tmp), **escdelay}


def table_drawn(text: str) -> bool:
    """The runs table with its rows: the title, and the line under the table naming the highlighted run."""
    return runs_screen(text) and _current(text) is not None


def make_many(root: Path, n: int) -> None:
    """n finished runs, as bench/many_runs.py makes them."""
    from tests.ui.fixtures import quick, write_run

    root.mkdir(parents=True)
    for i in range(n):
        write_run(root, f"r{i:05d}", quick(depth=20, seed=i % 5), "finished", epochs_done=12,
                  final_test=8 + (i % 7) / 10, order=i)


def startup_rounds(runs: Path, tmp: Path, width: int, height: int, rounds: int) -> list[float]:
    """Seconds from the command to the runs table drawn, a fresh process (and tmux server) each round."""
    out = []
    for _ in range(rounds):
        t0 = time.monotonic()
        tmux = Tmux(_command(runs), width, height, _env(tmp), APP)
        try:
            tmux.wait_for(table_drawn, 60, "the runs table")
            out.append(time.monotonic() - t0)
        finally:
            tmux.close()
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")     # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def many_runs(n: int, width: int, height: int, rounds: int, idle_s: float) -> dict:
    """Start-up in a folder of n runs, then (in the last round's process) the time until every folder is read and
    the TUI's idle CPU over idle_s seconds."""
    tmp = Path(tempfile.mkdtemp(prefix="reslab-bench-many-"))
    runs = tmp / "runs"
    try:
        t0 = time.monotonic()
        make_many(runs, n)
        print(f"  (made {n} run folders in {time.monotonic() - t0:.1f} s)", flush=True)
        out: dict = {"runs": n, "startup_s": startup_rounds(runs, tmp, width, height, rounds)}
        t0 = time.monotonic()
        tmux = Tmux(_command(runs), width, height, _env(tmp), APP)
        try:
            tmux.wait_for(table_drawn, 60, "the runs table")
            tmux.wait_text(f"{n} run(s)", 120)
            out["all_read_s"] = time.monotonic() - t0
            pid = int(subprocess.run(tmux.base + ["display-message", "-p", "-t", tmux.name, "#{pane_pid}"],
                                     capture_output=True, text=True, check=True).stdout)
            time.sleep(3.0)       # torch's import in the background ends (it is not idle work)
            c0, w0 = _cpu_seconds(pid), time.monotonic()
            time.sleep(idle_s)
            out["idle_cpu_pct"] = 100 * (_cpu_seconds(pid) - c0) / (time.monotonic() - w0)
            out["rss_mb"] = _rss_mb(pid)
        finally:
            tmux.close()
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure_startup(width: int, height: int, rounds: int, many: int, idle_s: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reslab-bench-"))
    try:
        runs = tmp / "runs"
        from tests.ui.fixtures import populate

        populate(runs)
        out: dict = {"size": f"{width}x{height}", "startup_s": startup_rounds(runs, tmp, width, height, rounds)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if many:
        out["many"] = many_runs(many, width, height, max(2, rounds // 2), idle_s)
    return out


# -- key -> screen -----------------------------------------------------------------------------------------------------
BACK_KEY = "Escape"   # --back-key BSpace: the other key back (Textual delivers a lone Escape only once its input
                      # loop has waited for the rest of a possible escape sequence: up to ~0.1 s)
SCREENS = {     # key, what shows the screen drawn with its content, the text that is gone once it is left
    "form": ("n", form_shown, "New run"),
    "detail": ("Enter", lambda t: t.lstrip().startswith("Run r20-A") and "test" in t and "epoch" in t, "Run r20-A"),
    "compare": ("c", lambda t: t.lstrip().startswith("Compare 2 runs") and "plain-20" in t, "Compare 2 runs"),
    "queue": ("g", lambda t: t.lstrip().startswith("Queue & devices") and "cpu" in t, "Queue & devices"),
    "help": ("?", lambda t: "Keys: runs" in t and "Focus Next" in t, "Keys: runs"),
}


def _goto(tmux: Tmux, run_id: str) -> None:
    """Move the table's cursor to run_id, one Up or Down at a time (as the table's rows say), each waited for."""
    for _ in range(30):
        text = tmux.capture()
        rows = [m.group(1) for m in re.finditer(
            r"^ [ ●]  (\S+)\s+(?:finished|stopped|failed|running|queued|damaged|paused)", text, re.M)]
        now = _current(text)
        if now == run_id:
            return
        if now not in rows or run_id not in rows:
            time.sleep(0.1)
            continue
        tmux.send("Down" if rows.index(run_id) > rows.index(now) else "Up")
        try:
            tmux.wait_for(lambda t, b=now: _current(t) not in (None, b), 5, "the cursor to move")
        except AssertionError:
            pass
    raise AssertionError(f"could not highlight {run_id}; the screen shows:\n{tmux.capture()}")


def measure_screens(width: int, height: int, rounds: int, train: bool = True) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="reslab-bench-"))
    runs = prepare(tmp)
    tmux = Tmux(_command(runs), width, height, _env(tmp), APP)
    out: dict = {"size": f"{width}x{height}", "training": train, "screens": {},
                 **{f"{name}_s": [] for name in SCREENS}, "back_s": []}
    try:
        tmux.wait_for(table_drawn, 60, "the runs table")
        time.sleep(2.0)     # the app settles (torch import in the background)
        if train:
            start_training(tmux, runs, out["screens"])
        for n, run_id in enumerate(("plain-20", "r20-A"), 1):      # the two runs compared
            _goto(tmux, run_id)
            tmux.send("space")
            tmux.wait_text(f"{n} marked", 10)
        _goto(tmux, "r20-A")
        time.sleep(1.0)
        for i in range(rounds):
            for name, (key, shown, marker) in SCREENS.items():
                out[f"{name}_s"].append(tmux.latency(key, shown, 20))
                if i == 0:
                    out["screens"][name] = tmux.capture()
                time.sleep(0.3)
                back = "Escape" if name == "form" else BACK_KEY     # in the form, BSpace edits the focused field
                out["back_s"].append(tmux.latency(back, lambda t, m=marker: table_drawn(t) and m not in t, 20))
                _goto(tmux, "r20-A")
                time.sleep(0.3)
    finally:
        tmux.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100x30,80x24")
    ap.add_argument("--measures", default="startup,screens,form", help="any of startup, screens, form")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--runs", type=int, default=0, help="also start up in a folder of this many runs (at the "
                    "first size) and measure the idle CPU there")
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--idle", action="store_true", help="screens with no run training in the app")
    ap.add_argument("--app-root", type=Path, help="run this checkout's tui_app.py (e.g. `git worktree add /tmp/main "
                    "main`) instead of this one's: a before/after on the same machine")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--screens", action="store_true", help="print the captured screens too")
    ap.add_argument("--back-key", default="Escape", help="the key back to the runs table (Escape or BSpace; the "
                    "form is always left with Escape)")
    args = ap.parse_args(argv)
    global BACK_KEY
    BACK_KEY = args.back_key
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    measures = set(args.measures.split(","))
    global APP
    APP = args.app_root.resolve() if args.app_root else ROOT
    results: list[dict] = []
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average before: {' '.join(load_before)}", flush=True)
    for n, size in enumerate(args.sizes.split(",")):
        w, h = map(int, size.split("x"))
        r: dict = {"size": size, "screens": {}}
        if "startup" in measures:
            r["startup"] = measure_startup(w, h, args.rounds, args.runs if n == 0 else 0, args.idle_s)
            print(f"== {size} start-up: the command to the runs table drawn")
            print(f"  fixture folder (7 runs)   {summary(r['startup']['startup_s'])}")
            if "many" in r["startup"]:
                m = r["startup"]["many"]
                print(f"  {m['runs']} runs                {summary(m['startup_s'])}")
                print(f"  {m['runs']} runs, every folder read after {m['all_read_s']:.1f} s; idle CPU over "
                      f"{args.idle_s:.0f} s: {m['idle_cpu_pct']:.2f}% of a core; resident {m['rss_mb']:.0f} MB")
        if "screens" in measures:
            s = measure_screens(w, h, args.rounds, train=not args.idle)
            r["screens"].update(s.pop("screens"))
            r["screens_s"] = s
            print(f"== {size} key -> screen drawn" + (" (idle)" if args.idle else
                                                      ", while a ResNet-20 trains in the app (CPU)"))
            for name, (key, _, _) in SCREENS.items():
                print(f"  {name:8} ({key:5})      {summary(s[f'{name}_s'])}")
            print(f"  back   ({BACK_KEY:<6})      {summary(s['back_s'])}")
        if "form" in measures:
            f = measure_form(w, h, args.rounds)
            r["screens"].update(f.pop("screens"))
            r["form"] = f
            print(f"== {size} the form, while a ResNet-20 trains in the app (CPU)")
            print(f"  form open, first      {f['form_open_first_s'] * 1000:5.0f} ms")
            print(f"  form open, again      {summary(f['form_open_s'])}")
            print(f"  clone from detail     {summary(f['clone_open_s'])}")
            print(f"  key in a form field   {summary(f['key_in_form_s'])}")
            print(f"  Down/Up in the table  {summary(f['table_key_s'])}")
            print(f"  type-ahead 'n 5 6'    depth field reads {f['type_ahead_depth']!r} (want '56')")
            print(f"  burst BSpace x3 9     lr field reads {f['burst_lr']!r} (want '9')")
        results.append(r)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average after: {' '.join(load_after)}")
    if args.screens:
        for r in results:
            for name, text in r["screens"].items():
                print(f"--- {r['size']}: {name} ---\n{text}")
    figures = [{k: v for k, v in r.items() if k != "screens"} for r in results]
    print(json.dumps({"load_before": load_before, "load_after": load_after, "sizes": figures}))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Text output of the CLI: the `runs` list in four formats and the `show` page (figures from core.util.formatting).

Rich renders tables; on a pipe or file it writes no control codes (colour and styles are only used on a
terminal), so `runs > list.txt` stays plain text.
"""
from __future__ import annotations

import csv
import io
import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from core.spec.field_help import GROUPS
from core.store.reader import escape_controls
from core.store.runs import Run, RunInfo, run_folder_note, run_summary_row
from core.util.files import kind_of
from core.util.formatting import (
    decimals,
    devices_text,
    duration,
    epochs_text,
    is_number,
    mem,
    num,
    one_line,
    pct,
    rate,
    state_style,
    world_text,
)


def console(file=None, *, width: int | None = None):
    """A rich Console: styled on a terminal, plain (no escape codes) and wide on a pipe or file."""
    from rich.console import Console

    file = file or sys.stdout
    tty = hasattr(file, "isatty") and file.isatty()
    return Console(file=file, width=width if tty or width else 200, highlight=False, soft_wrap=False)


# -- `runs` ------------------------------------------------------------------------------------------------------------
COLUMNS = ("id", "depth", "shortcut", "width", "optimizer", "schedule", "epochs", "final err", "best err",
           "paper err", "status", "duration", "note")


def list_rows(infos: Iterable[RunInfo]) -> list[dict[str, Any]]:
    """run_summary_row for each run (RunStore.list and read_info have made unreadable folders damaged runs)."""
    return [run_summary_row(info) for info in infos]


def _display_cells(row: dict[str, Any]) -> list[str]:
    return [str(row.get("id", "")), _txt(row.get("depth")), _txt(row.get("shortcut")), _txt(row.get("width")),
            _txt(row.get("optimizer")), _txt(row.get("schedule")),
            epochs_text(row.get("epochs_done"), row.get("total_epochs")), pct(row.get("final_test_err")),
            pct(row.get("best_test_err")), pct(row.get("paper_err")),
            str(row.get("status", "")) + world_text(row.get("world_size")),
            duration(row.get("duration_s")), one_line(row.get("error") or row.get("slurm"))]


def _txt(value: Any) -> str:
    return "-" if value is None else str(value)


def render_runs(rows: list[dict[str, Any]], fmt: str, out=None, runs_dir: Path | None = None) -> None:
    out = out or sys.stdout
    if fmt == "json":
        json.dump(rows, out, indent=1, default=str)
        out.write("\n")
    elif fmt == "csv":
        keys = list(rows[0]) if rows else ["id", "depth", "shortcut", "width", "optimizer", "schedule",
                                           "epochs_done", "total_epochs", "final_test_err", "best_test_err",
                                           "paper_err", "status", "duration_s", "images_per_s", "error"]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        out.write(buf.getvalue())
    elif fmt == "markdown":
        out.write("| " + " | ".join(COLUMNS) + " |\n")
        out.write("|" + "|".join("---" for _ in COLUMNS) + "|\n")
        for row in rows:
            out.write("| " + " | ".join(c.replace("|", "\\|") for c in _display_cells(row)) + " |\n")
    else:
        from rich import box
        from rich.table import Table

        con = console(out)
        if not rows:
            con.print(f"no runs in {runs_dir}" if runs_dir else "no runs", markup=False)
            if runs_dir and (note := run_folder_note(runs_dir)):
                con.print(note, markup=False)
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        varies = any("varies" in r for r in rows)       # `runs --sweep NAME`: what the sweep varies, last
        for col in COLUMNS + (("varies",) if varies else ()):
            table.add_column(col, justify="right" if col in ("depth", "width", "epochs", "final err", "best err",
                                                             "paper err", "duration") else "left",
                             no_wrap=col != "note", overflow="fold")
        for row in rows:
            cells = _display_cells(row) + ([str(row.get("varies", ""))] if varies else [])
            style = state_style(cells[10])
            cells[10] = f"[{style}]{cells[10]}[/]" if style and con.is_terminal else cells[10]
            table.add_row(*(c if i == 10 else _escape(c) for i, c in enumerate(cells)))
        con.print(table)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _loss(value: Any) -> str:
    return decimals(value, 4)


# -- `show` ------------------------------------------------------------------------------------------------------------
EPOCH_COLUMNS = (("epoch", "epoch", _txt), ("train loss", "train_loss", _loss), ("train err", "train_err", pct),
                 ("test loss", "test_loss", _loss), ("test err", "test_err", pct), ("val err", "val_err", pct),
                 ("lr", "lr", num), ("seconds", "seconds", lambda v: decimals(v, 2)), ("img/s", "images_per_s", rate))


def show_data(run: Run, info: RunInfo) -> dict[str, Any]:
    """Everything `show` prints, as plain data (also the --json output)."""
    files: dict[str, int | str] = {}   # name -> bytes; or what it is instead of a file ("symbolic link", ...)
    try:
        entries = sorted(os.scandir(run.path), key=lambda e: e.name)
    except OSError:
        entries = []
    for entry in entries:
        if not entry.name.startswith("."):
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            files[escape_controls(entry.name)] = st.st_size if stat.S_ISREG(st.st_mode) else kind_of(st.st_mode)
    return {"id": info.id, "path": str(run.path.resolve()), "state": info.state, "damaged": info.damaged or None,
            "config": info.config.to_dict() if info.config else None, "status": info.status,
            "summary": list_rows([info])[0], "epochs": info.epochs, "files": files,
            "events": run.read_events(tail=10)}


def render_show(data: dict[str, Any], out=None) -> None:
    from rich import box
    from rich.table import Table

    con = console(out)
    s = data["summary"]
    st = data["status"] or {}
    con.print(f"run {data['id']}", markup=False)
    con.print(f"  folder   {data['path']}", markup=False)
    con.print(f"  state    {data['state']}", markup=False)
    if data["damaged"] or st.get("error"):
        con.print(f"  {'damaged' if data['damaged'] else 'error':<8} {s['error']}", markup=False)
    if data["config"]:
        total_steps = st.get("total_steps")
        con.print(f"  progress epoch {s.get('epochs_done')}/{s.get('total_epochs')}, step {st.get('step', 0)}"
                  f"/{total_steps if total_steps else '?'}", markup=False)
        con.print(f"  test err final {pct(s.get('final_test_err'))}, best {pct(s.get('best_test_err'))}, "
                  f"paper {pct(s.get('paper_err'))}", markup=False)
    extras = [("device", devices_text(st) if st.get("device") else None),
              ("images/s", rate(st.get("images_per_s")) if st.get("images_per_s") else None),
              ("duration", duration(st.get("elapsed_s")) if st.get("elapsed_s") is not None else None),
              ("peak mem", mem(st.get("peak_mem_bytes")) if st.get("peak_mem_bytes") else None),
              ("host/pid", f"{st.get('host', '?')}/{st.get('pid')}" if st.get("pid") else None),
              ("job", s.get("slurm")),
              ("heartbeat", f"{duration(time.time() - float(st['updated_at']))} ago"
               if is_number(st.get("updated_at")) and data["state"] in ("running", "paused", "crashed") else None)]
    for key, value in extras:
        if value:
            con.print(f"  {key:<8} {escape_controls(str(value))}", markup=False)
    if data["config"]:
        con.print("\nconfig")
        cfg = data["config"]
        for group, names in GROUPS.items():
            items = "  ".join(f"{n}={_cfg_text(cfg.get(n))}" for n in names if n in cfg)
            con.print(f"  {group:<13} {items}", markup=False)
    if data["epochs"]:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title="epochs", title_justify="left")
        has_val = any("val_err" in r for r in data["epochs"])
        cols = [c for c in EPOCH_COLUMNS if has_val or c[1] != "val_err"]
        for title, _, _ in cols:
            table.add_column(title, justify="right")
        for row in data["epochs"]:
            table.add_row(*(fmt(row.get(key)) for _, key, fmt in cols))
        con.print()
        con.print(table)
    else:
        con.print("\nno epoch finished yet")
    con.print("\nfiles")
    wide = max([14, *map(len, data["files"])])
    for name, size in data["files"].items():
        con.print(f"  {name:<{wide}} {size:>12,} bytes" if isinstance(size, int) else f"  {name:<{wide}} ({size})",
                  markup=False)
    if data["events"]:
        con.print("\nlast events")
        for line in data["events"]:
            con.print(f"  {line}", markup=False)


def _cfg_text(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "-"
    if value == "":
        return "''"
    return escape_controls(str(value))

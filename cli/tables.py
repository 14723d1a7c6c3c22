"""Text output of the CLI: the `runs` list in four formats and the `show` page (figures from core.util.formatting).

Rich renders tables; on a pipe or file it writes no control codes (colour and styles are only used on a
terminal), so `runs > list.txt` stays plain text.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import os
import stat
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.spec.field_help import GROUPS
from core.store.index_rows import json_line, loads
from core.store.reader import escape_controls
from core.store.runs import Run, RunInfo, run_folder_note, run_summary_row
from core.util.files import kind_of
from core.util.formatting import (
    decimals,
    depth_text,
    devices_text,
    duration,
    epochs_text,
    is_number,
    mem,
    num,
    one_line,
    pct,
    rate,
    short_ids,
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


# what stays when the terminal is narrow: columns drop from the end of this list; a number is shown whole or not at all
PRIORITY = ("id", "status", "final err", "paper err", "varies", "epochs", "depth", "best err", "shortcut", "width",
            "duration",
            "optimizer", "schedule", "note")
NUMERIC = ("depth", "width", "epochs", "final err", "best err", "paper err", "duration")
MIN_ID, MIN_NOTE = 14, 12
GAP = 3     # rich's SIMPLE_HEAD box: one cell of padding each side of a column and a (blank) divider between


def natural_widths(rows: list[list[str]], columns: tuple[str, ...] = COLUMNS) -> dict[str, int]:
    return {col: max(len(col), max((len(r[i]) for r in rows), default=0)) for i, col in enumerate(columns)}


def fit_columns(rows: list[list[str]], width: int, columns: tuple[str, ...] = COLUMNS,
                natural: dict[str, int] | None = None) -> tuple[list[str], int]:
    """The columns that fit a terminal of ``width`` cells, whole, and the width run ids are shortened to. Ids
    shrink (in the middle, each still told apart) before a column is dropped; the note wraps in what is left.
    ``natural``: ``natural_widths`` of the rows, where the caller has them."""
    natural = natural or natural_widths(rows, columns)
    keep = [c for c in PRIORITY if c in columns]
    while True:
        fixed = sum(natural[c] for c in keep if c not in ("id", "note")) + GAP * (len(keep) - 1)
        room = width - fixed - (MIN_NOTE if "note" in keep and natural["note"] > len("note") else 0)
        id_width = min(natural["id"], room)
        if id_width >= min(MIN_ID, natural["id"]) or len(keep) <= 2:
            if "note" in keep and natural["note"] <= len("note"):   # no run has a note: the column is noise
                keep.remove("note")
            return [c for c in columns if c in keep], max(id_width, MIN_ID)
        keep.pop()


def list_rows(infos: Iterable[RunInfo]) -> list[dict[str, Any]]:
    """run_summary_row for each run (RunStore.list and read_info have made unreadable folders damaged runs)."""
    return [run_summary_row(info) for info in infos]


def _display_cells(row: dict[str, Any]) -> list[str]:
    return [str(row.get("id", "")), depth_text(row), _txt(row.get("shortcut")), _txt(row.get("width")),
            _txt(row.get("optimizer")), _txt(row.get("schedule")),
            epochs_text(row.get("epochs_done"), row.get("total_epochs")), pct(row.get("final_test_err")),
            pct(row.get("best_test_err")), pct(row.get("paper_err")),
            str(row.get("status", "")) + world_text(row.get("world_size")),
            duration(row.get("duration_s")), one_line(row.get("error") or row.get("slurm") or row.get("phase"))]


def render_lines(lines: list[str], fmt: str, out=None, runs_dir: Path | None = None) -> None:
    """``render_runs`` of rows given as lines of JSON (``RunStore.summary_lines``): ``--format json`` writes them as
    they are where ``out`` takes any character."""
    out = out or sys.stdout
    if fmt == "json" and lines and _any_character(out):
        out.write("[\n" + ",\n".join(lines) + "\n]\n")
        return
    render_runs([loads(line) for line in lines], fmt, out, runs_dir)


def _any_character(out) -> bool:
    encoding = getattr(out, "encoding", None)
    return encoding is None or codecs.lookup(encoding).name == "utf-8"


def _json_lines(rows: list[dict[str, Any]], out) -> list[str]:
    """Each row as a ``json_line`` (by orjson where installed: 10,000 rows in 0.02 s) where ``out`` takes any
    character, else by the json module's C encoder, non-ASCII escaped (0.1-0.2 s). Rows hold no NaN (a file with one
    is damaged), so both write the same values."""
    if _any_character(out):
        return [json_line(row) for row in rows]
    return [json.dumps(row, default=str) for row in rows]


def _txt(value: Any) -> str:
    return "-" if value is None else str(value)


def render_runs(rows: list[dict[str, Any]], fmt: str, out=None, runs_dir: Path | None = None) -> None:
    out = out or sys.stdout
    if fmt == "json":       # a row a line (json.dump with indent: 2.5 s for 10,000 runs)
        out.write("[\n" + ",\n".join(_json_lines(rows, out)) + "\n]\n" if rows else "[]\n")
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
        con = console(out)
        if not rows:
            con.print(f"no runs in {runs_dir}" if runs_dir else "no runs", markup=False)
            if runs_dir and (note := run_folder_note(runs_dir)):
                con.print(note, markup=False)
            return
        varies = any("varies" in r for r in rows)       # `runs --sweep NAME`: what each run of the sweep varies
        columns = COLUMNS + (("varies",) if varies else ())
        all_cells = [_display_cells(row) + ([str(row.get("varies", ""))] if varies else []) for row in rows]
        natural = natural_widths(all_cells, columns)
        cols, id_width = fit_columns(all_cells, con.width, columns, natural)
        shown = short_ids([cells[0] for cells in all_cells], id_width)
        natural |= {"id": max(len(s) for s in shown.values())}
        at = [columns.index(col) for col in cols]
        cells = [[shown[c[0]], *(c[i] for i in at[1:])] if at[0] == 0 else [c[i] for i in at] for c in all_cells]
        status_at = columns.index("status")
        styles = [state_style(c[status_at]) for c in all_cells]
        if not _print_table(con, out, cols, cells, styles, natural):
            _print_rich_table(con, cols, cells, styles, natural)
        dropped = [c for c in columns if c not in cols]
        if dropped and con.is_terminal:
            con.print(f"(not shown at this width: {', '.join(dropped)}; --format json has every field)",
                      style="dim", markup=False)


def _print_table(con, out, cols: list[str], cells: list[list[str]], styles: list[str],
                 natural: dict[str, int]) -> bool:
    """The table as rich's SIMPLE_HEAD table without edges lays it out (``_print_rich_table``), written line by line:
    rich measured and rendered each of 2,000 runs' 12 cells (~3 s); this takes ~0.1 s for 10,000, a column at a time
    (a column of ASCII text is measured and padded by str's own methods). False (nothing written) when the columns
    do not fit the width even with the note wrapped: rich then squeezes them its own way."""
    from rich.cells import cell_len

    columns = [list(values) for values in zip(*cells)] if cells else [[] for _ in cols]
    ascii_only = ["".join(values).isascii() for values in columns]
    widths = [max(natural[col] if col != "note" else 0, cell_len(col),
                  max(map(len if ascii_only[i] else cell_len, columns[i]), default=0)) for i, col in enumerate(cols)]
    room = con.width - sum(w for w, col in zip(widths, cols) if col != "note") - GAP * (len(cols) - 1)
    if "note" in cols:
        note = cols.index("note")
        widths[note] = min(widths[note], room)
        if widths[note] < len("note"):
            return False
    elif room < 0:
        return False
    from rich.text import Text

    right = [col in NUMERIC for col in cols]
    status = cols.index("status") if "status" in cols else -1
    wrap = {}      # row -> the note's lines, where it needs more than one
    if "note" in cols:
        for n, text in enumerate(columns[note]):
            if cell_len(text) > widths[note]:
                wrap[n] = [line.plain for line in Text(text).wrap(con, widths[note], overflow="fold")]
                columns[note][n] = wrap[n][0]
        ascii_only[note] = "".join(columns[note]).isascii()

    def pad(text: str, i: int) -> str:
        gap = " " * (widths[i] - cell_len(text))
        return gap + text if right[i] else text + gap

    def padded(i: int) -> list[str]:
        width, values = widths[i], columns[i]
        if not ascii_only[i]:
            return [pad(text, i) for text in values]
        return [text.rjust(width) for text in values] if right[i] else [text.ljust(width) for text in values]

    body = list(zip(*(padded(i) for i in range(len(cols))))) if cells else []
    lines = [(row, styles[n]) for n, row in enumerate(body)]
    for n in sorted(wrap, reverse=True):        # the note's further lines under its row
        lines[n + 1:n + 1] = [(tuple(pad(part if i == note else "", i) for i in range(len(cols))), "")
                              for part in wrap[n][1:]]
    head = [pad(col, i) for i, col in enumerate(cols)]
    rule = "─" * (sum(widths) + GAP * (len(cols) - 1))
    sep = " " * GAP
    if not con.is_terminal:
        out.write(sep.join(head) + "\n" + rule + "\n" + "".join(sep.join(c) + "\n" for c, _ in lines))
        return True
    paint = _painter(con)
    text = []
    for parts, style in lines:
        if style and status >= 0:          # the state's own style on its word, not on the padding
            word = parts[status].rstrip(" ")
            parts = (*parts[:status], paint(word, style) + parts[status][len(word):], *parts[status + 1:])
        text.append(sep.join(parts) + "\n")
    out.write(sep.join(paint(part, "bold") for part in head) + "\n" + rule + "\n" + "".join(text))
    return True


def _painter(con):
    """text, style -> the text in that style's escape codes, as the console would write it (NO_COLOR, colours)."""
    from functools import lru_cache

    from rich.style import Style

    @lru_cache(maxsize=64)
    def codes(style: str) -> Style:
        parsed = Style.parse(style)
        return parsed.without_color if con.no_color else parsed

    return lambda text, style: codes(style).render(text, color_system=con.color_system) if text else text


def _print_rich_table(con, cols: list[str], cells: list[list[str]], styles: list[str], natural: dict[str, int]) -> None:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for col in cols:
        table.add_column(col, justify="right" if col in NUMERIC else "left", no_wrap=col != "note",
                         overflow="fold" if col == "note" else "ellipsis",
                         min_width=None if col == "note" else natural[col])
    status = cols.index("status") if "status" in cols else -1
    for row, style in zip(cells, styles):
        table.add_row(*(f"[{style}]{text}[/]" if i == status and style and con.is_terminal else _escape(text)
                        for i, text in enumerate(row)))
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


def precision_text(status: dict) -> str | None:
    """'bf16 (auto: ...)': the run's precision and why, from its status.json; None before it started."""
    if not status.get("precision"):
        return None
    precision, note = str(status["precision"]), status.get("precision_note")
    if not note:
        return precision
    note = str(note).removeprefix(f"precision: {precision} ")        # "(auto: ...)" of the events.log line
    return f"{precision} {note}" if note.startswith("(") else f"{precision} ({note})"


def render_show(data: dict[str, Any], out=None) -> None:
    from rich import box
    from rich.table import Table

    con = console(out)
    s = data["summary"]
    st = data["status"] or {}
    con.print(f"run {data['id']}", markup=False)
    con.print(f"  folder   {data['path']}", markup=False)
    con.print(f"  state    {data['state']}{' (compiling)' if s.get('phase') else ''}", markup=False)
    if data["damaged"] or st.get("error"):
        con.print(f"  {'damaged' if data['damaged'] else 'error':<8} {s['error']}", markup=False)
    if data["config"]:
        total_steps = st.get("total_steps")
        con.print(f"  net      {s.get('model')}", markup=False)      # ResNet-110, PreAct-164, WRN-28-10
        con.print(f"  progress epoch {s.get('epochs_done')}/{s.get('total_epochs')}, step {st.get('step', 0)}"
                  f"/{total_steps if total_steps else '?'}", markup=False)
        con.print(f"  test err final {pct(s.get('final_test_err'))}, best {pct(s.get('best_test_err'))}, "
                  f"paper {pct(s.get('paper_err'))}", markup=False)
    extras = [("device", devices_text(st) if st.get("device") else None),
              ("precision", precision_text(st)),
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


def varied_rows(infos: list) -> list[dict[str, Any]]:
    """``list_rows`` with a ``varies`` column: the settings that differ between these runs (a sweep's, a study's)."""
    from core.spec.grid import describe
    from core.spec.grid import varied_fields as varied

    configs = [i.config for i in infos]
    keys = varied(configs) if len(configs) > 1 else []
    rows = list_rows(infos)
    for row, cfg in zip(rows, configs):
        row["varies"] = describe(cfg, keys)
    return rows


def show_json(data: dict, stream) -> None:
    """`show --json`: JSON has no NaN or Infinity, so such a number (a damaged file's) is null, with a note."""
    data, bad = finite(data)
    json.dump({**data, "note": f"{bad} numbers that are NaN or infinite shown as null"} if bad else data,
              stream, indent=1, default=str, allow_nan=False)
    stream.write("\n")


def finite(value: Any) -> tuple[Any, int]:
    """``value`` with every NaN or infinite float as None, and how many there were."""
    if isinstance(value, float):
        return (value, 0) if value - value == 0 else (None, 1)
    if isinstance(value, dict):
        pairs = [(k, finite(v)) for k, v in value.items()]
        return {k: v for k, (v, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, (list, tuple)):
        items = [finite(v) for v in value]
        return [v for v, _ in items], sum(n for _, n in items)
    return value, 0

"""`report [RUN ...] [--all]`: the Table 6-style table, Fig. 6 and Fig. 7-style figures and report.md in one folder.

The work is ``core.results.report.write_report``; this module picks the runs, the folder and the formats, and
turns the engine's ReportError into one ``error:`` line (exit 2: bad input, nothing written; exit 1 when a package
the figures need is missing).
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cli.common import EXIT_FAILED, EXIT_OK, CliError
from core.store.runs import RunError, RunInfo, RunStore
from core.util.errors import MissingDependency, ReportError


def sweep_runs(infos: Sequence[RunInfo], name: str) -> list[RunInfo]:
    """The runs of sweep ``name``; CliError naming the sweeps there are when it has none."""
    found = [i for i in infos if i.config is not None and i.config.sweep_name == name]
    if not found:
        names = sorted({i.config.sweep_name for i in infos if i.config is not None and i.config.sweep_name})
        raise CliError(f"--sweep: no runs of a sweep named {name!r}; "
                       + (f"sweeps here: {', '.join(names)}" if names else "no run here belongs to a sweep"))
    return found


def pick_runs(store: RunStore, run_ids: Sequence[str], all_runs: bool, sweep: str | None = None) -> list[RunInfo]:
    if run_ids and all_runs:
        raise CliError("name runs or use --all, not both")
    if sweep and (run_ids or all_runs):
        raise CliError("--sweep: it picks the runs itself; give it without run ids or --all")
    if not run_ids and not all_runs and not sweep:
        raise CliError("name the runs to report on (see `runs`), or use --sweep NAME for the runs of a sweep or --all "
                       "for every run in the runs folder")
    if sweep:
        return sweep_runs(store.list(), sweep)
    if all_runs:
        return store.list()
    infos = []
    for run_id in dict.fromkeys(run_ids):
        try:
            infos.append(store.get(run_id).info())
        except RunError as exc:
            raise CliError(str(exc)) from None
    return infos


def report(store: RunStore, run_ids: Sequence[str], *, all_runs: bool = False, sweep: str | None = None,
           out: str | None = None,
           formats: str = "all", tensorboard: bool = False, layer_responses: bool = True, device: str = "auto",
           data_dir: str | None = None, stream=None, x: str = "auto") -> int:
    from core.results.report import default_out_dir, parse_formats, write_report

    stream = stream or sys.stdout
    infos = pick_runs(store, run_ids, all_runs, sweep)
    try:
        fmts = parse_formats(formats)
    except ReportError as exc:
        raise CliError(f"--format: {exc}") from None
    out_dir = Path(out).expanduser() if out else default_out_dir(store.root)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"--out: {out_dir} exists and is not a folder")
    if out_dir.resolve().is_relative_to(store.root.resolve()):
        raise CliError(f"--out: {out_dir} is inside the runs folder {store.root}, where every folder is read as a "
                       f"run; choose a folder outside it (the default is {default_out_dir(store.root).parent})")
    try:
        result = write_report(infos, out_dir, named=not all_runs and not sweep, formats=fmts,
                              layer_responses=layer_responses, device=device, data_dir=data_dir,
                              tensorboard=tensorboard, x=x)
    except MissingDependency as exc:
        raise CliError(str(exc), EXIT_FAILED) from None
    except ReportError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:       # a full disk, a read-only folder: the report's hidden folder is gone with it
        from core.util.files import write_error

        where = next((p for p in (out_dir, *out_dir.resolve().parents) if p.is_dir()), out_dir.parent)
        raise CliError(f"{write_error(exc, where, then='report again')}; nothing was written", EXIT_FAILED) from None
    for note in result.notes:
        print(f"note: {note}", file=stream)
    runs = sum(len(g.runs) for g in result.groups)
    print(f"report of {runs} run{'s' if runs != 1 else ''} in {len(result.groups)} group"
          f"{'s' if len(result.groups) != 1 else ''}: {', '.join(p.name for p in result.files)}", file=stream)
    print(f"folder: {result.out_dir.resolve()}", file=stream, flush=True)
    return EXIT_OK

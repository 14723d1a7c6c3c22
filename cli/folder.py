"""The runs folder a command works on (``--runs-dir``, else $RESLAB_RUNS, else runs/), a run in it, and the command
lines the CLI prints for the user to paste (``resume_prog``, ``runs_dir_arg``)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from cli.common import CliError
from core.store.runs import Run, RunError, RunStore, default_runs_dir, run_folder_note


def store_of(args: argparse.Namespace, new_runs: bool = False) -> RunStore:
    """The runs folder of --runs-dir, else $RESLAB_RUNS, else runs/; one that cannot be a folder is bad input, and
    so is a run's own folder where runs are to be made or served (``new_runs``)."""
    given = getattr(args, "runs_dir", None)
    if given is not None and not given.strip():      # Path("") is the working directory: never a runs folder
        raise CliError("--runs-dir: empty; give a folder, or leave the flag out ($RESLAB_RUNS, else runs/)")
    store = RunStore(Path(given) if given else default_runs_dir())
    source = "--runs-dir" if given else ("$RESLAB_RUNS" if os.environ.get("RESLAB_RUNS") else "runs/")
    longest = os.pathconf("/", "PC_PATH_MAX") - 300      # room for a run id and its files' names
    if len(os.path.abspath(store.root)) > longest:
        raise CliError(f"{source}: the path is {len(os.path.abspath(store.root)):,} characters long, too long for "
                       f"this system (its files' paths must stay under {longest + 300:,}); use a shorter folder")
    try:
        store.check_root()
    except RunError as exc:
        raise CliError(f"{source}: {exc}") from None
    if new_runs and (note := run_folder_note(store.root)):
        raise CliError(f"{source}: {note}")
    return store


def get_run(store: RunStore, run_id: str) -> Run:
    try:
        return store.get(run_id)
    except RunError as exc:
        raise CliError(str(exc)) from None


def resume_prog() -> str:
    """How the user invoked us, so the printed commands can be pasted: 'python tui_app.py' or 'reslab'."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = Path(argv0).name
    if name in ("reslab", "tui_app.py"):
        return "reslab" if name == "reslab" else f"python {shlex.quote(argv0)}"
    script = Path(__file__).resolve().parents[1] / "tui_app.py"
    try:
        script = script.relative_to(Path.cwd())
    except ValueError:
        pass
    return f"python {shlex.quote(str(script))}"


def runs_dir_arg(store: RunStore) -> str:
    return f"--runs-dir {shlex.quote(str(store.root.resolve()))}"

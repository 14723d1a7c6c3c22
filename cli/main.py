"""Argument parsing and dispatch for ``tui_app.py`` / ``reslab``.

``tui_app.py [--runs-dir DIR] [--data-dir DIR]`` opens the TUI; ``tui_app.py SUBCOMMAND ...`` runs headless.
Every subcommand accepts ``--runs-dir`` after its own arguments. The settings' flags (``train``, ``queue add``,
``study``) are generated from the table the new-run form's fields are made from (core/spec/field_help.py
``SETTINGS``), so every setting of the engine is reachable and explained, and the CLI and the form cannot disagree.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, SIGNAL_EXIT, Interrupted, StopSignals
from cli.notes import add_note_parser
from cli.sweep import add_sweep_flags
from core.spec.field_help import GROUPS, SETTINGS
from core.spec.presets import PRESET_HELP, PRESETS

EPILOG = """\
exit codes: 0 done, 1 the run failed or cannot continue, 2 bad input (nothing is created),
130/143 stopped by SIGINT/SIGTERM with a checkpoint (the command that resumes it is printed).
Default folders: runs from $RESLAB_RUNS (else runs/), data from $RESLAB_DATA (else data/)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (exit 2), as for every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"error: {message.splitlines()[0]} (see {self.prog} --help)\n")


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field, grouped as in the TUI's form, each from its row of core/spec/field_help.py
    ``SETTINGS`` (flag, value name or choices, help, default); values stay text until RunConfig coerces and validates
    them, so a bad value gets the same message as in a TOML file or the form."""
    for group, names in GROUPS.items():
        g = parser.add_argument_group(f"{group} settings")
        for setting in (SETTINGS[name] for name in names):
            text = setting.help.replace("%", "%%") + f" [default: {setting.default_text}]"
            dest = "cfg_" + setting.name
            if setting.kind == "bool":
                g.add_argument(setting.flag, dest=dest, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
            elif setting.name == "compile":   # a bare --compile (a flag before compile took a mode): the default mode
                g.add_argument(setting.flag, dest=dest, metavar=setting.value_name, nargs="?", const="default",
                               default=None, help=text)
                g.add_argument("--no-compile", dest=dest, action="store_const", const="off", help=argparse.SUPPRESS)
            else:
                g.add_argument(setting.flag, dest=dest, metavar=setting.value_name, default=None, help=text)


def _runs_dir_arg(parser: argparse.ArgumentParser, top: bool = False, on_end: str = "") -> None:
    if on_end:
        _on_end_flag(parser, on_end)
    # Sub-parsers use SUPPRESS so that a --runs-dir given before the subcommand is not overwritten.
    parser.add_argument("--runs-dir", metavar="DIR", default=None if top else argparse.SUPPRESS,
                        help="folder of run folders [default: $RESLAB_RUNS or runs/]")


def build_parser(prog: str = "tui_app.py") -> Parser:
    p = Parser(prog=prog, description="ResLab: residual-network experiments on CIFAR. Without a subcommand, "
               "opens the terminal UI; with one, runs headless.", epilog=EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    _runs_dir_arg(p, top=True)
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="data folder the TUI's new-run form starts with [default: $RESLAB_DATA or data/]")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def command(name: str, help_text: str, description: str) -> Parser:
        head, _, tail = description.partition("\n\n")
        description = textwrap.fill(head, 100) + ("\n\n" + tail if tail else "")
        return _named(sub.add_parser(name, help=help_text, description=description, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter))

    _train_parser(command)
    _run_parsers(command)
    add_note_parser(command, _runs_dir_arg)
    _inspection_parsers(command)
    for more in (_queue_parsers, _report_parser, _study_parser, _serve_parser):
        more(command)
    return p


def _train_parser(command) -> None:
    """`train` (cli/sweep.py, cli/training.py): every setting's flag (``add_config_flags``)."""
    presets = "\n".join(textwrap.fill(text, 110, initial_indent=f"  {name:<11} ", subsequent_indent=" " * 14,
                                      break_on_hyphens=False)
                        for name, text in PRESET_HELP.items())
    t = command("train", "train a new run in the foreground",
                "Create a run and train it in the foreground with a progress display (plain lines when the output "
                "is not a terminal). Settings apply in order: built-in defaults, --preset, --config FILE, then "
                "the flags below. The run id is printed first; Ctrl-C or SIGTERM stops with a checkpoint and "
                "prints the command that resumes it. Under torchrun (torchrun --nproc-per-node N tui_app.py train ...) "
                "the N processes train one run together with DistributedDataParallel; --batch-size stays the global "
                "batch. --sweep FIELD=V1,V2 and --variant 'F=V F=V' make a sweep: one run per combination, trained one "
                "after another.\n\nPresets:\n" + presets)
    t.add_argument("--preset", metavar="|".join(PRESETS), help="start from a preset (see above)")
    t.add_argument("--config", metavar="FILE.toml",
                   help="TOML file of settings (top-level keys or one level of tables; may name a preset)")
    add_config_flags(t)
    t.add_argument("--ignore-memory", action="store_true", help="start even where the memory estimate says the run "
                   "cannot fit the device's memory (this machine's RAM on the CPU)")
    add_sweep_flags(t)
    _runs_dir_arg(t, on_end="when it ends (each run of a sweep)")


def _run_parsers(command) -> None:
    """`resume` and `stop`: a run's training after it was created."""
    r = command("resume", "continue a stopped, crashed or queued run",
                "Continue a run from its checkpoint (a queued run without one starts from the beginning). "
                "--epochs N extends the run to N epochs in total, which also continues a finished run. "
                "Under torchrun the processes resume it together, whatever number of processes trained it before.")
    r.add_argument("run", metavar="RUN", nargs="?", help="run id (a folder name in the runs folder)")
    r.add_argument("--sweep", metavar="NAME", help="instead of RUN: finish sweep NAME (one a kill, a crash or a "
                   "stop left unfinished): make the runs its plan holds and the folder lacks, then train each run of "
                   "it that is queued, stopped or crashed, one after another")
    r.add_argument("--epochs", metavar="N", type=int, help="train to N epochs in total")
    r.add_argument("--tensorboard", action="store_true",
                   help="from now on also write TensorBoard event files into RUN/tensorboard/ (the steps so far "
                        "are written first; a resumed run never shows a step twice)")
    r.add_argument("--repair", action="store_true",
                   help="first rebuild a damaged run's status.json (and config.json) from checkpoint.pt and cut its "
                        "logs back to what the checkpoint covers (unreadable lines are dropped; events.log says what)")
    _runs_dir_arg(r, on_end="when it ends")

    s = command("stop", "ask a run training in another process to stop with a checkpoint",
                "Ask the process training RUN to checkpoint and stop (it obeys between iterations), then wait "
                "until it has stopped. Exit 0 when it stopped, 1 when it was not running or did not stop in time.")
    s.add_argument("run", metavar="RUN", help="run id")
    s.add_argument("--timeout", metavar="SECONDS", type=float, default=300.0,
                   help="how long to wait for the run to stop [default: 300]")
    s.add_argument("--no-wait", action="store_true", help="send the request and return at once")
    _runs_dir_arg(s)


def _inspection_parsers(command) -> None:
    """`runs`, `show` and `eval`: what the runs folder holds; nothing is changed."""
    ls = command("runs", "list every run", "List every run in the runs folder, damaged ones included.")
    ls.add_argument("--format", choices=("table", "csv", "markdown", "json"), default="table",
                    help="output format [default: table]")
    ls.add_argument("--sweep", metavar="NAME", help="only the runs of this sweep (its settings that vary as columns)")
    ls.add_argument("--study", metavar="NAME", help="only the trials and confirmed runs of this study")
    _runs_dir_arg(ls)

    sh = command("show", "print one run: config, status, epochs, files",
                 "Print one run: its settings, status, per-epoch table and where its files are.")
    sh.add_argument("run", metavar="RUN", help="run id")
    sh.add_argument("--json", action="store_true", help="print everything as one JSON object")
    _runs_dir_arg(sh)

    e = command("eval", "test loss and error of a run's checkpoint (and best.pt)",
                "Evaluate the run's latest checkpoint (and best.pt where present) on its test split, with the "
                "normalisation it was trained with. Reads the run folder; writes nothing.")
    e.add_argument("run", metavar="RUN", help="run id")
    e.add_argument("--data-dir", metavar="DIR", help="data folder to read the test set from [default: the run's]")
    e.add_argument("--device", metavar="auto|cpu|cuda:N", default="auto", help="device to evaluate on [default: auto]")
    e.add_argument("--batch-size", metavar="N", type=int, default=500, help="evaluation batch size [default: 500]")
    e.add_argument("--json", action="store_true", help="print the results as JSON")
    e.add_argument("--layer-responses", action="store_true",
                   help="instead: the std of each 3x3 layer's response over the test set (He et al. 2016, Fig. 7), "
                        "from checkpoint.pt; kept in RUN/layer_responses.json and reused while the checkpoint stays")
    _runs_dir_arg(e)


def _report_parser(command) -> None:
    """`report` (cli/report.py, cli/study.py for --study)."""
    rp = command("report", "write the results table and figures of runs into a folder",
                 "Write the results of runs into one folder: the paper's Table 6 layout (one row per depth, plain "
                 "and ResNet columns, each cell best (mean ± std, n) over seeds, beside He et al. 2016 and the lab "
                 "report) as Markdown, LaTeX and CSV; Fig. 6-style training curves and Fig. 7-style layer "
                 "responses as PNG, SVG and PDF; and report.md, which embeds them with each run's settings and "
                 "environment. Runs of pre-activation or wide nets (--arch) get a depth x architecture table "
                 "instead (ResNet A/B, PreAct, WRN-k columns), each paper's number beside ours (He et al. 2016b, "
                 "Zagoruyko & Komodakis 2016). Runs that differ only in their seed form one group.")
    rp.add_argument("runs", metavar="RUN", nargs="*", help="run ids (or --all)")
    rp.add_argument("--all", action="store_true", help="every run in the runs folder (runs without a finished "
                    "epoch are left out with a note)")
    rp.add_argument("--sweep", metavar="NAME", help="the runs of this sweep (see `runs`): a table whose rows and "
                    "columns are the values of the settings it varies, the effect of each, and curves coloured by them")
    rp.add_argument("--study", metavar="NAME", help="the study NAME (see `study`): optimisation history, importances, "
                    "parallel coordinates, slices, validation error per epoch with the rungs, Pareto front, top trials "
                    "and confirmed settings")
    rp.add_argument("--storage", metavar="URL", help="with --study: its Optuna storage [default: RUNS/studies.db]")
    rp.add_argument("--x-axis", choices=("auto", "epoch", "iter", "time"), default="auto",
                    help="what a sweep's curves are drawn against: epochs, iterations or training time; auto: epochs "
                         "when batch sizes or training sets differ, else iterations [default: auto]")
    rp.add_argument("--out", metavar="DIR", help="folder to write [default: reports/report-DATE-TIME beside the "
                    "runs folder]")
    rp.add_argument("--format", metavar="LIST", default="all",
                    help="comma-separated of md,tex,csv (table) and png,svg,pdf (figures) [default: all]")
    rp.add_argument("--tensorboard", action="store_true",
                    help="also write each run's tensorboard/ event files from its .jsonl files")
    rp.add_argument("--no-layer-responses", dest="layer_responses", action="store_false",
                    help="skip Fig. 7 (it evaluates each run's checkpoint once on its test images)")
    rp.add_argument("--device", metavar="auto|cpu|cuda:N", default="auto",
                    help="device for the layer responses [default: auto]")
    rp.add_argument("--data-dir", metavar="DIR", help="data folder for the layer responses [default: each run's]")
    _runs_dir_arg(rp)


def _serve_parser(command) -> None:
    """`serve` (cli/serve.py)."""
    from cli.serve import add_serve_flags

    sv = command("serve", "the terminal UI in a browser (textual-serve)",
                 "Serve the terminal UI as a web page: each browser tab gets its own app on this runs folder. It "
                 "listens on 127.0.0.1 only: reach it through ssh -L 8000:localhost:8000 SERVER. A host other "
                 "machines reach needs --allow-remote, and the page then needs the token printed at start.")
    add_serve_flags(sv)
    sv.add_argument("--data-dir", metavar="DIR", default=None, help="data folder the new-run form starts with")
    _runs_dir_arg(sv)


def _study_parser(command) -> None:
    """`study NAME ...`, `study show NAME`, `study confirm NAME` (cli/study.py)."""
    from cli.study import add_study_flags

    st = command("study", "search settings: trials as runs, early stopping that resumes (Optuna)",
                 "Search for the best settings: Optuna proposes each trial's settings from --space, each trial is a "
                 "run that the scheduler trains (started if none serves the folder), planned for the full --epochs. "
                 "With --pruner asha a trial in the bottom of its rung stops with its checkpoint and is resumed, "
                 "exactly, if it is promoted later. The objective is the validation error (--val-split is required), "
                 "never the test error. `study NAME` again continues a study; `study show NAME` lists its trials; "
                 "`study confirm NAME --top 3 --seeds 1-3` trains the best settings again with seeds.")
    st.add_argument("--preset", metavar="|".join(PRESETS), help="start from a preset")
    st.add_argument("--config", metavar="FILE.toml", help="TOML file of settings")
    add_study_flags(st)
    add_config_flags(st)
    _scheduler_flags(st)
    _runs_dir_arg(st)


def _named(parser: Parser) -> Parser:
    """A subcommand's parser, remembered in the parsed namespace (the innermost one wins) so that a flag it does not
    know is reported with its own --help, not the top-level one that lists no flags."""
    parser.set_defaults(usage_parser=parser)
    return parser


def _scheduler_flags(parser: argparse.ArgumentParser) -> None:
    from cli.slurm import add_slurm_flags

    parser.add_argument("--devices", metavar="LIST", default=None,
                        help="device slots: cuda:0,cuda:2 / cuda (every GPU) / cpu,cpu (a device listed twice gets "
                             "two slots) [default: every visible GPU, else cpu]")
    parser.add_argument("--per-device", metavar="N", type=int, default=1,
                        help="runs that share each device at once (small nets on a large GPU) [default: 1]")
    parser.add_argument("--gpus-per-run", metavar="N", type=int, default=1,
                        help="train each run on N devices at once with torchrun (DDP; --batch-size stays the "
                             "global batch): consecutive groups of N of --devices [default: 1]")
    add_slurm_flags(parser)
    _on_end_flag(parser, "when a run it serves ends [default: the on_end setting; '' for none]")


def _on_end_flag(parser: argparse.ArgumentParser, when: str) -> None:
    parser.add_argument("--on-end", metavar="CMD", default=None,
                        help=f"shell command to run {when}, detached, with RESLAB_RUN_ID, RESLAB_RUN_STATE, "
                             "RESLAB_RUN_DIR, RESLAB_TEST_ERR ... in its environment; its failures go to the run's "
                             "events.log (docs/tui.md: Notifications)")


def _queue_parsers(command) -> None:
    """`scheduler` and `queue [add|move|remove]` (cli/queue.py)."""
    from core.serve.scheduler import DEFAULT_IDLE_EXIT_S, DEFAULT_RETRIES

    sc = command("scheduler", "serve the queue of a runs folder on every GPU (detached)",
                 "Serve the queued runs of the runs folder: each run trains in its own process pinned to a device "
                 "slot; the next starts when a slot frees; a trainer that dies is resumed from its checkpoint. "
                 "Detaches (keeps running after the terminal closes or ssh drops) unless --foreground, and leaves "
                 "by itself once nothing has been queued for --idle-exit seconds. A second call on a folder that "
                 "a scheduler serves says so and exits 0. Its log is scheduler.log in the runs folder.")
    _scheduler_flags(sc)
    sc.add_argument("--retries", metavar="N", type=int, default=DEFAULT_RETRIES,
                    help=f"resumes of a run whose trainer process died [default: {DEFAULT_RETRIES}]")
    sc.add_argument("--foreground", action="store_true", help="stay attached to this terminal (log lines here too)")
    sc.add_argument("--stay", action="store_true", help="keep serving when the queue is empty")
    sc.add_argument("--idle-exit", metavar="SECONDS", type=float, default=DEFAULT_IDLE_EXIT_S,
                    help=f"leave after this long without work [default: {DEFAULT_IDLE_EXIT_S:g}]")
    sc.add_argument("--stop", action="store_true", help="ask the scheduler serving the folder to leave "
                    "(runs it started keep training)")
    _runs_dir_arg(sc)

    q = command("queue", "list, add, reorder or remove queued runs",
                "Without an action: list the queued runs (position) and the running ones (device and slot).\n\n"
                "Actions:\n  add     queue one run per combination of --depths x --shortcuts x --seeds x --sweep ... x "
                "--variant ...\n"
                "  move    put a queued run at position POS (1 = next)\n"
                "  remove  take a queued run out of the queue (--delete also deletes its folder)")
    q.add_argument("--json", action="store_true", help="print the list as JSON")
    _runs_dir_arg(q)
    qs = q.add_subparsers(dest="queue_command", metavar="ACTION", parser_class=Parser)
    add = _named(qs.add_parser("add", help="queue runs (a grid with --depths/--shortcuts/--seeds)",
                        description="Queue one run per combination (every train flag applies to each) and make sure "
                        "a scheduler serves the folder (one is started, detached, when none does). Lists are "
                        "20,56,110; ranges 1-5; --sweep FIELD=V1,V2 and --variant 'F=V F=V' vary any setting.",
                        formatter_class=argparse.RawDescriptionHelpFormatter))
    add.add_argument("--depths", metavar="LIST", help="several depths, e.g. 20,32,44,56,110")
    add.add_argument("--shortcuts", metavar="LIST", help="several shortcuts, e.g. A,none (none = plain net)")
    add.add_argument("--seeds", metavar="LIST", help="several seeds, e.g. 1-5 or 1,2,3")
    add.add_argument("--preset", metavar="|".join(PRESETS), help="start from a preset")
    add.add_argument("--config", metavar="FILE.toml", help="TOML file of settings")
    _scheduler_flags(add)
    add_config_flags(add)
    add_sweep_flags(add)
    _runs_dir_arg(add)
    mv = _named(qs.add_parser("move", help="put a queued run at position POS"))
    mv.add_argument("run", metavar="RUN", help="run id")
    mv.add_argument("position", metavar="POS", type=int, help="1 = next to start")
    _runs_dir_arg(mv)
    rm = _named(qs.add_parser("remove", help="take a queued run out of the queue"))
    rm.add_argument("run", metavar="RUN", help="run id")
    rm.add_argument("--delete", action="store_true", help="also delete its folder")
    _runs_dir_arg(rm)


def _prog_name() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name in ("reslab", "tui_app.py") else "tui_app.py"


def open_tui(runs_dir: str | None, data_dir: str | None) -> int:
    """Open the Textual app. Guarded so that a broken UI never takes the headless commands down with it, and so
    that an app that ended on an error says so (exit 1) instead of exiting 0."""
    from core.store.runs import RunError, RunStore, run_folder_note

    if runs_dir is not None and not runs_dir.strip():
        print("error: --runs-dir: empty; give a folder, or leave the flag out ($RESLAB_RUNS, else runs/)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        RunStore(runs_dir).check_root()
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if runs_dir and (note := run_folder_note(runs_dir)):   # its form would make runs inside a run
        print(f"error: --runs-dir: {note}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from screens.app import make_app
    except Exception as exc:  # noqa: BLE001 - any import failure of the UI
        print(f"error: the terminal UI cannot start ({type(exc).__name__}: {exc}); the headless commands still "
              f"work: {_prog_name()} --help", file=sys.stderr)
        return EXIT_FAILED
    app = make_app(runs_dir=runs_dir, data_dir=data_dir)
    app.run()
    return EXIT_FAILED if getattr(app, "return_code", 0) else EXIT_OK


def _parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    args, extras = parser.parse_known_args(argv)
    if extras:
        getattr(args, "usage_parser", parser).error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def main(argv: list[str] | None = None, pending_signals: list[int] | None = None) -> int:
    """``pending_signals``: SIGINT/SIGTERM that tui_app.py held while this module was imported; delivered here."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parse(build_parser(_prog_name()), argv) if argv else None
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed as one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args is None or args.command is None:
        _deliver(pending_signals, None)
        return open_tui(getattr(args, "runs_dir", None), getattr(args, "data_dir", None))
    # SIGINT/SIGTERM are caught before anything slow is imported (torch takes seconds): a signal at any moment of
    # `train` or `resume` ends with a checkpoint or the command that resumes the run, never a silent death.
    args.stop_signals = StopSignals(armed=args.command == "resume").install() if args.command in (
        "train", "resume") else None
    try:
        _deliver(pending_signals, args.stop_signals)
        from cli import commands

        if args.command == "train" or getattr(args, "sweep", None) and args.command in ("resume", "runs"):
            from cli import sweep  # one run or a sweep of them; finishing a sweep; listing one

            return commands.dispatch(args, {"train": sweep.cmd_train, "resume": sweep.cmd_resume_sweep,
                                            "runs": sweep.cmd_runs_sweep}[args.command])
        if args.command == "study" or (args.command in ("report", "runs") and getattr(args, "study", None)):
            from cli import study

            return commands.dispatch(args, {"study": study.cmd_study, "report": study.report_study,
                                            "runs": study.cmd_runs_study}[args.command])
        if args.command == "note":
            from cli.notes import cmd_note

            return commands.dispatch(args, cmd_note)
        if args.command == "serve":
            from cli.serve import cmd_serve

            return commands.dispatch(args, cmd_serve)
        if args.command in ("queue", "scheduler"):
            from cli import queue

            return commands.dispatch(args, queue.COMMANDS[args.command])
        return commands.dispatch(args)
    except Interrupted as exc:
        print(f"interrupted by {args.stop_signals.name()} before the run was created; nothing was written",
              file=sys.stderr)
        return SIGNAL_EXIT.get(exc.signum, EXIT_FAILED)
    finally:
        if args.stop_signals is not None:
            args.stop_signals.restore()


def _deliver(pending: list[int] | None, stop_signals: StopSignals | None) -> None:
    """Hand SIGINT/SIGTERM back to their usual handling (StopSignals for train and resume, else the defaults) and
    deliver any that arrived while the CLI was imported."""
    import signal

    if pending is None:
        return
    if stop_signals is None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for sig in list(pending):
        signal.raise_signal(sig)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

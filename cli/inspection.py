"""The inspection commands: ``runs``, ``show``, ``eval`` and ``report``; they read the runs folder and change no run
(``runs --sweep`` and ``report --sweep`` are cli/sweep.py's and cli/report.py's, ``--study`` cli/study.py's)."""
from __future__ import annotations

import argparse
import gc
import sys

from cli.common import EXIT_OK, CliError
from cli.folder import get_run, store_of
from core.util.collector import paused


# -- runs / show -------------------------------------------------------------------------------------------------------
def cmd_runs(args: argparse.Namespace) -> int:
    """`runs` (`runs --sweep NAME` is cli/sweep.py's)."""
    from cli.tables import render_lines

    with paused():     # (a listing makes no cycles; the collector's passes cost 0.2-0.3 s of a 10,000-run one)
        store = store_of(args)
        render_lines(store.summary_lines(), args.format, sys.stdout, store.root)
        # what the listing made is left to the process's end, whose collection would walk it all once more (0.2-0.3 s
        # at 10,000 runs): reference counts still free it
        gc.freeze()
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from cli.tables import render_show, show_data, show_json

    store = store_of(args)
    run = get_run(store, args.run)
    data = show_data(run, run.info())
    if args.json:
        show_json(data, sys.stdout)
    else:
        render_show(data)
    return EXIT_OK


# -- eval --------------------------------------------------------------------------------------------------------------
def cmd_eval(args: argparse.Namespace) -> int:
    from cli.evaluate import evaluate_run

    store = store_of(args)
    run = get_run(store, args.run)
    if args.batch_size < 1:
        raise CliError(f"--batch-size: must be >= 1, got {args.batch_size}")
    if args.layer_responses:
        from cli.evaluate import show_layer_responses

        return show_layer_responses(run, data_dir=args.data_dir, device=args.device, as_json=args.json)
    return evaluate_run(run, data_dir=args.data_dir, device=args.device, batch_size=args.batch_size,
                        as_json=args.json)


# -- report ------------------------------------------------------------------------------------------------------------
def cmd_report(args: argparse.Namespace) -> int:
    from cli.report import report

    return report(store_of(args), args.runs, all_runs=args.all, sweep=args.sweep, out=args.out, formats=args.format,
                  tensorboard=args.tensorboard, layer_responses=args.layer_responses, device=args.device,
                  data_dir=args.data_dir, x=args.x_axis)

"""The subcommands' dispatch: each returns an exit code; a user's mistake raises ``CliError``, printed as one
``error: ...`` line (so are a vanished folder, a full disk, Ctrl-C outside training and a closed pipe).

The commands themselves: cli/training.py (train, resume, stop), cli/inspection.py (runs, show, eval, report),
cli/sweep.py, cli/queue.py, cli/study.py, cli/notes.py and cli/serve.py (cli/main.py picks the module).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from cli.common import EXIT_FAILED, EXIT_OK, SIGNAL_EXIT, CliError
from cli.inspection import cmd_eval, cmd_report, cmd_runs, cmd_show
from cli.training import cmd_resume, cmd_stop, cmd_train
from core.util.files import write_error


def dispatch(args: argparse.Namespace, handler=None) -> int:
    handler = handler or COMMANDS[args.command]
    try:
        return handler(args)
    except CliError as exc:
        sys.stdout.flush()
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:   # Ctrl-C outside training (training itself turns it into a checkpointed stop)
        print("interrupted", file=sys.stderr)
        return SIGNAL_EXIT[signal.SIGINT]
    except BrokenPipeError:     # `runs | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:      # the last net: a folder that vanished or cannot be written, said in one line
        sys.stdout.flush()
        where = Path(exc.filename).parent if exc.filename else Path.cwd()
        print(f"error: {' '.join(write_error(exc, where).split())}", file=sys.stderr)
        return EXIT_FAILED


COMMANDS = {"train": cmd_train, "resume": cmd_resume, "stop": cmd_stop, "runs": cmd_runs, "show": cmd_show,
            "eval": cmd_eval, "report": cmd_report}

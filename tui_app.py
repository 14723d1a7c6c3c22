"""ResLab entry point: no arguments opens the TUI; subcommands (train, resume, stop, runs, show, eval) run headless."""
from __future__ import annotations

import sys


def _hold_stop_signals() -> list[int]:
    """SIGINT/SIGTERM that arrive while the CLI is imported (a fraction of a second before it handles them itself)
    are kept, not fatal: the CLI delivers them once it can say what they did (``cli.main.main``)."""
    import signal

    pending: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: pending.append(signum))
    return pending


def main(argv: list[str] | None = None) -> int:
    pending = _hold_stop_signals()
    from cli.main import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv, pending_signals=pending)


if __name__ == "__main__":
    sys.exit(main())

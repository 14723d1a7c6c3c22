"""ResLab's headless command line: train, resume, stop, list, show and evaluate runs from the shell.

``cli.main.main(argv)`` is the entry point (``tui_app.py`` and the ``reslab`` script call it); with no
subcommand it opens the TUI. The engine (``core``) does the work; this package only parses arguments,
prints, and maps outcomes to exit codes: 0 done, 1 the run failed or cannot continue, 2 bad input
(nothing is created on disk), 130/143 stopped by SIGINT/SIGTERM with a checkpoint.
"""

"""`note RUN [TEXT] [--tag T] [--untag T]`: a run's tags and note (core/store/notes.py), as the detail screen's t sets
them; the runs filter selects by them (tag=best, note=WORD). With neither text nor tags it prints what is stored."""
from __future__ import annotations

import argparse


def add_note_parser(command, runs_dir_arg) -> None:
    n = command("note", "set or show a run's tags and note (the runs filter: tag=best, note=WORD)",
                "Set a run's note (TEXT; \"\" clears it) and add or remove tags, kept in the run's notes.json "
                "(replaced atomically); training and resuming ignore them. With no TEXT, --tag or --untag: print "
                "the run's tags and note.")
    n.add_argument("run", metavar="RUN", help="run id")
    n.add_argument("text", metavar="TEXT", nargs="?", help="the note (one line; \"\" clears it)")
    n.add_argument("--tag", metavar="TAG", action="append", default=[], help="add a tag (repeatable)")
    n.add_argument("--untag", metavar="TAG", action="append", default=[], help="remove a tag (repeatable)")
    runs_dir_arg(n)


def cmd_note(args: argparse.Namespace) -> int:
    from cli.common import EXIT_OK, CliError
    from cli.folder import get_run, store_of
    from core.store.notes import read_notes, tag_problem, write_notes
    from core.store.reader import escape_controls

    run = get_run(store_of(args), args.run)
    for tag in args.tag:
        if problem := tag_problem(tag):
            raise CliError(f"--tag: {problem}")
    current = read_notes(run.path)
    if args.text is not None or args.tag or args.untag:
        tags = [t for t in current["tags"] + args.tag if t not in args.untag]
        try:
            current = write_notes(run.path, tags=tags, note=args.text)
        except ValueError as exc:
            raise CliError(f"TEXT: {exc}") from None
    print(escape_controls(f"{run.id}  tags: {' '.join(current['tags']) or '-'}  note: {current['note'] or '-'}"))
    return EXIT_OK

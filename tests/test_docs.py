"""The docs cannot drift from the code: every command line in README.md and docs/*.md parses with the real argument
parser, and every repository path and relative link they name exists.

* ``python tui_app.py ...`` / ``reslab ...`` (in code blocks and inline code): parsed by cli/main.py's parser, so
  each flag and subcommand exists and each ``choices`` value is allowed; ``train``, ``queue add`` and ``study`` are
  then turned into their runs' settings as the command would (``cli.sweep.grid_of``: every value, depth rule and
  milestone checked), which runs nothing and touches no folder. Data a command needs is written as a placeholder
  (``PLACEHOLDERS``): a run id is always ``RUN``.
* ``python bench/X.py --flag`` and ``bash bench/X.sh --flag``: the flag is in that script (or its .py twin).
* ``core/...``, ``cli/...``, ``bench/...``, ``tests/...`` ...: the file or folder exists (globs match something);
  ``[text](page.md#anchor)``: the page exists and has that heading.
"""
from __future__ import annotations

import contextlib
import functools
import io
import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PLACEHOLDERS = {"RUN", "NAME", "DIR", "DATA", "URL", "PATH", "HOST", "POS", "FILE", "N"}
REPO_PATH = re.compile(r"(?<![\w./~$-])((?:core|cli|screens|tests|bench|docs|\.ci)/(?:[\w./-]*\*\.\w+|[\w./-]*\w)?"
                       r"|tui_app\.py|pyproject\.toml)")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
SHELL_OPERATOR = re.compile(r"^[();<>|&]+$")


def _units(text: str):
    """(line number, shell text, variables) for each line of a shell code block (continuations joined, `VAR="..."`
    assignments remembered for `$VAR`) and for each inline code span of the prose (a span may wrap a line)."""
    in_block, shell, variables, pending, start = False, True, {}, "", 0
    prose: list[tuple[int, str]] = []
    for number, line in enumerate([*text.splitlines(), ""], 1):
        if not in_block and line.strip() and not line.lstrip().startswith("```"):
            prose.append((number, line))
            continue
        if prose:             # a paragraph ends: its spans, each at the line it starts on
            joined = ""
            starts = []
            for n, part in prose:
                starts += [n] * (len(part) + 1)
                joined += part + " "
            for m in re.finditer(r"`([^`]+)`", joined):
                yield starts[m.start()], m.group(1), {}
            prose = []
        if line.lstrip().startswith("```"):
            in_block, variables = not in_block, {}
            shell = line.strip()[3:] in ("", "bash", "sh", "shell", "console")
            continue
        if not in_block or not shell:      # a blank line of prose; toml, text
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        unit, pending = pending + line, ""
        if m := re.match(r"^\s*(\w+)=(.*)$", unit):
            variables[m.group(1)] = " ".join(shlex.split(m.group(2)))
            continue
        yield start, unit, dict(variables)


def _tokens(unit: str, variables: dict[str, str]) -> list[str]:
    lexer = shlex.shlex(unit, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out: list[str] = []
    for token in lexer:
        if token.startswith("$") and token[1:] in variables:
            out.extend(shlex.split(variables[token[1:]]))
        else:
            out.append(token)
    return out


def _commands(doc: Path):
    """(where, program, arguments) for each ResLab or bench command line in a doc."""
    for number, unit, variables in _units(doc.read_text()):
        if "tui_app.py" not in unit and "reslab" not in unit and "bench/" not in unit:
            continue
        where = f"{doc.relative_to(ROOT)}:{number}: {unit.strip()}"
        try:
            tokens = _tokens(unit, variables)
        except ValueError as exc:
            pytest.fail(f"{where}: not a shell line ({exc})")
        for i, token in enumerate(tokens):
            is_reslab = token.endswith("tui_app.py") or token == "reslab" and (i == 0 or tokens[i - 1] == "nohup")
            is_bench = token.startswith("bench/") and i > 0 and tokens[i - 1] in ("python", "bash")
            if not (is_reslab or is_bench):
                continue
            args = []
            for arg in tokens[i + 1:]:
                if SHELL_OPERATOR.match(arg):
                    break
                arg = arg.strip("[]")
                if arg and arg not in ("...", "…"):
                    args.append(arg)
            yield where, ("reslab" if is_reslab else token), args


def _all_commands():
    return [c for doc in DOCS for c in _commands(doc)]


@functools.cache
def _parser():
    from cli.main import build_parser

    return build_parser("tui_app.py")


def _parse(args: list[str]):
    """The namespace the CLI would act on, or the one-line error it prints (exit 2)."""
    from cli.main import _parse

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            return _parse(_parser(), args), None
        except SystemExit as exc:
            return None, (err.getvalue().strip() or "--help") if exc.code else None


def _check_settings(ns) -> str | None:
    """What `train`/`queue add`/`study` would refuse in these settings (nothing runs)."""
    from cli.common import CliError
    from cli.sweep import grid_of

    if ns.command not in ("train", "queue", "study") or getattr(ns, "config", None):
        return None
    if ns.command == "queue" and getattr(ns, "queue_command", None) != "add":
        return None
    try:
        configs = grid_of(ns)
    except CliError as exc:
        return str(exc)
    if ns.command == "study" and ns.space:    # the search space and the study's flags, as `study` checks them
        from core.study.spec import new_spec

        _, errors = new_spec("NAME", configs[0], ns.space, trials=ns.trials or 20, sampler=ns.sampler,
                             pruner=ns.pruner, min_epochs=ns.min_epochs, eta=ns.eta,
                             objectives=ns.objective or ["val_err"], sampler_seed=ns.sampler_seed)
        return "; ".join(f"{k}: {v}" for k, v in errors.items()) or None
    return None


def reslab_problem(args: list[str]) -> str | None:
    """Why a documented `tui_app.py ARGS` line is wrong, or None."""
    caps = [a for a in args if re.fullmatch(r"[A-Z][A-Z_]+", a) and a not in PLACEHOLDERS]
    if caps:
        return f"unknown placeholder {caps[0]} (known: {', '.join(sorted(PLACEHOLDERS))})"
    ns, error = _parse(args)
    if error:
        return error
    if ns is None:
        return None         # --help
    runs = getattr(ns, "runs", None) if isinstance(getattr(ns, "runs", None), list) else []
    for run in [getattr(ns, "run", None), *runs]:
        if run is not None and run != "RUN":
            return f"a run id in the docs must be the placeholder RUN, not {run!r}"
    return _check_settings(ns)


def test_every_documented_command_parses():
    commands = [c for c in _all_commands() if c[1] == "reslab"]
    assert len(commands) > 50, "the docs' commands were not found"
    problems = [f"{where}\n    -> {problem}" for where, _, args in commands if (problem := reslab_problem(args))]
    assert not problems, "documented commands the CLI refuses:\n" + "\n".join(problems)


def test_every_documented_bench_flag_exists():
    problems = []
    for where, script, args in _all_commands():
        if script == "reslab":
            continue
        path = ROOT / script
        if not path.exists():
            problems.append(f"{where}\n    -> {script} does not exist")
            continue
        source = path.read_text() + (path.with_suffix(".py").read_text() if path.suffix == ".sh" and
                                     path.with_suffix(".py").exists() else "")
        problems += [f"{where}\n    -> {script} has no {a}" for a in args
                     if a.startswith("--") and f'"{a.split("=")[0]}"' not in source and a.split("=")[0] not in
                     re.findall(r"--[\w-]+", source)]
    assert not problems, "documented bench flags the scripts lack:\n" + "\n".join(problems)


# flags of other programs the docs name: pytest, TensorBoard, torchrun
FOREIGN_FLAGS = {"--dist", "--snapshot-update", "--logdir", "--max-restarts", "--nproc-per-node", "--standalone",
                 "--nnodes", "--rdzv-backend", "--rdzv-endpoint"}


def _reslab_flags() -> set[str]:
    import argparse

    flags: set[str] = set()
    todo = [_parser()]
    while todo:
        for action in todo.pop()._actions:
            flags.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return flags


def _paragraph(lines: list[str], number: int) -> str:
    """The paragraph (or code block) around line `number` (1-based): up to the blank lines either side."""
    start = end = number - 1
    while start > 0 and lines[start - 1].strip():
        start -= 1
    while end < len(lines) - 1 and lines[end + 1].strip():
        end += 1
    return "\n".join(lines[start:end + 1])


def test_every_flag_the_prose_names_exists():
    """A flag named on its own (`--micro-batches 4`, `resume --sweep NAME`) is one of the CLI's, one of a benchmark's
    that the same paragraph names, or another program's the docs use (FOREIGN_FLAGS)."""
    known = _reslab_flags() | FOREIGN_FLAGS
    problems = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for number, unit, _ in _units(doc.read_text()):
            if "tui_app.py" in unit or "bench/" in unit or unit.lstrip().startswith("reslab"):
                continue      # whole command lines: checked above, each flag against its own parser
            if re.match(r"\s*(python|pip|tensorboard|optuna-dashboard)\s", unit):
                continue      # another program's command line
            for flag_ in re.findall(r"(?<![\w-])--[a-z][\w-]*", unit):
                if flag_ in known:
                    continue
                scripts = re.findall(r"bench/\w+\.(?:py|sh)", _paragraph(lines, number))
                if not any(f'"{flag_}"' in (ROOT / s).with_suffix(".py").read_text() for s in scripts):
                    problems.append(f"{doc.relative_to(ROOT)}:{number}: {flag_} ({unit.strip()[:80]})")
    assert not problems, "flags no parser has:\n" + "\n".join(problems)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_named_path_and_link_exists():
    problems = []
    for doc in DOCS:
        text = doc.read_text()
        for path in sorted(set(REPO_PATH.findall(text))):
            if not (list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()):
                problems.append(f"{doc.relative_to(ROOT)}: {path} does not exist")
        for target in LINK.findall(text):
            if re.match(r"\w+://", target):
                continue
            page, _, anchor = target.partition("#")
            file = (doc.parent / page).resolve() if page else doc
            if not file.exists():
                problems.append(f"{doc.relative_to(ROOT)}: link {target}: {page} does not exist")
            elif anchor and file.suffix == ".md":
                slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}
                if anchor not in slugs:
                    problems.append(f"{doc.relative_to(ROOT)}: link {target}: no heading #{anchor}")
    assert not problems, "\n".join(problems)


def test_readme_is_a_front_page():
    """At most ~200 lines, every docs page linked from it, and CI's test command (.ci/run) in it word for word."""
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    assert not [p.name for p in DOCS[1:] if f"docs/{p.name}" not in linked], "docs pages the README does not link"
    assert "python -m pytest -q -n 2 --dist loadfile" in (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[test]" && python -m pytest -q -n 2 --dist loadfile' in readme


@pytest.mark.parametrize("args, expected", [
    (["train", "--depht", "20"], "unrecognized arguments: --depht"),
    (["runs", "--format", "yaml"], "invalid choice"),
    (["train", "--shortcut", "C"], "--shortcut"),
    (["train", "--depth", "21"], "6n+2"),
    (["resume", "r20-A-sgd-1"], "placeholder RUN"),
    (["show", "RUNID"], "unknown placeholder RUNID"),
    (["study", "NAME", "--val-split", "100", "--space", "lr=log:1:0.1"], "--space"),
])
def test_a_wrong_command_is_caught(args, expected):
    """The check itself: a renamed flag, a choice that is not one, a bad setting, a real run id."""
    assert expected in (reslab_problem(args) or "")

"""`runs` as a table on a normal terminal (issue 21, point 2): at 100 columns it showed width "1" for 16, "6" for 64,
epochs "6/", a duration "3m0" for 3m09s; at 80, "66." for a final error, "fi" for finished and run ids cut alike.
A number is shown whole or not at all, columns drop by priority, ids stay told apart."""
from __future__ import annotations

import io
import re

import pytest

from cli.tables import COLUMNS, list_rows, render_runs
from core.store.runs import RunStore
from core.util.formatting import duration, epochs_text, pct
from tests.ui.fixtures import populate, quick, write_run


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables") / "runs"
    populate(root)
    for seed in (1, 2):    # a seed grid: ids alike but for the seed
        write_run(root, f"r56-B-w64-sgd-s{seed}-20261129-010455", quick(depth=56, width=64, shortcut="B", seed=seed,
                  epochs=164), "finished", epochs_done=164, final_test=66.51, order=20 + seed)
    return root


@pytest.mark.parametrize("columns", [60, 80, 100, 140, 220])
def test_runs_table_shows_numbers_whole_and_ids_apart(folder, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.setenv("NO_COLOR", "1")
    rows = list_rows(RunStore(folder).list())
    out = Terminal()
    render_runs(rows, "table", out=out)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())     # styles (bold headers) aside
    lines = text.splitlines()
    header = lines[0].split()
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    assert header[0] == "id" and "status" in header and "final" in header        # the columns that matter stay
    body = [line for line in lines[2:] if line and not line[0].isspace()][:len(rows)]    # a long note wraps
    for row, line in zip(rows, body, strict=True):    # every value shown is the whole value
        tokens = line.split()
        expected = {"status": str(row["status"]), "final": pct(row.get("final_test_err")),
                    "paper": pct(row.get("paper_err")), "epochs": epochs_text(row.get("epochs_done"),
                                                                               row.get("total_epochs")),
                    "width": str(row.get("width") or "-"), "depth": str(row.get("depth") or "-"),
                    "duration": duration(row.get("duration_s"))}
        for column, value in expected.items():
            if column in header:
                assert value in tokens, (column, value, line)
    ids = [line.split()[0] for line in body]
    assert len(set(ids)) == len(ids), ids             # rows stay told apart by their id
    if "epochs" in header:
        assert any("164/164" in line for line in body)
    if columns >= 140:
        assert "duration" in header and "34m10s" in text
    shown = {c for c in COLUMNS if c.split()[0] in header}
    if shown != set(COLUMNS):
        assert "not shown at this width" in text


@pytest.mark.parametrize("columns", [60, 100, 220])
@pytest.mark.parametrize("terminal", [True, False])
def test_runs_table_is_laid_out_as_rich_lays_it_out(folder, tmp_path, monkeypatch, columns, terminal):
    """The table is written line by line (2,000 runs took ~3 s in rich's Table, measuring and rendering every cell)
    and reads exactly as rich's SIMPLE_HEAD table did: the same widths, justification, rule, a long note wrapped the
    same way, a wide character counted as two cells; on a terminal the same styles."""
    import shutil

    from cli import tables

    root = tmp_path / "runs"
    shutil.copytree(folder, root)
    write_run(root, "ünï-漢字", quick(depth=20), "failed", epochs_done=1, order=30,
              error="a long message with [brackets] and [bold]markup[/bold] and an_unbreakable_word_longer_than_the_"
                    "note_column_is_wide, and more words after it")
    monkeypatch.setenv("COLUMNS", str(columns))
    rows = list_rows(RunStore(root).list())

    def render() -> str:
        out = Terminal() if terminal else io.StringIO()
        render_runs(rows, "table", out=out)
        return out.getvalue()

    ours = render()
    monkeypatch.setattr(tables, "_print_table", lambda *a: False)       # rich's Table, as before
    theirs = render()
    plain = re.compile(r"\x1b\[[0-9;]*m")
    assert plain.sub("", ours) == plain.sub("", theirs)
    assert ("\x1b[" in ours) == ("\x1b[" in theirs) == terminal
    styled = re.compile(r"\x1b\[([0-9;]*)m(\w[^\x1b]*)\x1b\[0m")
    assert {m for m in styled.findall(ours) if m[1].strip()} <= {m for m in styled.findall(theirs)}

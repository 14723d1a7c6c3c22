"""A lab's thousands of runs in the runs table (screens/widgets/virtual_table.py): the table holds every run at once,
makes a row's cells only when it is drawn or when the pass that sizes the columns reaches it, and a filter key makes
no row again. The runs are handed to the app as a read of the folder hands them over (``App._took_runs``): 3,000
folders would take the test longer to write than the table to show."""
from __future__ import annotations

from core.store.info import RunInfo
from screens.app import make_app
from screens.widgets import run_table
from screens.widgets.run_table import RunsTable

from .fixtures import quick
from .helpers import press, wait_for

N = 3000
LONG = "a failure whose message is the longest cell of the note column by far"


def many(root) -> list[RunInfo]:
    infos = []
    for i in range(N):
        run_id = f"run-{i:05d}"
        last = i == N - 1                   # far below the screen: only the sizing pass makes its cells
        infos.append(RunInfo(run_id, root / run_id, "failed" if last else "finished",
                             quick(depth=56 if i % 2 else 20, seed=i), {"created_at": 1e9 + i,
                                                                         "error": LONG if last else None}))
    return infos


async def test_a_table_of_thousands_makes_rows_as_drawn_and_a_filter_key_makes_none(tmp_path, monkeypatch):
    made: list[str] = []
    real = run_table.row_cells
    monkeypatch.setattr(run_table, "row_cells", lambda info, *a, **k: made.append(info.id) or real(info, *a, **k))
    root = tmp_path / "runs"
    root.mkdir()
    app = make_app(runs_dir=root, poll_interval=60.0)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        infos = many(root)
        sizing = RunsTable._make_some
        held: list[RunsTable] = []
        monkeypatch.setattr(RunsTable, "_make_some", lambda table: held.append(table))     # the pass held back
        app._took_runs([(i.id, None, i) for i in infos])
        table = app.screen.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == N and held, 10, "the whole table")
        await pilot.pause()
        assert 0 < len(made) <= 30                      # every run in the table; made: the rows drawn
        monkeypatch.setattr(RunsTable, "_make_some", sizing)
        sizing(table)
        await wait_for(pilot, lambda: len(set(made)) == N, 30, "the pass that sizes the columns")
        assert len(made) == N                           # each row made once
        note = table.columns[next(k for k in table.columns if k.value == "note")]
        assert note.content_width >= len(LONG)          # sized by a row never drawn
        table.move_cursor(row=11)                       # run-00011, a ResNet-56
        await pilot.pause()
        made.clear()
        await press(pilot, "slash")
        app.screen.query_one("#filter").value = "depth=56"     # as typed, at once: the ResNet-56 half
        await wait_for(pilot, lambda: table.row_count == N // 2, 10, "the filter")
        await press(pilot, "escape")
        await wait_for(pilot, lambda: table.row_count == N, 10, "the filter cleared")
        assert made == []                               # a filter key made no row again
        assert table.current_id == "run-00011"          # the cursor kept its run through the filter

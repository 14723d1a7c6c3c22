"""Compare never crashes the app, whatever runs are marked (issue 12, point 1)."""
from __future__ import annotations

from screens.app import make_app
from screens.compare import CompareScreen

from .fixtures import quick, write_run
from .helpers import POLL, screen_text

COMBINATIONS = {
    "different epochs": ["r20-A", "short-4"],                         # the setting "epochs" meets the column "epochs"
    "one run": ["r20-A"],
    "many runs": ["r20-A", "plain-20", "r56-A", "plain-56", "r110-stopped", "short-4", "synthetic-8"],
    "different datasets": ["r20-A", "synthetic-8"],
    "damaged runs": ["broken-run", "r20-A"],
    "only damaged": ["broken-run"],
    "no epoch yet": ["r32-missing-data", "fresh"],
    "a run that no longer exists": ["r20-A", "gone"],
    "settings named like result columns": ["r20-A", "state-named"],
}


async def test_compare_survives_any_combination_of_runs(fixture_runs):
    write_run(fixture_runs, "short-4", quick(depth=20, epochs=4), "finished", epochs_done=4, order=20)
    write_run(fixture_runs, "synthetic-8", quick(depth=8, dataset="synthetic", epochs=3), "finished",
              epochs_done=3, order=21)
    write_run(fixture_runs, "fresh", quick(depth=32), "queued", epochs_done=0, order=22)
    write_run(fixture_runs, "state-named", quick(depth=20, name="final", seed=3), "finished", epochs_done=12,
              order=23)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        for case, ids in COMBINATIONS.items():
            app.open_compare(ids)
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen), f"{case}: the compare screen did not open"
            for key in ("t", "z", "t"):
                await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, CompareScreen), case
            table = app.screen.query_one("#table")
            shown = {row.key.value for row in table.ordered_rows}
            assert shown == {i for i in ids if i in app.watcher.infos}, case
            labels = [c.label.plain for c in table.ordered_columns]
            if case == "different epochs":
                # one epochs column: done/total says both (a second 'epochs' column of the setting read as a
                # duplicate in a real terminal)
                assert labels.count("epochs") == 1, labels
                col = labels.index("epochs")
                assert sorted(str(table.get_row(r)[col]) for r in ids) == ["12/12", "4/4"]
            assert "Traceback" not in screen_text(app), case
            await pilot.press("escape")
            assert not isinstance(app.screen, CompareScreen), case


async def test_seed_groups_that_differ_in_epochs_keep_their_epochs_column(tmp_path):
    """The group table has no done/total column, so a setting that differs (epochs) stays a column of its own."""
    runs = tmp_path / "runs"
    for i, (epochs, seed) in enumerate(((12, 1), (12, 2), (4, 1), (4, 2))):
        write_run(runs, f"e{epochs}-s{seed}", quick(depth=20, epochs=epochs, seed=seed), "finished",
                  epochs_done=epochs, order=i)
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        app.open_compare(["e12-s1", "e12-s2", "e4-s1", "e4-s2"])
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen) and screen.grouped
        table = screen.query_one("#table")
        labels = [c.label.plain for c in table.ordered_columns]
        assert "epochs" in labels, labels
        col = labels.index("epochs")
        assert sorted(str(table.get_row(r.key)[col]) for r in table.ordered_rows) == ["12", "4"]

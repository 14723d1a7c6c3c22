"""The runs table, detail and compare screens over fixed run folders (no training)."""
from __future__ import annotations

import json

from screens.app import make_app
from screens.compare import CompareScreen, differing_settings
from screens.confirm import ConfirmScreen
from screens.detail import DetailScreen
from screens.new_run import NewRunScreen
from screens.runs import RunsScreen
from screens.widgets.curve_plot import CurvePlot
from screens.widgets.extend_dialog import ExtendScreen
from screens.widgets.run_table import RunsTable

from .fixtures import quick, write_run
from .helpers import POLL, screen_text, wait_for


def table_rows(app) -> dict[str, list[str]]:
    table = app.screen.query_one(RunsTable)
    out = {}
    for row in table.ordered_rows:
        out[row.key.value] = [getattr(c, "plain", str(c)) for c in table.get_row(row.key)]
    return out


def column(app, key: str) -> int:
    return [c.key.value for c in app.screen.query_one(RunsTable).ordered_columns].index(key)


async def test_table_shows_every_run_with_paper_error_and_damaged_row(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        rows = table_rows(app)
        assert set(rows) == {"r20-A", "plain-20", "r56-A", "plain-56", "r110-stopped", "r32-missing-data",
                             "broken-run"}
        status, paper, final = column(app, "status"), column(app, "paper"), column(app, "final")
        assert rows["broken-run"][status] == "damaged"
        assert rows["r20-A"][paper] == "8.75"          # He et al. 2016 Table 6, ResNet-20
        assert rows["r56-A"][paper] == "6.97"
        assert rows["plain-20"][paper] == "-"          # the paper has no table entry for plain nets
        assert rows["r32-missing-data"][status] == "failed"
        expected_final = json.loads((fixture_runs / "r20-A" / "epochs.jsonl").read_text().splitlines()[-1])
        assert rows["r20-A"][final] == f"{expected_final['test_err']:.2f}"
        # the failed run's message is readable text on its row and below the table
        assert "cannot be downloaded" in rows["r32-missing-data"][column(app, "note")]
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index("r32-missing-data"))
        await pilot.pause()
        assert "Fix: copy cifar-10-batches-py" in str(app.screen.query_one("#current").render())
        assert "Traceback" not in screen_text(app)


async def test_empty_store_shows_how_to_start(tmp_path):
    app = make_app(runs_dir=tmp_path / "nothing-here", poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "No runs yet" in text and "Press n" in text


async def test_runs_appear_and_vanish_live(fixture_runs):
    from .fixtures import write_run

    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        write_run(fixture_runs, "late-arrival", quick(depth=32, epochs=4), "finished", epochs_done=4, order=50)
        await wait_for(pilot, lambda: "late-arrival" in table_rows(app), 5, "a new folder to appear")
        import shutil

        shutil.rmtree(fixture_runs / "late-arrival")
        await wait_for(pilot, lambda: "late-arrival" not in table_rows(app), 5, "a deleted folder to vanish")


async def test_filter_by_typing_and_sort_by_header_click(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("slash", *"plain")
        await pilot.pause()
        assert set(table_rows(app)) == {"plain-20", "plain-56"}
        await pilot.press("enter")        # back to the table, the filter stays
        assert set(table_rows(app)) == {"plain-20", "plain-56"}
        await pilot.press("escape")       # clears it
        await pilot.pause()
        assert len(table_rows(app)) == 7

        table = app.screen.query_one(RunsTable)
        x = sum(c.get_render_width(table) for c in table.ordered_columns[:column(app, "final")]) + 2
        await pilot.click(RunsTable, offset=(x, 0))
        await pilot.pause()
        order = list(table_rows(app))
        finals = [float(table_rows(app)[r][column(app, "final")]) for r in order if
                  table_rows(app)[r][column(app, "final")] != "-"]
        assert finals == sorted(finals) and order[0] == "r56-A"
        await pilot.click(RunsTable, offset=(x, 0))   # again: descending
        await pilot.pause()
        order = list(table_rows(app))
        assert order[0] == "r110-stopped"


async def test_the_title_keeps_the_filter_the_marks_and_the_order_in_80_columns(fixture_runs):
    """At 80x24 the title line ended '...  ·  24 run(s)  ·  1 training  ·  filter' (tmux): the runs folder's path
    came first and the filter's count, the marks and the sort order were cut off."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("space", "space", "o", "o", "o", "o", "slash", *"finished", "enter")
        await wait_for(pilot, lambda: len(table_rows(app)) == 4, 5, "the filter")
        title = screen_text(app).splitlines()[0]        # one line (issue 34, item 6: it wrapped, moving the table)
        for part in ("2 marked", "filter 'finished': 4 shown", "final% ↑", "7 run(s)"):
            assert part in title, title
        assert app.screen.query_one("#title").size.height == 1


async def test_enter_opens_detail_with_result_against_paper_and_curves(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index("r20-A"))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        summary = str(app.screen.query_one("#summary").render())
        assert "paper 8.75%" in summary and "points" in summary
        plot = app.screen.query_one(CurvePlot)
        assert len(plot.series) == 2 and len(plot.series[0].xs) > 10 and len(plot.series[1].xs) == 12
        assert plot.ymin is not None and plot.ymax is not None and plot.ymin < 8 and plot.ymax < 100   # fitted
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_damaged_folder_opens_as_readable_detail(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index("broken-run"))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        assert "config.json is unreadable" in screen_text(app)
        await pilot.press("r")      # cannot resume a damaged run: a message, no crash
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)


async def test_mark_and_compare_shows_only_differing_settings(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await pilot.press("c")                      # nothing marked: a hint, no screen
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one(RunsTable)
        for run_id in ("r20-A", "plain-20", "r56-A", "plain-56"):
            table.move_cursor(row=table.get_row_index(run_id))
            await pilot.press("space")
        assert app.marked == {"r20-A", "plain-20", "r56-A", "plain-56"}
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        cols = [c.label.plain for c in app.screen.query_one("#table").ordered_columns]
        assert cols[:3] == ["run", "depth", "shortcut"] and "epochs" not in cols[1:3]
        plain, res = app.screen.query_one("#plot-plain", CurvePlot), app.screen.query_one("#plot-res", CurvePlot)
        assert plain.display and res.display       # plain | residual, like the paper's Fig. 6
        assert {s.end_label for s in plain.series if s.end_label} == {"20", "56"}
        await pilot.press("escape")


def test_differing_settings_ignores_names_and_equal_fields():
    a, b = quick(depth=20, name="x"), quick(depth=56, name="y", lr=0.05)
    assert differing_settings([a, b]) == ["depth", "lr"]


async def test_delete_asks_and_removes_the_folder(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index("plain-56"))
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("escape")                 # cancel keeps it
        await pilot.pause()
        assert (fixture_runs / "plain-56").is_dir()
        await pilot.press("d")
        await pilot.pause()
        await pilot.click("#answer-delete")
        await wait_for(pilot, lambda: "plain-56" not in table_rows(app), 5, "the row to go")
        assert not (fixture_runs / "plain-56").exists()


async def test_the_arrow_keys_move_between_a_dialogs_answers(fixture_runs):
    """In the quit dialog (Stop & quit / Queue / Keep waiting) right then enter stopped and quit instead of queueing:
    the arrows did nothing, only tab moved between the buttons (a real terminal, 100x30)."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    answers = []
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        dialog = ConfirmScreen("Quit?", "what now", [("stop", "Stop", "error"), ("queue", "Queue", "warning"),
                                                      ("wait", "Wait", "primary")])
        app.push_screen(dialog, answers.append)
        await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "answer-stop", 5, "the dialog")
        await pilot.press("right")
        assert app.focused.id == "answer-queue"
        await pilot.press("right", "right")             # stays on the last answer, as a row of buttons does
        assert app.focused.id == "answer-wait"
        await pilot.press("left", "left", "left")
        assert app.focused.id == "answer-stop"
        await pilot.press("right", "enter")
        await wait_for(pilot, lambda: answers, 5, "the answer")
        assert answers == ["queue"]
        # the extend dialog (x on a finished run): the arrows edit its field, and move along its answers
        app.push_screen(ExtendScreen("r20-A", 12), answers.append)
        await wait_for(pilot, lambda: app.focused is not None and app.focused.id == "more", 5, "the extend dialog")
        await pilot.press("left", "right")
        assert app.focused.id == "more"
        await pilot.press("tab")
        assert app.focused.id == "answer-app"
        await pilot.press("right")
        assert app.focused.id == "answer-queue"
        await pilot.press("left", "left")
        assert app.focused.id == "answer-app"


async def test_the_stop_dialog_counts_every_queued_run_and_says_what_stop_does_to_them(fixture_runs):
    """Stopping the first run of an 8-run grid said '7 queued run(s) follow it in this app:' and named 4 of them,
    with nothing for the other 3 nor for what a plain Stop does to them (the next one starts), tmux 100x30."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.in_app[:] = ["r110-stopped", "r20-A", "plain-20", "r56-A", "plain-56", "r32-missing-data"]
        app.confirm_stop("r110-stopped")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the dialog")
        question = str(app.screen.query_one("#question").render())
        app.in_app.clear()
        assert "5 queued run(s)" in question and "and 1 more" in question, question
        assert "Stop: the next of them starts" in question, question


async def test_home_and_end_go_to_the_first_and_the_last_run(fixture_runs):
    """End in the runs table scrolled it sideways to its last column (the status and results went out of view) and
    left the cursor where it was; Home only scrolled back (Textual's DataTable keys, tmux 100x30)."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        await pilot.press("end")
        assert table.cursor_row == table.row_count - 1 and table.scroll_x == 0
        await pilot.press("home")
        assert table.cursor_row == 0 and table.scroll_x == 0
        await pilot.press("f")                                   # the seed groups' table too
        await wait_for(pilot, lambda: app.screen.query_one("#groups").display, 5, "the groups")
        groups = app.screen.query_one("#groups")
        await pilot.press("end")
        assert groups.cursor_row == groups.row_count - 1 and groups.scroll_x == 0


async def test_the_line_under_the_table_names_the_net_as_the_other_screens_do_with_its_seed(fixture_runs):
    """The line under the table read 'plain-14 none w4 sgd multistep' (the shortcut said twice, a name no other
    screen uses) and gave no seed, though the table has no seed column either (tmux 100x30)."""
    write_run(fixture_runs, "p20-s2", quick(depth=20, shortcut="none", seed=2), "finished", epochs_done=3, order=9)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index("p20-s2"))
        await wait_for(pilot, lambda: "p20-s2" in str(app.screen.query_one("#current").render()), 5, "its line")
        line = str(app.screen.query_one("#current").render())
        assert "plain-20 w16 sgd cosine seed 2 ·" in line and "none" not in line, line


async def test_every_key_is_in_the_command_palette(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"New", "Open", "Mark", "Compare", "Stop", "Pause", "Resume", "Del", "Filter", "Quit"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"New")
        await wait_for(pilot, lambda: "New" in screen_text(app), 5, "the palette to list New")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), 5, "the new-run form")


async def test_folders_with_wrong_types_or_nan_losses_never_crash_a_screen(fixture_runs):
    from screens.monitor import MonitorScreen

    from .fixtures import write_run

    odd = write_run(fixture_runs, "odd-types", quick(depth=20), "finished", epochs_done=2, order=60)
    odd.update_status(epoch="two")
    nan = write_run(fixture_runs, "nan-loss", quick(depth=20), "diverged", epochs_done=2, order=61,
                    error="loss became nan at step 20")
    with nan.steps_path.open("a") as fh:
        fh.write('{"step": 110, "loss": NaN, "err": NaN, "lr": 0.1}\n')   # what json.dumps writes for a NaN loss
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert table_rows(app)["odd-types"][column(app, "status")] == "damaged"
        await app.push_screen(MonitorScreen("nan-loss"))
        await pilot.pause()
        from screens.widgets.curve_plot import CurvePlot

        assert len(app.screen.query_one("#loss-plot", CurvePlot).series[0].xs) == 10   # the NaN is left out


async def test_screens_open_each_other_through_the_app_and_follow_changes(fixture_runs):
    from core.store.runs import Run
    from screens.monitor import MonitorScreen

    from .fixtures import add_running

    live = add_running(fixture_runs)
    try:
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            app.open_run("r44-live")                   # "auto": a running run opens in the monitor
            await pilot.pause()
            assert isinstance(app.screen, MonitorScreen)
            await pilot.press("i")                     # the detail covers the monitor ...
            assert isinstance(app.screen, DetailScreen) and app.screen.run_id == "r44-live"
            await pilot.press("escape")                # ... and esc goes back to it (issue 12, point 5)
            assert isinstance(app.screen, MonitorScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)

            app.open_run("r110-stopped")
            await pilot.pause()
            assert isinstance(app.screen, DetailScreen)
            Run(fixture_runs / "r110-stopped").update_status(state="failed", error="the disk is full")
            await wait_for(pilot, lambda: "the disk is full" in screen_text(app), 5, "the detail to follow its run")
            await pilot.click("#clone")                # a fresh form filled from the run's settings
            await pilot.pause()
            assert isinstance(app.screen, NewRunScreen) and app.screen.query_one("#f-depth").value == "110"
            await pilot.press("escape")
            assert isinstance(app.screen, RunsScreen)
    finally:
        live.release_lock()


async def test_marks_keys_and_report_on_the_runs_screen(fixture_runs, monkeypatch):
    """Issue 21, point 9: space moved the cursor in the runs view but not in the seed-group view; there was no key to
    clear every mark; the home screen had no report key; its palette listed 'Keys of this screen' twice."""
    import screens.runs as runs_screen
    from screens.widgets.keys import screen_bindings

    reported = []
    monkeypatch.setattr(runs_screen, "export_report", lambda screen, ids: reported.append(ids))
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        descriptions = [a.binding.description for a in screen_bindings(app.screen)]
        assert descriptions.count("Keys of this screen") == 1, descriptions
        await pilot.press("space", "space")                       # two runs marked, the cursor moving down
        assert len(app.marked) == 2
        await pilot.press("e")
        assert reported and sorted(reported[-1]) == sorted(app.marked)
        await pilot.press("u")                                    # clear all marks
        assert not app.marked
        await pilot.press("e")                                    # nothing marked: the runs shown
        assert set(reported[-1]) == {i.id for i in app.screen.visible_infos()}
        await pilot.press("f")
        await wait_for(pilot, lambda: app.screen.query_one("#groups").display, 5, "the groups")
        groups = app.screen.query_one("#groups")
        row = groups.cursor_row
        await pilot.press("space")
        assert groups.cursor_row == row + 1 and app.marked       # a group marked, and on to the next row


async def test_lr_drops_say_their_unit_and_seeds_get_a_column(tmp_path):
    """Issue 34, item 6: 'lr drops' mixed 51,75 (epochs) and 32000,48000 (iterations) without a unit; no seed column."""
    from core.spec.presets import preset
    from core.store.runs import RunStore

    store = RunStore(tmp_path / "runs")
    store.create(preset("lab-report", dataset="synthetic", name="lab", seed=1))
    store.create(preset("he2016", dataset="synthetic", name="paper", seed=2))
    app = make_app(runs_dir=store.root, poll_interval=POLL)
    async with app.run_test(size=(160, 30)) as pilot:
        await wait_for(pilot, lambda: len(table_rows(app)) == 2, 5, "the runs")
        table = app.screen.query_one(RunsTable)
        keys = table.column_keys()
        assert "v:seed" in keys and "v:milestones" in keys
        cells = {run_id: dict(zip(keys, row)) for run_id, row in table_rows(app).items()}
        assert cells["lab"]["v:milestones"] == "51,75 ep" and cells["paper"]["v:milestones"] == "32000,48000 it"
        assert cells["lab"]["v:seed"] == "1" and cells["paper"]["v:seed"] == "2"

"""Snapshots of every screen at 100x30 (and the home screen at 80x24) over fixed, hand-written run folders.

The app runs from the test's temporary folder with a relative runs path, so no temporary path, clock or host
name reaches the screen. Update after a deliberate change with ``pytest tests/ui --snapshot-update`` and look
at the SVGs in tests/ui/__snapshots__ before committing them.
"""
from __future__ import annotations

import pytest
from rich.text import Text

from screens.app import make_app
from screens.compare import CompareScreen
from screens.detail import DetailScreen
from screens.monitor import MonitorScreen
from screens.new_run import NewRunScreen

from .fixtures import add_running, populate
from .helpers import wait_for

SIZE = (100, 30)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # A data folder that is there: the form's note for a missing one names its absolute path, which wraps by the
    # length of the checkout's path (CI's clone made the form a line taller than here: another scrollbar thumb)
    (tmp_path / "data" / "cifar-10-batches-py").mkdir(parents=True)
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path / "data"))
    populate(tmp_path / "runs")
    live = add_running(tmp_path / "runs")   # holds the writer lock like a trainer, so it shows as running
    yield "runs"
    live.release_lock()


def app_for(store):
    # Polling is slowed so that the screen is drawn from the first read only.
    return make_app(runs_dir=store, poll_interval=3600)


def test_runs_screen(snap_compare, store):
    assert snap_compare(app_for(store), terminal_size=SIZE)


def test_runs_screen_80x24(snap_compare, store):
    assert snap_compare(app_for(store), terminal_size=(80, 24))


def test_runs_screen_no_color(snap_compare, store, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = app_for(store)
    assert app.no_color
    assert snap_compare(app, terminal_size=SIZE)


def test_runs_screen_filtered_and_marked(snap_compare, store):
    assert snap_compare(app_for(store), press=["space", "space", "slash", *"plain"], terminal_size=SIZE)


def tables_sized(screen) -> bool:
    """Every DataTable of the screen has sized its columns for the rows it holds: DataTable does it when idle after
    rows are added, and a loaded machine once took the monitor's picture before (its lr column one cell short)."""
    from textual.widgets import DataTable

    return all(column.content_width >= max((Text.from_markup(c).cell_len if isinstance(c, str) else c.cell_len
                                            for c in table.get_column(column.key)), default=0)
               for table in screen.query(DataTable) for column in table.ordered_columns)


async def files_read(pilot, *run_ids):
    """The runs' files as the poller's thread reads them for the screen (screens/run_files.py), the tables sized
    for what was read, then the frame."""
    await wait_for(pilot, lambda: all(pilot.app.run_files(r).read for r in run_ids), 10, "the runs' files read")
    await wait_for(pilot, lambda: tables_sized(pilot.app.screen), 10, "the tables' columns sized")
    await pilot.pause()


async def open_form(pilot):
    """The form once it is ready (depth focused, its help shown): not after one pause, which a loaded machine
    can outrun (the CI once took the picture before the form had focused depth)."""
    form = NewRunScreen()
    await pilot.app.push_screen(form)
    await wait_for(pilot, lambda: form.is_mounted and form.ready and pilot.app.focused is not None
                   and pilot.app.focused.id == "f-depth", 10, "the form ready")
    await pilot.pause()


def test_new_run_form(snap_compare, store):
    assert snap_compare(app_for(store), run_before=open_form, terminal_size=SIZE)


def test_new_run_form_with_errors(snap_compare, store):
    async def bad_values(pilot):
        await open_form(pilot)
        for selector, text in (("#f-depth", "20,21"), ("#f-width", "0"), ("#f-lr", "fast")):
            pilot.app.screen.query_one(selector).focus()
            await pilot.press("ctrl+a", "ctrl+k", *text)
        await pilot.pause()

    assert snap_compare(app_for(store), run_before=bad_values, terminal_size=SIZE)


def test_new_run_form_wide(snap_compare, store):
    assert snap_compare(app_for(store), run_before=open_form, terminal_size=(120, 40))


def test_monitor_of_running_run(snap_compare, store):
    async def monitor(pilot):
        await pilot.app.push_screen(MonitorScreen("r44-live"))
        await files_read(pilot, "r44-live")

    assert snap_compare(app_for(store), run_before=monitor, terminal_size=SIZE)


def test_detail_of_finished_run(snap_compare, store):
    async def detail(pilot):
        await pilot.app.push_screen(DetailScreen("r20-A"))
        await files_read(pilot, "r20-A")

    assert snap_compare(app_for(store), run_before=detail, terminal_size=SIZE)


def test_detail_of_failed_run(snap_compare, store):
    async def detail(pilot):
        await pilot.app.push_screen(DetailScreen("r32-missing-data"))
        await files_read(pilot, "r32-missing-data")

    assert snap_compare(app_for(store), run_before=detail, terminal_size=SIZE)


def test_compare_plain_vs_residual(snap_compare, store):
    async def compare(pilot):
        await pilot.app.push_screen(CompareScreen(["plain-20", "plain-56", "r20-A", "r56-A"]))
        await files_read(pilot, "plain-20", "plain-56", "r20-A", "r56-A")

    assert snap_compare(app_for(store), run_before=compare, terminal_size=SIZE)


def test_compare_zoomed_like_fig6(snap_compare, store):
    async def compare(pilot):
        await pilot.app.push_screen(CompareScreen(["plain-20", "plain-56", "r20-A", "r56-A"]))
        await files_read(pilot, "plain-20", "plain-56", "r20-A", "r56-A")
        await pilot.press("z")

    assert snap_compare(app_for(store), run_before=compare, terminal_size=SIZE)


def test_stop_confirmation(snap_compare, store):
    async def ask(pilot):
        pilot.app.confirm_stop("r44-live")
        await pilot.pause()

    assert snap_compare(app_for(store), run_before=ask, terminal_size=SIZE)

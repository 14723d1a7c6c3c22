"""Charts (issue 12, point 6): the error axis fits the data, the paper's 0-20 % and a log axis are a key away, test
error is a line through the epoch ends with a marker per run, the monitor shows real charts."""
from __future__ import annotations

from rich.text import Text

from screens.app import make_app
from screens.detail import DetailScreen
from screens.monitor import MonitorScreen
from screens.widgets.curve_plot import MARKERS, CurvePlot, Series, draw, run_series

from .fixtures import add_running, quick, write_run
from .helpers import POLL, screen_text, wait_for


def ticks(plot_text: str) -> list[str]:
    """The y-axis labels of a drawn plot, top to bottom."""
    return [line.split("┤")[0].strip() for line in plot_text.splitlines() if "┤" in line]


async def test_error_axis_fits_the_data_and_z_and_y_change_the_view(fixture_runs):
    write_run(fixture_runs, "hard-run", quick(depth=20, epochs=12), "finished", epochs_done=12, final_test=62.0,
              order=30)                                    # errors between about 60 and 85 %
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run("hard-run", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        plot = app.screen.query_one(CurvePlot)
        assert 50 <= plot.ymin < 60 and 85 <= plot.ymax <= 90, (plot.ymin, plot.ymax)   # not 0-100: not flat
        assert "fit to the data" in plot.title
        drawn = plot.render().plain
        assert ticks(drawn)[0].startswith(f"{plot.ymax:g}") and ticks(drawn)[-1] == f"{plot.ymin:g}"
        await pilot.press("z")                             # the paper's Fig. 6 range
        assert (plot.ymin, plot.ymax) == (0.0, 20.0) and "Fig. 6" in plot.title
        await pilot.press("z")
        assert (plot.ymin, plot.ymax) == (0.0, 100.0) and plot.render().plain != drawn
        await pilot.press("z", "y")                        # back to fitted, on a log axis
        assert plot.log and "log" in plot.title and plot.ymin > 0
        assert ticks(plot.render().plain)[0].startswith("100") or plot.ymax <= 100


def test_test_error_is_a_line_through_the_epoch_ends_with_markers():
    """A two-epoch run: the markers sit at the epoch ends (x = 40 and 80 of 80), joined by a solid line; the
    training error is dotted (no marker). Once drawn as a block in the wrong place."""
    steps = [{"step": s, "err": 90 - s / 2} for s in range(4, 81, 4)]
    epochs = [{"epoch": 1, "step": 40, "test_err": 70.0}, {"epoch": 2, "step": 80, "test_err": 60.0}]
    train, test = run_series("", steps, epochs, "#ffffff")
    assert test.marker == MARKERS[0] and not train.marker and train.dotted
    text = draw([train, test], 62, 12, ymin=50, ymax=90).plain
    rows = text.splitlines()
    marks = [(r, line.index(MARKERS[0])) for r, line in enumerate(rows) if MARKERS[0] in line]
    assert len(marks) == 2, text
    (r1, c1), (r2, c2) = sorted(marks, key=lambda m: m[1])
    left = rows[0].index("┤") + 1
    width = len(rows[-2]) - left - 1                        # the x axis line: └────
    assert abs((c1 - left) - width / 2) <= 2 and abs((c2 - left) - width) <= 2   # x = 40 and 80 of 80
    assert r1 < r2                                          # 70 % above 60 %
    between = [line[c1 + 1:c2] for line in rows[r1:r2 + 1]]
    assert all(any(ch != " " for ch in part) for part in between[:1])   # a line joins them


def test_without_colour_runs_differ_by_marker():
    a = Series("a", [10, 20], [50, 40], marker=MARKERS[0])
    b = Series("b", [10, 20], [30, 20], marker=MARKERS[1])
    plain = draw([a, b], 40, 10, ymin=0, ymax=60).plain
    assert plain.count(MARKERS[0]) == 2 and plain.count(MARKERS[1]) == 2


async def test_the_monitor_draws_loss_and_error_charts_a_few_rows_high(fixture_runs):
    live = add_running(fixture_runs)
    try:
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            app.open_run("r44-live", "monitor")
            await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the monitor")
            await pilot.pause()
            loss, err = app.screen.query_one("#loss-plot", CurvePlot), app.screen.query_one("#err-plot", CurvePlot)
            assert loss.size.height >= 6 and err.size.height >= 6      # a chart, not a 2-row sparkline
            assert len(loss.series[0].xs) > 20 and loss.unit == ""
            assert err.series[1].marker and len(err.series[1].xs) == 5   # five finished epochs
            shown = screen_text(app)
            assert shown.count(err.series[1].marker) >= 5 and "training loss" in shown
            assert "last 1 points" not in shown
    finally:
        live.release_lock()


def test_an_empty_plot_says_so():
    assert isinstance(draw([], 40, 10), Text) and "no points yet" in draw([], 40, 10).plain


def test_the_middle_tick_is_a_round_number_on_its_nearest_row():
    """A 6-row error chart fitted to 0-90 % labelled its middle row 54 (the value that row happens to hold); the
    middle label is now a round value (50) on the row nearest to it, as on a log axis (10 between 1 and 100)."""
    s = Series("a", [0, 50, 100], [90, 40, 0])
    assert ticks(draw([s], 50, 8, ymin=0, ymax=90).plain) == ["90%", "50", "0"]
    s = Series("a", [0, 50, 100], [100, 10, 1])
    assert ticks(draw([s], 50, 9, ymin=1, ymax=100, log=True).plain) == ["100%", "10", "1"]


def test_a_log_axis_fits_the_data_too():
    """Errors between 60 and 95 % on the log axis were squeezed into its top rows: it ran from 10 to 100."""
    from screens.widgets.curve_plot import y_limits
    s = Series("a", [0, 50, 100], [95, 80, 60])
    assert y_limits([s], "auto", log=True) == (50, 100)
    assert y_limits([Series("loss", [0, 1], [2.3, 0.04])], "auto", log=True, unit="") == (0.02, 2.5)
    assert y_limits([s], "fig6", log=True) == (1, 20)


async def test_the_detail_plot_title_fits_80_columns(fixture_runs):
    """At 80 columns the title lost its end ('· y: log' cut to '· y'): it uses the short names there."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.open_run("r20-A", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        await pilot.pause()
        assert "z: 0-20 % (Fig. 6) · y: log" in screen_text(app)
        await pilot.resize_terminal(120, 30)
        await wait_for(pilot, lambda: "z: 0-20 % (the paper's Fig. 6) · y: log" in screen_text(app), 5,
                       "the long title on a wide terminal")

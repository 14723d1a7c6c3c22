"""The results side as a user writing up a depth sweep meets it (runs table order, seed groups, compare labels and
title, the queue screen's hint, the detail of a queued or damaged run): each test is a defect seen in tmux at
80x24 .. 220x60 over a sweep of 8, 14, 20 x A, none x 2 seeds."""
from __future__ import annotations

from screens.app import make_app
from screens.widgets.run_table import RunsTable

from .fixtures import quick, write_run
from .helpers import POLL, press, screen_text, wait_for


def sweep(root, depths=(8, 14, 20), shortcuts=("A", "none"), seeds=(1, 2)):
    """A depth sweep as `queue add --depths 8,14,20 --shortcuts A,none --seeds 1,2` names its runs."""
    order = 0
    for depth in depths:
        for sc in shortcuts:
            for seed in seeds:
                order += 1
                name = f"r{depth}-{'plain' if sc == 'none' else sc}-w4-sgd-s{seed}-20261129-013724"
                write_run(root, name, quick(depth=depth, shortcut=sc, width=4, seed=seed, epochs=3), "finished",
                          epochs_done=3, final_test=80.0 + depth / 10 + seed, order=order)
    return root


def shown_ids(app) -> list[str]:
    return [row.key.value for row in app.screen.query_one(RunsTable).ordered_rows]


async def test_sorting_by_run_puts_depth_8_before_14_and_20(tmp_path):
    """Sorted by run, a depth sweep read r14-…, r14-…, r20-…, r8-… (text order: '1' < '2' < '8'); numbers inside
    ids now compare as numbers."""
    sweep(tmp_path, shortcuts=("A",), seeds=(1,))
    write_run(tmp_path, "r110-A", quick(depth=110), "finished", epochs_done=2, order=9)
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "o")                 # the first o sorts by run
        await wait_for(pilot, lambda: "sorted by run ↑" in screen_text(app), 5, "the sort by run")
        assert [i.split("-")[0] for i in shown_ids(app)] == ["r8", "r14", "r20", "r110"]


async def test_the_mark_column_sort_names_itself_and_a_key_reverses_the_order(tmp_path):
    """o through every column ended on the mark column with the title 'sorted by   ↑' (its header is blank); and only
    a click on a header reversed the order, which a keyboard (tmux, ssh) cannot do: O now reverses it."""
    sweep(tmp_path, shortcuts=("A",), seeds=(1,))
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "o")
        await wait_for(pilot, lambda: "sorted by run ↑" in screen_text(app), 5, "the sort by run")
        await press(pilot, "O")
        await wait_for(pilot, lambda: "sorted by run ↓" in screen_text(app), 5, "the order reversed by O")
        assert [i.split("-")[0] for i in shown_ids(app)] == ["r20", "r14", "r8"]
        await press(pilot, "O")
        await wait_for(pilot, lambda: "sorted by run ↑" in screen_text(app), 5, "O again: ascending")
        await press(pilot, *["o"] * 16)         # run -> ... -> note -> mark
        await wait_for(pilot, lambda: "sorted by mark ↑" in screen_text(app), 5, "the mark column named")
        assert "sorted by   " not in screen_text(app)


async def test_the_group_name_stays_in_view_when_the_seed_groups_scroll_sideways(tmp_path):
    """In the seed groups (f) at 100 columns, scrolling right to 'other settings that differ' (what tells two
    'ResNet-8 w4 sgd multistep' rows apart) took the group names off the left edge: ' w4 sgd multistep   0/1 ...'."""
    from screens.widgets.group_table import GroupsTable

    sweep(tmp_path)
    write_run(tmp_path, "diverge-r8", quick(depth=8, width=4, lr=1e6, epochs=2), "diverged", epochs_done=0, order=20)
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "f")
        table = app.screen.query_one(GroupsTable)
        await wait_for(pilot, lambda: table.display and table.row_count == 7, 5, "the seed groups")
        await press(pilot, *["right"] * 12)
        await wait_for(pilot, lambda: table.scroll_x >= table.max_scroll_x > 0, 5, "the table scrolled right")
        text = screen_text(app)
        assert "lr=1000000" in text or "lr=1e+06" in text, text
        assert "ResNet-8 w4 sgd" in text and "plain-20 w4 sgd" in text, text


async def open_compare(pilot, ids: list[str]) -> None:
    await pilot.pause()
    pilot.app.open_compare(ids)
    await wait_for(pilot, lambda: "Compare" in screen_text(pilot.app), 5, "the compare screen")


async def test_single_runs_of_one_depth_get_end_labels_that_tell_them_apart(tmp_path):
    """Compare of two seeds of plain-8 as single runs (f): both curves ended in the same label 'r8-plain-w' (the
    first 10 characters of ids that differ only further on)."""
    from screens.widgets.curve_plot import CurvePlot

    sweep(tmp_path, depths=(8,), shortcuts=("none",))
    ids = sorted(p.name for p in tmp_path.iterdir())
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_compare(pilot, ids)
        await press(pilot, "f")                 # seed groups off: one curve per run
        plot = app.screen.query_one("#plot-plain", CurvePlot)
        await wait_for(pilot, lambda: sum(1 for s in plot.series if s.end_label) == 2, 5, "two labelled curves")
        labels = [s.end_label for s in plot.series if s.end_label]
        assert len(set(labels)) == 2, labels
        text = screen_text(app)
        assert all(label in text for label in labels), (labels, text)


async def test_the_compare_title_of_many_runs_fits_its_line_and_says_how_many_more(tmp_path):
    """Compare of the whole sweep (12 runs) at 100 columns: the one-line title showed 'Compare 12 runs:
    r8-A-w4-sgd-s1-20261129-013724, r8-A-w4-sgd-s2-20261129-013724,' and nothing said that ten more were cut."""
    sweep(tmp_path)
    ids = sorted(p.name for p in tmp_path.iterdir())
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_compare(pilot, ids)
        title = screen_text(app).splitlines()[0].rstrip()
        assert title.startswith(" Compare 12 runs") and not title.endswith(","), title
        shown = [i for i in ids if i in title]
        assert shown and title.endswith(f"+{12 - len(shown)} more"), title
        await pilot.resize_terminal(220, 40)
        await wait_for(pilot, lambda: sum(i in screen_text(app).splitlines()[0] for i in ids) > len(shown), 5,
                       "more ids on a wider terminal")


async def test_the_empty_queue_screen_says_its_whole_hint_and_n_opens_the_form(tmp_path):
    """g with nothing queued, at 100 columns: 'nothing queued or training: launch runs into the queue from the new-run
    form (n) or with' (the one-line hint cut before `tui_app.py queue add`), at 80 the title lost 'starts one';
    and n there did nothing."""
    from screens.new_run import NewRunScreen
    from screens.queue_devices import QueueScreen

    sweep(tmp_path, depths=(8,), shortcuts=("A",), seeds=(1,))
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await press(pilot, "g")
        await wait_for(pilot, lambda: isinstance(app.screen, QueueScreen), 5, "the queue screen")
        await wait_for(pilot, lambda: "nothing queued" in screen_text(app), 5, "the hint")
        assert "queue add" in " ".join(screen_text(app).split()), screen_text(app)
        assert "starts one)" in screen_text(app).splitlines()[0]      # the title ended '... into the queue' at 80
        await press(pilot, "n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen), 5, "the new-run form from the queue")


async def test_the_detail_of_a_run_in_the_folders_queue_does_not_say_press_r(tmp_path):
    """x on a finished run, 'Extend, queue it': its detail read 'state queued · 3/5 epochs done ... (press r to
    start)', though the folder's scheduler starts it (r would train it in the app instead); the runs table's line
    said 'in the queue at position 1'. The detail now says where it waits, as the table does."""
    from core.serve import queue as Q
    from core.store.runs import RunStore
    from screens.detail import DetailScreen
    from tests.conftest import tiny_config

    store = RunStore(tmp_path)
    Q.enqueue(store, [tiny_config(name=n) for n in ("q1", "q2")])
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.scheduler_position("q2") == 2, 5, "the folder's queue read")
        app.open_run("q2", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        summary = str(app.screen.query_one("#summary").render())
        assert "press r to start" not in summary, summary
        assert "in the queue at position 2" in summary, summary


async def test_the_seed_groups_do_not_claim_a_sort_they_do_not_have(tmp_path):
    """In the seed groups (f) the title said 'sorted by width ↑' after o (and 'sorted by depth ↓' after O) while the
    groups kept the paper's order (plain, A, B, then depth), as a click on their header does: o and O do not apply
    there, and the title names the runs' order only over the runs."""
    from screens.widgets.group_table import GroupsTable

    sweep(tmp_path)
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        await press(pilot, "o", "o")
        await wait_for(pilot, lambda: "sorted by status ↑" in screen_text(app), 5, "the runs sorted by status")
        await press(pilot, "f")
        table = app.screen.query_one(GroupsTable)
        await wait_for(pilot, lambda: table.display and table.row_count == 6, 5, "the seed groups")
        order = [g.name for g in table.groups]
        await press(pilot, "o", "O")
        await pilot.pause(0.2)
        assert "sorted by" not in screen_text(app).splitlines()[0], screen_text(app).splitlines()[0]
        assert [g.name for g in table.groups] == order
        await press(pilot, "f")                  # back to the runs: their order as it was
        await wait_for(pilot, lambda: "sorted by status ↑" in screen_text(app), 5, "the runs' order kept")


async def test_the_detail_footer_of_a_damaged_run_offers_only_what_works(tmp_path):
    """The detail of a damaged folder (config.json unreadable, no curves, no checkpoint) listed 'n Clone d Delete
    z Y range l Layer resp. e Report' in its footer: n said 'no readable config to clone', z changed an axis no plot
    showed, l said 'no checkpoint yet', e failed. Only the keys that apply are shown (and run)."""
    from screens.detail import DetailScreen

    bad = tmp_path / "damaged-one"
    bad.mkdir()
    (bad / "config.json").write_text("{ nope")
    write_run(tmp_path, "r8-A", quick(depth=8, width=4, epochs=3), "finished", epochs_done=3, order=1)
    app = make_app(runs_dir=tmp_path, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run("damaged-one", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        await pilot.pause(0.1)
        footer = screen_text(app).splitlines()[-1]
        assert "Delete" in footer and "Back" in footer, footer
        for gone in ("Clone", "Y range", "Layer resp.", "Report"):
            assert gone not in footer, footer
        # nor does it promise 'a fresh start when resumed': a damaged run is not resumed (resume --repair is)
        assert "fresh start" not in screen_text(app) and "resume --repair" in " ".join(screen_text(app).split())
        await press(pilot, "escape")
        app.open_run("r8-A", "detail")            # a finished run keeps them
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen) and "r8-A" in screen_text(app), 5,
                       "the detail of r8-A")
        await pilot.pause(0.1)
        footer = screen_text(app).splitlines()[-1]
        for kept in ("Clone", "Y range", "Layer resp.", "Report"):
            assert kept in footer, footer

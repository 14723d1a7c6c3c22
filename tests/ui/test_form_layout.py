"""The new-run form's keys, help area, reopening and length estimate (issue 21, point 6), as seen at 100x30 and
100x80 in a real terminal."""
from __future__ import annotations

import pickle

import numpy as np

from screens.app import make_app
from screens.widgets.form_text import WHERE_HELP

from .helpers import POLL, press, screen_text, wait_for
from .test_form import form_ready, open_form


def shortcuts(form) -> list[str]:
    return form.raw_values()["shortcut"]


async def test_arrows_and_letters_work_on_the_shortcut_boxes_and_on_off_boxes(fixture_runs):
    """The footer says '←→: choices' and ? says 'a letter jumps', but both did nothing on the shortcut boxes."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        assert shortcuts(form) == ["A"]
        form.query_one("#f-shortcut-A").focus()
        await pilot.pause()
        await press(pilot, "right")
        assert app.focused is form.query_one("#f-shortcut-B") and shortcuts(form) == ["A"]
        await press(pilot, "right", "right")                             # on to none, then round to A
        assert app.focused is form.query_one("#f-shortcut-A")
        await press(pilot, "left")
        assert app.focused is form.query_one("#f-shortcut-none")
        await press(pilot, "b")                                          # a letter ticks its box
        await wait_for(pilot, lambda: shortcuts(form) == ["A", "B"], 5, "B ticked")
        assert app.focused is form.query_one("#f-shortcut-B") and len(form.configs) == 2
        await press(pilot, "a", "n")                                     # A unticked, none ticked
        await wait_for(pilot, lambda: shortcuts(form) == ["B", "none"], 5, "A off, none on")
        assert app.focused is form.query_one("#f-shortcut-none")
        form.query_one("#f-augment").focus()                             # a lone on/off box: two choices
        await pilot.pause()
        before = form.query_one("#f-augment").value
        await press(pilot, "right")
        assert form.query_one("#f-augment").value is (not before)
        await press(pilot, "left")
        assert form.query_one("#f-augment").value is before


async def test_the_help_under_the_form_shows_long_messages_whole_at_100x30(fixture_runs):
    """At 100x30 the help area cut WHERE's help after '(g shows' and long field help after two lines."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#where").focus()
        await wait_for(pilot, lambda: "runs in" in screen_text(app) and "where:" in screen_text(app), 5, "its help")
        flat = " ".join(" ".join(screen_text(app).split()).split("where:", 1)[1].split())
        assert " ".join(WHERE_HELP.split()) in flat, flat
        form.query_one("#f-variants").focus()
        await pilot.pause()
        assert "variants: Settings that go together" in screen_text(app)     # it read 'f-variants:'
        assert "in milestones" in " ".join(screen_text(app).split()), screen_text(app)   # its last words too


async def test_the_form_reopens_at_its_top_with_the_focused_field_in_view(fixture_runs):
    """Scrolled down with the mouse (depth kept the focus), cancelled and reopened: the form showed its middle and
    the focus was on depth, off screen."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        assert app.focused is form.query_one("#f-depth")
        scroller = form.query_one("#form")
        scroller.scroll_to(y=scroller.max_scroll_y, animate=False, immediate=True)
        await pilot.pause()
        assert " depth            20" not in screen_text(app)       # its row scrolled out (its help stays)
        await press(pilot, "escape")
        await wait_for(pilot, lambda: not form.is_current, 5, "the runs table")
        await press(pilot, "n")
        await wait_for(pilot, lambda: form_ready(app), 10, "the form again")
        await pilot.pause()
        assert scroller.scroll_y == 0 and app.focused is form.query_one("#f-depth")
        assert " depth            20" in screen_text(app) and "depth: Network depth" in screen_text(app)


async def test_a_form_built_wide_then_opened_at_100x80_has_no_help_left_beside_the_fields(fixture_runs):
    """Built at 140 columns (help beside each field), opened at 100x80: the variants' four lines of help stayed
    beside the field, a block of the form that the narrow layout does not have."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(140, 80)) as pilot:
        form = app.prebuild_form()
        await wait_for(pilot, lambda: form.is_mounted, 10, "the form built off screen")
        await pilot.resize_terminal(100, 80)
        await pilot.pause()
        form = await open_form(pilot)
        await pilot.pause()
        text = screen_text(app)
        assert "-narrow" in form.classes and "Settings that go together" not in text, text
        assert "depth: Network depth" in text                   # the focused field's help, under the form


def write_batches(root, images: int) -> None:
    """A CIFAR-10 python-batches folder with ``images`` training images in five files, as the official archive
    lays them out (protocol 2, labels before the pixels)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(images), 5), start=1):
        batch = {"batch_label": f"training batch {i} of 5", "labels": [int(v % 10) for v in part],
                 "data": np.zeros((len(part), 3072), np.uint8), "filenames": [f"{v}.png" for v in part]}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=2))


async def test_the_iteration_estimate_counts_the_images_and_the_last_partial_batch(tmp_path):
    """5,000 images at batch 128 read as 'about 117 iterations (39 per epoch)' (the count was guessed from the
    files' sizes) where the run does 40 per epoch, 120 in all."""
    write_batches(tmp_path / "data", 5000)
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#preset").value = "quick"
        await pilot.pause()
        form.query_one("#f-data_dir").value = str(tmp_path / "data")
        form.query_one("#f-batch_size").value = "128"
        form.query_one("#f-epochs").value = "3"
        summary = lambda: str(form.query_one("#summary").render())
        await wait_for(pilot, lambda: "per epoch" in summary() and "3.0 epochs" in summary(), 10, "the length")
        assert "about 120 iterations (40 per epoch, 3.0 epochs)" in summary(), summary()

"""The new-run form as fast typists meet it: keys typed while it opens, bursts of edits, selection on focus."""
from __future__ import annotations

from textual import events

from screens.app import make_app
from screens.detail import DetailScreen
from screens.new_run import NewRunScreen

from .helpers import POLL, wait_for

_CHARS = {"backspace": "\x7f", "tab": "\t", "shift+tab": None, "escape": "\x1b", "ctrl+s": "\x13"}


def burst(app, *keys: str) -> None:
    """Post keys back to back, as a terminal delivers a burst (no pause for the app in between)."""
    for key in keys:
        char = key if len(key) == 1 else _CHARS.get(key)
        app.post_message(events.Key(key, char))


def form_ready(app) -> bool:
    screen = app.screen
    return isinstance(screen, NewRunScreen) and screen.ready


async def test_keys_typed_while_the_form_opens_land_in_the_depth_field_in_order(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        burst(app, "n", "5", "6")
        await wait_for(pilot, lambda: form_ready(app), 10, "the form")
        await pilot.pause(0.2)
        assert app.screen.query_one("#f-depth").value == "56"
        assert [c.depth for c in app.screen.configs] == [56]
        # a Tab typed ahead moves on before the next characters: depth, then the first shortcut box, then width
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewRunScreen), 5, "the runs table")
        burst(app, "n", "4", "4", "tab", "tab", "tab", "tab", "8")
        await wait_for(pilot, lambda: form_ready(app) and app.screen.query_one("#f-width").value == "8", 10,
                       "the typed-ahead width")
        assert app.screen.query_one("#f-depth").value == "44"
        assert app.focused is app.screen.query_one("#f-width")


async def test_keys_typed_while_a_clone_opens_are_not_lost(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.open_run("r56-A", "detail")
        await wait_for(pilot, lambda: isinstance(app.screen, DetailScreen), 5, "the detail")
        burst(app, "n", "1", "1", "0")
        await wait_for(pilot, lambda: form_ready(app), 10, "the clone's form")
        await pilot.pause(0.2)
        form = app.screen
        assert form.query_one("#f-depth").value == "110"
        assert form.query_one("#f-width").value == "16"          # the rest is the run's


async def test_a_burst_of_backspaces_then_a_digit_replaces_the_value(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        form = await open_form(pilot)
        assert form.query_one("#f-lr").value == "0.1"
        form.query_one("#f-lr").focus()
        await pilot.pause()
        burst(app, "backspace", "backspace", "backspace", "9")
        await wait_for(pilot, lambda: form.query_one("#f-lr").value == "9", 5,
                       f"lr to read 9 (it reads {form.query_one('#f-lr').value!r})")
        await pilot.pause(0.2)
        assert form.query_one("#f-lr").value == "9"


async def test_focusing_a_field_selects_its_text_so_typing_replaces_it(fixture_runs):
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        form = await open_form(pilot)
        await pilot.press("3", "2")                      # depth has the focus on opening, its text selected
        assert form.query_one("#f-depth").value == "32"
        for _ in range(4):                               # past the three shortcut boxes to width
            await pilot.press("tab")
        assert app.focused is form.query_one("#f-width")
        await pilot.press("8")
        assert form.query_one("#f-width").value == "8"
        await pilot.press("escape")
        await pilot.pause()
        app.open_new_run()                               # reopened: depth focused and selected again
        await wait_for(pilot, lambda: form_ready(app), 10, "the form again")
        await pilot.press("4", "4")
        assert app.screen.query_one("#f-depth").value == "44"


async def open_form(pilot):
    pilot.app.open_new_run()
    await wait_for(pilot, lambda: form_ready(pilot.app), 10, "the form")
    return pilot.app.screen


async def set_field(pilot, name: str, text: str) -> None:
    """Replace a field's text as a user does: short values typed key by key, longer ones (a folder's path) pasted,
    as a terminal delivers a paste (one event; typing a 70-character path cost the suite ~10 s a field)."""
    form = pilot.app.screen
    field = form.query_one(f"#f-{name}")
    field.focus()
    await pilot.pause()
    if len(text) <= 6:
        await pilot.press("ctrl+a", "ctrl+k", *text)
        return
    await pilot.press("ctrl+a", "ctrl+k")
    field.post_message(events.Paste(text))
    await wait_for(pilot, lambda: field.value == text, 5, f"the paste into {name}")


async def test_the_form_checks_the_data_folder_as_the_cli_does_and_creates_nothing(tmp_path):
    runs = tmp_path / "runs"
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#f-download").value = False
        await set_field(pilot, "data_dir", str(tmp_path / "empty"))
        msg = lambda: str(form.query_one("#msg-data_dir").render())
        await wait_for(pilot, lambda: "data_dir" in form.errors, 10, "the data folder's error")
        assert "was not found in" in msg() and "cifar-10-python.tar.gz" in msg()
        assert "pass --data-dir" not in msg() and form.query_one("#launch").disabled
        await pilot.press("ctrl+s")
        await pilot.pause(0.3)
        assert isinstance(app.screen, NewRunScreen)
        # a folder that looks right but holds no readable batches: found while editing, refused at launch by
        # core.data.cifar.check_data (the CLI's check), with the reason on the field
        (tmp_path / "fake" / "cifar-10-batches-py").mkdir(parents=True)
        await set_field(pilot, "data_dir", str(tmp_path / "fake"))
        await wait_for(pilot, lambda: not form.errors, 10, "the folder to be found")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "data_dir" in form.errors, 20, "the launch's data check")
        assert "is missing" in msg() and "extract the archive again" in msg() and isinstance(app.screen, NewRunScreen)
        # download on: a missing data set is a warning (the run fetches it), not an error
        form.query_one("#f-download").value = True
        await set_field(pilot, "data_dir", str(tmp_path / "empty2"))
        await wait_for(pilot, lambda: "data_dir" in form.notes, 10, "the download note")
        assert "downloads it there first" in msg() and "data_dir" not in form.errors
    assert not runs.exists() or not any(runs.iterdir())                 # nothing was created
    assert not (tmp_path / "empty").exists() and not (tmp_path / "empty2").exists()


async def test_the_form_remembers_its_settings_across_restarts(tmp_path):
    for round_ in (1, 2):
        app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
        async with app.run_test(size=(100, 30)) as pilot:
            form = await open_form(pilot)
            if round_ == 1:
                assert form.query_one("#f-depth").value == "20"      # nothing remembered yet: he2016
                await set_field(pilot, "depth", "56,110")
                await set_field(pilot, "data_dir", "/data/cifar")
                await set_field(pilot, "name", "once")
                form.query_one("#f-dataset").value = "cifar100"
                await pilot.pause()
                await pilot.press("escape")                          # cancelling keeps the settings too
                await pilot.pause()
            else:
                assert form.query_one("#f-depth").value == "56,110"
                assert form.query_one("#f-data_dir").value == "/data/cifar"
                assert form.query_one("#f-dataset").value == "cifar100"
                assert form.query_one("#f-name").value == ""          # a run name is used once
                assert form.query_one("#preset").value == "he2016"    # depth and data are not the preset's


async def test_a_warm_up_longer_than_a_tenth_of_the_run_is_announced(tmp_path):
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#preset").value = "quick"
        await pilot.pause()
        form.query_one("#f-dataset").value = "synthetic"           # 2,000 images: 16 iterations per epoch
        await wait_for(pilot, lambda: "warmup_iters" in form.notes, 10, "the warm-up note")
        assert "shortened to 24" in str(form.query_one("#msg-warmup_iters").render())
        assert "warmup_iters" not in form.errors and "about 240 iterations" in str(form.query_one("#summary").render())


async def test_the_form_built_in_advance_fits_the_terminal(fixture_runs):
    """The form is built off screen while the app is idle: it must still take the narrow layout at 100 and 80
    columns (help under the form, not beside each field) and the wide one at 120."""
    for size, layout in (((100, 30), "-narrow"), ((80, 24), "-narrow"), ((120, 40), "-wide")):
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            form = app.prebuild_form()
            await wait_for(pilot, lambda form=form: form.is_mounted and form.ready, 10, "the form built off screen")
            form = await open_form(pilot)
            assert layout in form.classes and len(form.classes & {"-narrow", "-wide"}) == 1, (size, form.classes)
            assert form.query_one("#focus-help").display is (layout == "-narrow")


async def test_the_help_under_the_form_names_the_preset_being_chosen(fixture_runs):
    """Cycling the preset with the arrows left the help under the form describing he2016 while it read
    'lab-report' or 'quick' (the help was only written when the field got the focus)."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#preset").focus()
        await pilot.pause()
        assert "He et al. 2016" in str(form.query_one("#focus-help").render())
        await pilot.press("right")
        await pilot.pause()
        shown = str(form.query_one("#focus-help").render())
        assert str(form.query_one("#preset").value) == "lab-report"
        assert "Lab report: batch 64" in shown and "He et al." not in shown, shown


async def test_a_choice_grows_to_show_a_longer_value(fixture_runs):
    """The quick preset turns milestone_unit from 'iter' into 'epoch': the choice kept the width of 'iter' and read
    '‹ epoch' without its closing mark (a real terminal at 100x30)."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        unit = form.query_one("#f-milestone_unit")
        assert "‹ iter ›" in str(unit.render())
        form.query_one("#preset").focus()
        await pilot.press("right", "right")                  # he2016 -> lab-report -> quick
        await pilot.pause()
        assert str(unit.value) == "epoch" and unit.size.width >= len("‹ epoch ›"), unit.size


def test_a_seed_grid_is_summed_up_once_with_its_seeds():
    """'queues 3 run(s): ResNet-20 A w16 sgd, ResNet-20 A w16 sgd, ResNet-20 A w16 sgd' did not say they differ."""
    from core.spec.presets import preset
    from screens.widgets.form_text import grid_labels

    seeds = [preset("quick", depth=20, seed=s) for s in (1, 2, 3)]
    assert grid_labels(seeds) == "ResNet-20 A w16 sgd x3 (seeds 1, 2, 3)"
    mixed = seeds[:2] + [preset("quick", depth=56, seed=1)]
    assert grid_labels(mixed) == "ResNet-20 A w16 sgd x2 (seeds 1, 2), ResNet-56 A w16 sgd"


async def test_the_help_under_the_form_follows_the_focused_fields_error_while_typing(fixture_runs):
    """The help under the form named the focused field's error as it was when the field got the focus: typing a
    valid lr after 'nan' kept '(learning rate must be > 0, got nan)' under a valid field, and typing a bad value
    into a valid field showed no error there (a real terminal at 100x30)."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        await set_field(pilot, "lr", "nan")
        await pilot.pause()
        help_text = lambda: str(form.query_one("#focus-help").render())
        assert "got nan" in help_text(), help_text()
        await pilot.press("backspace", "backspace", "backspace", "0", ".", "2")
        await wait_for(pilot, lambda: "lr" not in form.errors, 5, "lr valid again")
        assert "got nan" not in help_text() and help_text().startswith("lr: "), help_text()
        await pilot.press("x")
        await wait_for(pilot, lambda: "lr" in form.errors, 5, "lr invalid")
        assert form.errors["lr"] in help_text(), help_text()


async def test_the_queue_choice_names_what_this_machine_trains_on(fixture_runs, monkeypatch):
    # a CPU-only machine was offered 'queue (background, all GPUs)'
    import screens.new_run as new_run

    for gpu, says, never in ((False, "CPU", "GPU"), (True, "GPU", "CPU")):
        monkeypatch.setattr(new_run, "has_gpu", lambda gpu=gpu: gpu)
        app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
        async with app.run_test(size=(100, 30)) as pilot:
            form = await open_form(pilot)
            label = dict((key, text) for text, key in form.query_one("#where").options)["queue"]
            assert says in label and never not in label, label


async def test_the_runs_length_counts_the_data_folders_images_and_says_its_epochs(tmp_path, cifar_small):
    # a 2,000-image subset folder was planned as the official 50,000 images: '64,000 iterations (391 per epoch)'
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        form = await open_form(pilot)
        form.query_one("#f-data_dir").value = str(cifar_small)
        await wait_for(pilot, lambda: "16 per epoch" in str(form.query_one("#summary").render()), 10, "the length")
        assert "about 64,000 iterations (16 per epoch, 4,000 epochs)" in str(form.query_one("#summary").render())
        # an empty folder has no past run to take a pace from: the summary says when there will be an estimate
        assert "time: estimated once a run has trained on the cpu here" in str(form.query_one("#summary").render())


async def test_form_fields_take_several_values_and_the_summary_counts_the_sweep(fixture_runs):
    """Issue 18: typing 64,128 in batch size was refused ("expected an integer"); now any field that makes sense to
    vary takes several values, milestones alternatives with |, and the summary says how many runs and what they
    vary before the launch."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        burst(app, "n")
        await wait_for(pilot, lambda: form_ready(app), 10, "the form")
        form = app.screen
        form.set_value("epochs", "6")
        form.set_value("iterations", "0")
        form.set_value("milestone_unit", "epoch")
        form.set_value("milestones", "2 | 4")
        form.set_value("batch_size", "64,128")
        form.revalidate()
        await pilot.pause()
        assert form.errors == {}
        assert sorted((c.batch_size, c.milestones) for c in form.configs) == [
            (64, (2,)), (64, (4,)), (128, (2,)), (128, (4,))]
        assert len({c.sweep_name for c in form.configs}) == 1 and form.configs[0].sweep_name
        summary = str(form.query_one("#summary").render())
        assert "launches 4 run(s)" in summary or "queues 4 run(s)" in summary
        assert "milestones=2 batch_size=64" in summary
        # and how long the four take, from the pace of the folder's past cpu runs (core.store.estimate's tests)
        assert " in all (pace of " in summary and "past cpu run" in summary
        form.set_value("batch_size", "64,x")
        form.revalidate()
        await pilot.pause()
        assert form.configs == [] and "expected an integer, got 'x'" in form.errors["batch_size"]


async def test_form_scales_a_shortened_recipes_milestones_and_refuses_ones_past_the_end(fixture_runs):
    """Issue 18, point 6, the CLI's rule in the form: a 3-epoch run of the paper's recipe trained at a constant 0.1
    under milestones 32000,48000; now they are scaled to the same fractions of the run (with a note), and
    milestones typed past its end are an error that says what to enter."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        burst(app, "n")
        await wait_for(pilot, lambda: form_ready(app), 10, "the form")
        form, before = app.screen, len(app.store.list())
        form.apply_preset("he2016")
        for name, value in (("dataset", "synthetic"), ("max_train_images", "256"), ("batch_size", "32"),
                            ("epochs", "3"), ("iterations", "0")):
            form.set_value(name, value)
        form.revalidate()
        await pilot.pause()
        assert form.errors == {}, form.errors
        # 256 images / 32 = 8 iterations per epoch, 24 in all: 32000/64000 and 48000/64000 of 24 -> 12, 18
        assert form.query_one("#f-milestones").value == "12,18"
        assert [c.milestones for c in form.configs] == [(12, 18)]
        assert "scaled from 32000,48000 of 64,000 iterations to 12,18" in form.notes["milestones"]
        # launched, the runs' events.log says why their milestones are not the recipe's, as the CLI's runs do
        app.start_scheduler = lambda: None                   # no scheduler process in this test
        form.query_one("#where").value = "queue"
        form.set_value("seed", "1,2")
        form.revalidate()
        await pilot.pause()
        form.action_launch()
        await wait_for(pilot, lambda: len(app.store.list()) >= before + 2, 10, "the two queued runs")
        made = [info.id for info in app.store.list() if info.config and info.config.milestones == (12, 18)]
        assert len(made) == 2
        for run_id in made:
            assert any("scaled from 32000,48000" in line for line in app.store.get(run_id).read_events()), run_id
        burst(app, "n")                                    # the form again: a milestone typed past the end
        await wait_for(pilot, lambda: form_ready(app), 10, "the form")
        form = app.screen
        form.apply_preset("he2016")
        for name, value in (("dataset", "synthetic"), ("max_train_images", "256"), ("batch_size", "32"),
                            ("epochs", "3"), ("iterations", "0"), ("milestones", "12,30")):
            form.set_value(name, value)
        form.revalidate()
        await pilot.pause()
        assert form.configs == [] and "lie past the end of this run" in form.errors["milestones"]


async def test_form_variants_pair_settings_across_the_sweep(fixture_runs):
    """SGD at lr 0.1 vs Adam at 0.001, two seeds: one launch from the form, the variants field pairing the
    settings (the product would also make SGD at 0.001 and Adam at 0.1); a bad variant is the field's error."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        burst(app, "n")
        await wait_for(pilot, lambda: form_ready(app), 10, "the form")
        form = app.screen
        form.query_one("#f-variants").value = "optimizer=sgd lr=0.1; optimizer=adam lr=0.001"
        form.set_value("seed", "1,2")
        form.revalidate()
        await pilot.pause()
        assert form.errors == {}, form.errors
        assert [(c.optimizer, c.lr, c.seed) for c in form.configs] == [
            ("sgd", 0.1, 1), ("sgd", 0.1, 2), ("adam", 0.001, 1), ("adam", 0.001, 2)]
        form.query_one("#f-variants").value = "optimizer=adamx lr=0.001"
        form.revalidate()
        await pilot.pause()
        assert form.configs == [] and "unknown optimizer 'adamx'" in form.errors["variants"]
        assert "unknown optimizer" in str(form.query_one("#msg-variants").render())

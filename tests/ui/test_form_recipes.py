"""Issue 34, items 1-3: the form launches exactly what it shows. A preset gives its whole recipe whatever the preset
before set; a shortened epoch-based recipe has its milestones scaled as the CLI does; one launch's sweep name,
seeds and variants never reach the next launch (across restarts, after another preset, in a clone)."""
from __future__ import annotations

from core.spec.field_help import RECIPE
from core.spec.presets import preset
from screens.app import make_app
from screens.new_run import NewRunScreen
from screens.new_run_model import as_text
from screens.widgets.form_fields import REMEMBERED_TEXT

from .helpers import POLL, screen_text, wait_for


def form_ready(app) -> bool:
    return isinstance(app.screen, NewRunScreen) and app.screen.ready


async def open_form(pilot) -> NewRunScreen:
    pilot.app.open_new_run()
    await wait_for(pilot, lambda: form_ready(pilot.app), 10, "the form")
    return pilot.app.screen


async def choose(pilot, form: NewRunScreen, selector: str, value) -> None:
    """Change a field as the user does (not as the program): the change event is the user's."""
    form.query_one(selector).value = value
    await pilot.pause()


def shown(form: NewRunScreen, name: str) -> str:
    value = form.query_one(f"#f-{name}").value
    return value if isinstance(value, str) else str(value)


async def test_a_preset_gives_exactly_its_recipe_whatever_the_preset_before_set(fixture_runs):
    """wrn2016, Esc, n, lab-report left arch wrn, lr_factor 0.2 and normalize channel: 'WRN-10-1 A sgd'."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        await choose(pilot, form, "#preset", "wrn2016")
        assert shown(form, "arch") == "wrn" and shown(form, "lr_factor") == "0.2"
        await pilot.press("escape")
        form = await open_form(pilot)
        await choose(pilot, form, "#preset", "lab-report")
        recipe = preset("lab-report")
        for key in RECIPE:
            if key == "shortcut":
                assert [form.query_one(f"#f-shortcut-{sc}").value for sc in ("A", "B", "none")] == [
                    sc == recipe.shortcut for sc in ("A", "B", "none")]
            else:
                assert shown(form, key) == as_text(getattr(recipe, key)), key
        assert form.errors == {} and [c.label() for c in form.configs] == [recipe.label()]
        assert form.configs[0].arch == "resnet" and form.configs[0].lr_factor == 0.1
        assert str(form.query_one("#preset").value) == "lab-report"


async def test_a_remembered_preset_whose_recipe_was_changed_opens_as_custom(tmp_path):
    from screens.new_run_model import starting_values

    values, name, _ = starting_values(None, {"preset": "lab-report", "fields": {"arch": "wrn", "depth": "16"}}, "")
    assert name == "custom" and values["arch"] == "wrn"
    values, name, _ = starting_values(None, {"preset": "lab-report", "fields": {"depth": "56,110"}}, "")
    assert name == "lab-report" and values["depth"] == "56,110"     # the depth is the user's within a recipe


async def test_shortening_an_epoch_based_recipe_scales_its_milestones_as_the_cli_does(fixture_runs):
    """lab-report with epochs 6 was refused ("milestones must lie before the end of training (epoch 6), got
    [51, 75]"); the CLI scales them: 51,75 of 164 epochs -> round(51*6/164)=2, round(75*6/164)=3."""
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        await choose(pilot, form, "#preset", "lab-report")
        await choose(pilot, form, "#f-epochs", "6")
        assert form.errors == {}, form.errors
        assert shown(form, "milestones") == "2,3" and form.configs[0].milestones == (2, 3)
        assert "scaled from 51,75 of 164 epochs to 2,3" in form.notes["milestones"]
        assert "milestones scaled from 51,75 to 2,3" in str(form.query_one("#summary").render())
        await choose(pilot, form, "#f-epochs", "10")           # again from the recipe: 51*10/164=3.1, 75*10/164=4.6
        assert shown(form, "milestones") == "3,5" and form.errors == {}
        await choose(pilot, form, "#f-epochs", "164")          # the recipe's length: the recipe's milestones
        assert shown(form, "milestones") == "51,75" and "milestones" not in form.notes
        assert "scaled" not in str(form.query_one("#summary").render())
        await choose(pilot, form, "#preset", "wrn2016")
        await choose(pilot, form, "#f-epochs", "10")           # 60,120,160 of 200 -> 3, 6, 8
        assert shown(form, "milestones") == "3,6,8" and form.errors == {}, form.errors
        await choose(pilot, form, "#f-milestones", "4,7")      # typed: the user's, never rescaled
        await choose(pilot, form, "#f-epochs", "12")
        assert shown(form, "milestones") == "4,7" and "milestones" not in form.notes


async def test_a_launchs_sweep_name_seeds_and_variants_do_not_reach_the_next_launch(tmp_path):
    """Launching unchanged after a sweep would have made its grid again, into `report --sweep sgd-vs-adam`."""
    runs = tmp_path / "runs"
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(120, 40)) as pilot:
        app.start_scheduler = lambda: None                     # no scheduler process in this test
        form = await open_form(pilot)
        assert REMEMBERED_TEXT in screen_text(app)           # the form says what it remembers
        for name, value in (("dataset", "synthetic"), ("epochs", "1"), ("sweep_name", "sgd-vs-adam"),
                            ("seed", "1,2")):
            form.set_value(name, value)
        form.query_one("#f-variants").value = "optimizer=sgd lr=0.1; optimizer=adam lr=0.001"
        form.query_one("#where").value = "queue"
        form.revalidate()
        await pilot.pause()
        assert len(form.configs) == 4 and form.errors == {}, form.errors
        form.action_launch()
        await wait_for(pilot, lambda: len(app.store.list()) == 4, 10, "the four queued runs")
        form = await open_form(pilot)
        assert shown(form, "sweep_name") == "" and shown(form, "variants") == "" and shown(form, "seed") == "0"
        assert len(form.configs) == 1 and form.configs[0].sweep_name == ""
        # a clone of a run of that sweep: its settings, not its sweep, and no variants typed before
        form.query_one("#f-variants").value = "optimizer=sgd lr=0.1; optimizer=adam lr=0.001"
        await pilot.press("escape")
        swept = next(i for i in app.store.list() if i.config.optimizer == "adam")
        app.open_new_run(swept.config)
        await wait_for(pilot, lambda: form_ready(app), 10, "the clone")
        form = app.screen
        assert shown(form, "variants") == "" and shown(form, "sweep_name") == ""
        assert [(c.optimizer, c.lr, c.seed, c.sweep_name) for c in form.configs] == [
            ("adam", 0.001, swept.config.seed, "")]
        # another preset: the variants of a launch go
        await choose(pilot, form, "#f-variants", "optimizer=sgd lr=0.1; optimizer=adam lr=0.001")
        form.set_value("sweep_name", "mine")
        await choose(pilot, form, "#preset", "quick")
        assert shown(form, "variants") == "" and shown(form, "sweep_name") == "" and len(form.configs) == 1
        form.set_value("sweep_name", "mine")
        form.set_value("seed", "1-3")
        await pilot.press("escape")
    app = make_app(runs_dir=runs, poll_interval=POLL)            # a restart: none of it remembered
    async with app.run_test(size=(120, 40)) as pilot:
        form = await open_form(pilot)
        assert shown(form, "sweep_name") == "" and shown(form, "seed") == "0" and shown(form, "variants") == ""
        assert str(form.query_one("#preset").value) == "quick" and shown(form, "dataset") == "synthetic"

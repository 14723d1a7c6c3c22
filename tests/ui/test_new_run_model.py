"""The new-run form's model (screens/new_run_model.py) driven without a screen: presets, the user's edits, validation
into the configs a launch creates, and each bad field's message."""
from __future__ import annotations

from core.spec.config import RunConfig
from core.spec.presets import preset
from core.store.runs import RunStore
from screens.new_run_model import CUSTOM, NewRunModel


def model(**remembered) -> NewRunModel:
    return NewRunModel.starting(None, remembered)


def test_a_preset_applied_after_another_gives_exactly_the_second_presets_recipe():
    m = model()
    m.apply_preset("wrn2016")
    m.validate()
    assert m.errors == {} and m.configs == [preset("wrn2016")]
    m.apply_preset("lab-report")         # arch wrn, lr_factor 0.2, nesterov, widths ... all go
    m.validate()
    assert m.errors == {}, m.errors
    assert m.configs == [preset("lab-report")]
    assert m.fields["preset"] == "lab-report" and m.take_changes()["arch"] == "resnet"


def test_a_preset_keeps_the_users_data_and_seed_and_drops_one_launchs_settings():
    m = model()
    edits = {"seed": "3", "max_train_images": "500", "variants": "lr=0.1; lr=0.05", "sweep_name": "s"}
    for name, text in edits.items():
        m.fields[name] = text
        m.edited(name)
    m.apply_preset("quick")
    m.validate()
    assert [(c.seed, c.max_train_images, c.sweep_name) for c in m.configs] == [(3, 500, "")]
    assert m.fields["variants"] == ""


def test_a_bad_field_gets_its_message_and_no_config():
    m = model()
    m.fields["lr"] = "-1"
    m.edited("lr")
    m.validate()
    assert m.errors == {"lr": "learning rate must be > 0, got -1.0"} and m.configs == []
    assert m.fields["preset"] == CUSTOM             # an edit that leaves the recipe: the preset is custom
    m.fields["lr"] = "fast"
    m.validate()
    assert set(m.errors) == {"lr"} and "fast" in m.errors["lr"] and m.configs == []
    m.fields["lr"] = "0.05"
    m.validate()
    assert m.errors == {} and m.configs[0].lr == 0.05


def test_a_bad_variant_and_a_taken_name_are_the_fields_messages(tmp_path):
    store = RunStore(tmp_path)
    store.create(RunConfig(name="taken", dataset="synthetic"))
    m = NewRunModel.starting(None, {}, store=store)
    m.fields["variants"] = "lr"
    m.validate()
    assert set(m.errors) == {"variants"} and m.errors["variants"].startswith("'lr': ")
    m.fields.update(variants="", name="taken")
    m.validate()
    assert "taken" in m.errors["name"] and m.configs == []


def test_the_users_edits_follow_the_forms_rules():
    m = model()
    m.fields["epochs"] = "10"
    assert m.edited("epochs") == "iterations set to 0, so that epochs sets the length"
    m.fields["width"] = "32"
    m.edited("width")
    assert m.take_changes() == {"iterations": "0", "widths": "32,64,128", "preset": CUSTOM}
    m.validate()
    assert m.configs[0].epochs == 10 and m.configs[0].widths == (32, 64, 128)


def test_a_shortened_recipe_has_its_milestones_scaled_and_a_grid_makes_its_runs():
    m = model()
    m.apply_preset("lab-report")
    m.fields.update(epochs="6", depth="20,56")
    m.edited("epochs")
    m.validate()
    assert m.errors == {} and m.fields["milestones"] == "2,3" and "2,3" in m.notes["milestones"]
    assert [(c.depth, c.milestones) for c in m.configs] == [(20, (2, 3)), (56, (2, 3))]


def test_a_clone_loads_every_field_and_is_custom():
    cfg = preset("wrn2016", seed=4, name="x")
    m = model()
    m.load(cfg)
    m.validate()
    assert m.fields["preset"] == CUSTOM and m.configs == [cfg.with_overrides(name="")]

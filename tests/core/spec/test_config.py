"""RunConfig: presets, overrides, validation messages, JSON and TOML round trips."""
from __future__ import annotations

import pytest

from core.spec.config import PRESETS, ConfigError, RunConfig, config_from_sources, paper_error, preset
from core.spec.field_help import FIELD_HELP


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates(name):
    assert preset(name).validate() == {}
    for depth in (20, 32, 44, 56, 110, 1202):
        assert preset(name, depth=depth).validate() == {}


def test_he2016_is_the_paper_recipe():
    c = preset("he2016")
    assert (c.batch_size, c.lr, c.momentum, c.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (c.milestones, c.milestone_unit, c.iterations) == ((32000, 48000), "iter", 64000)
    assert (c.shortcut, c.width, c.optimizer, c.schedule) == ("A", 16, "sgd", "multistep")
    assert not c.uses_error_warmup() and preset("he2016", depth=110).uses_error_warmup()
    assert preset("he2016", depth=1202).uses_error_warmup()


def test_defaults_are_the_paper_recipe_the_form_starts_with():
    """`train --help` shows RunConfig's defaults and the form starts from he2016: one recipe, the paper's, with the
    per-pixel mean subtracted (He et al. 2016 sec. 4.2) and the ResNet-110 warm-up on auto."""
    assert RunConfig() == preset("he2016")
    assert preset("he2016").normalize == "pixel" and RunConfig().error_warmup == "auto"
    assert "He et al. 2016" in FIELD_HELP["normalize"] and "pixel" in FIELD_HELP["normalize"]


def test_lab_report_recipe():
    c = preset("lab-report", width=64)
    assert (c.batch_size, c.epochs, c.milestones, c.milestone_unit, c.iterations) == (64, 164, (51, 75), "epoch", 0)
    assert c.width == 64 and c.validate() == {}


def test_overrides_on_top_of_a_preset():
    c = preset("he2016", epochs=10, milestones="5,8", optimizer="adam", lr="1e-3")
    assert c.iterations == 0 and c.epochs == 10 and c.milestones == (5, 8) and c.milestone_unit == "epoch"
    assert c.optimizer == "adam" and c.lr == 1e-3 and c.validate() == {}
    assert preset("he2016", milestones="30k,45k").milestones == (30000, 45000)


@pytest.mark.parametrize("field,value,needle", [
    ("depth", 21, "6n+2"), ("depth", 2, "6n+2"), ("lr", -0.1, "> 0"), ("lr", 0.0, "> 0"),
    ("batch_size", 0, ">= 1"), ("optimizer", "rmsprop", "allowed: sgd, nesterov, adam, adamw"),
    ("schedule", "step", "allowed: multistep"), ("shortcut", "C", "allowed: A, B, none"),
    ("milestones", (75, 51), "increasing"), ("momentum", 1.5, "[0, 1)"), ("device", "tpu", "cuda:N"),
    ("name", "../x", "letters"),
])
def test_validate_names_the_field_and_what_is_allowed(field, value, needle):
    errors = RunConfig(**{field: value}).validate()
    assert field in errors and needle in errors[field]


def test_milestones_past_the_end():
    errors = preset("lab-report", epochs=50).validate()
    assert "before the end" in errors["milestones"]
    errors = preset("he2016", iterations=40000).validate()
    assert "iteration 40000" in errors["milestones"]


def test_json_round_trip():
    c = preset("lab-report", depth=110, width=64, name="wide110")
    assert RunConfig.from_json(c.to_json()) == c


def test_from_dict_rejects_unknown_and_badly_typed_fields():
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"depht": 20})
    assert "depht" in e.value.errors
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict({"depth": "twenty"})
    assert "integer" in e.value.errors["depth"]


def test_toml(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('preset = "lab-report"\ndepth = 56\n[optim]\nlr = 0.05\nmilestones = [40, 60]\n')
    c = config_from_sources(toml_path=str(p), seed=3)
    assert (c.depth, c.lr, c.milestones, c.batch_size, c.seed) == (56, 0.05, (40, 60), 64, 3)
    p.write_text("depth = = 3")
    with pytest.raises(ConfigError) as e:
        config_from_sources(toml_path=str(p))
    assert "invalid TOML" in e.value.errors["config"]
    with pytest.raises(ConfigError):
        config_from_sources(toml_path=str(tmp_path / "missing.toml"))


def test_every_field_is_documented():
    assert set(FIELD_HELP) == set(RunConfig.__dataclass_fields__)


def test_paper_errors():
    assert paper_error(20, "A") == 8.75 and paper_error(110, "A") == 6.43
    assert paper_error(20, "none") is None and paper_error(26, "A") is None


FLOAT_FIELDS = ("lr", "momentum", "weight_decay", "beta1", "beta2", "eps", "lr_factor", "min_lr")


@pytest.mark.parametrize("text", ["inf", "1e999", "-inf", "nan"])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_a_float_setting_that_is_not_a_finite_number_is_refused_with_its_message(name, text):
    # lr 1e999 (infinite) was accepted and launched (seen in the form); weight_decay nan and min_lr nan too
    errors = RunConfig().with_overrides(**{name: text}).validate()
    assert name in errors and "finite" in errors[name], errors


def test_a_plain_net_is_named_one_way_everywhere():
    # the form, monitor and table line said 'Plain-8 w4 sgd' while compare, seed groups and Table 6 said 'plain-8'
    from core.util.formatting import model_name

    assert RunConfig(depth=20, shortcut="none").label() == "plain-20 w16 sgd" == model_name(20, "none") + " w16 sgd"
    assert RunConfig(depth=56, shortcut="B").label() == "ResNet-56 B w16 sgd"


def test_a_toml_setting_given_twice_or_nested_too_deep_is_named(tmp_path):
    # 'depth = 20' and '[model] depth = 56' silently gave 56; '[x.y] depth' said only 'y: unknown setting'
    twice = tmp_path / "twice.toml"
    twice.write_text('depth = 20\n[model]\ndepth = 56\n')
    with pytest.raises(ConfigError) as info:
        config_from_sources(toml_path=str(twice))
    assert "depth" in info.value.errors and "twice" in info.value.errors["depth"]
    deep = tmp_path / "deep.toml"
    deep.write_text('[x.y]\ndepth = 20\n')
    with pytest.raises(ConfigError) as info:
        config_from_sources(toml_path=str(deep))
    assert "x.y" in info.value.errors, info.value.errors

"""RunConfig: presets, overrides, validation messages, JSON and TOML round trips."""
from __future__ import annotations

import pytest

from core.spec.config import ConfigError, RunConfig, paper_error
from core.spec.field_help import FIELD_HELP
from core.spec.presets import PRESETS, config_from_sources, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates(name):
    assert preset(name).validate() == {}
    depths = {"resnet": (20, 32, 44, 56, 110, 1202), "preact-bottleneck": (164, 1001), "wrn": (16, 28, 40)}
    for depth in depths[preset(name).arch]:
        assert preset(name, depth=depth).validate() == {}


def test_follow_up_presets_are_the_papers_recipes():
    p = preset("preact2016")
    assert (p.arch, p.depth, p.shortcut, p.width) == ("preact-bottleneck", 164, "B", 16)
    assert p.label() == "PreAct-164 B w16 sgd"
    assert (p.batch_size, p.lr, p.weight_decay, p.milestones, p.iterations) == (128, 0.1, 1e-4, (32000, 48000), 64000)
    assert p.paper_error == 5.46 and preset("preact2016", depth=1001).paper_error == 4.92
    w = preset("wrn2016")
    assert (w.arch, w.depth, w.width, w.label()) == ("wrn", 28, 160, "WRN-28-10 B nesterov")
    assert (w.batch_size, w.optimizer, w.momentum, w.weight_decay, w.lr) == (128, "nesterov", 0.9, 5e-4, 0.1)
    assert (w.milestones, w.milestone_unit, w.lr_factor) == ((60, 120, 160), "epoch", 0.2)
    assert (w.epochs, w.iterations) == (200, 0)
    assert w.normalize == p.normalize == "channel" and not w.uses_error_warmup()
    assert w.paper_error == 4.17 and preset("wrn2016", dropout=0.3).paper_error == 3.89
    assert preset("wrn2016", dropout=0.3).label() == "WRN-28-10 B d0.3 nesterov"
    assert preset("wrn2016", depth=40, width=64).paper_error == 4.97
    assert preset("wrn2016", depth=16, width=128).paper_error == 4.81


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


@pytest.mark.parametrize("arch,depth,rule", [("wrn", 20, "6n+4"), ("preact-bottleneck", 32, "9n+2"),
                                             ("preact", 164 + 1, "6n+2"), ("resnet", 28, "6n+2")])
def test_depth_errors_name_each_archs_rule(arch, depth, rule):
    message = RunConfig(arch=arch, depth=depth).validate()["depth"]
    assert message.startswith(f"depth must be {rule} with n >= 1 for arch {arch} (") and f"got {depth}" in message
    others = {"resnet 6n+2", "preact 6n+2", "preact-bottleneck 9n+2", "wrn 6n+4"} - {f"{arch} {rule}"}
    assert all(o in message.split("other architectures:")[1] for o in others), message


def test_arch_and_dropout_are_checked():
    assert "allowed: resnet, preact, preact-bottleneck, wrn" in RunConfig(arch="vgg").validate()["arch"]
    assert "wrn only" in RunConfig(dropout=0.3).validate()["dropout"]
    assert "[0, 1)" in RunConfig(arch="wrn", depth=16, dropout=1.0).validate()["dropout"]
    assert RunConfig(arch="wrn", depth=16, width=32, dropout=0.3).validate() == {}


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


def test_to_dict_is_every_field_as_plain_values():
    """to_dict reads the fields directly (dataclasses.asdict deep-copied each: ~0.3 ms a config, paid by every table
    refresh of 2,000 runs); it must give what asdict gave, in the same order, milestones, widths and rungs as lists
    (as checkpoint.pt gives them back: a tuple there made every resume differ from its checkpoint)."""
    import dataclasses

    c = preset("lab-report", depth=110, width=64, name="wide110", milestones=(10, 20), rungs=(2, 5))
    expected = dataclasses.asdict(c) | {"milestones": [10, 20], "widths": [64, 128, 256], "rungs": [2, 5]}
    assert c.to_dict() == expected and list(c.to_dict()) == list(expected)
    assert RunConfig.from_dict(c.to_dict()) == c

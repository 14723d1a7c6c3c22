"""The presets (the papers' recipes, as RunConfig fields) and the sources a run's config is read from: a preset, then a
TOML file, then explicit overrides (``config_from_sources``; the CLI's ``train``, ``queue add``, ``sweep``; the form
applies a preset with ``preset``).

The presets (numbers cite their sources):

* ``he2016``: He et al. 2016, sec. 4.2: batch 128, SGD momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10
  at 32k and 48k iterations, 64k iterations, shortcut A, width 16, the per-pixel mean subtracted from the inputs;
  ResNet-110 and deeper warm up at 0.1x the rate until training error is under 80% (the paper's ResNet-110
  recipe). RunConfig's defaults are this recipe, so ``train --help`` shows what the form starts with.
* ``lab-report``: the student lab report this tool grew out of, as its network and its training: from the report's
  text, stages of 30, 60 and 90 filters, batch 64, 164 epochs, lr 0.1 /10 at epochs 51 and 75, wd 1e-4; from the
  course's example code it started from (the common "ResNet18 for CIFAR" PyTorch file), the 64-filter 3x3 stem,
  projection shortcuts (B), per-channel mean/std normalisation and PyTorch's default initialisation. ResNet-20 of it
  has 663,486 parameters; ``widths=(64, 128, 256)`` is the example code's own net (4,327,754 at depth 20).
* ``quick``: a short cosine run for screening ideas (15 epochs; its 200 warm-up iterations are capped at a
  tenth of the run, see core/data/plan.py).
* ``preact2016``: He et al. 2016b ("Identity Mappings in Deep Residual Networks", ECCV, sec. 4; the authors' code
  KaimingHe/resnet-1k-layers): PreAct-164 with bottleneck blocks and projection shortcuts, otherwise the he2016
  schedule (batch 128, lr 0.1 /10 at 32k and 48k, 64k iterations, wd 1e-4, the ResNet-110 warm-up for depth >= 110),
  per-channel normalisation as that code does.
* ``wrn2016``: Zagoruyko & Komodakis 2016 ("Wide Residual Networks", BMVC, sec. 3): WRN-28-10 (width 160 = 16 x 10),
  batch 128, SGD with Nesterov momentum 0.9, wd 5e-4, lr 0.1 multiplied by 0.2 (``lr_factor``) at epochs 60, 120
  and 160 of 200, per-channel normalisation, the same augmentation; dropout 0 (0.3 in its best CIFAR-10 run).
"""
from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from core.spec.config import ConfigError, RunConfig
from core.util.files import MAX_JSON_BYTES, FileTooLargeError, NotAFileError, read_bytes, size_text

FIELD_NAMES = frozenset(f.name for f in fields(RunConfig))

PRESETS: dict[str, dict[str, Any]] = {
    "he2016": dict(batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4, optimizer="sgd", schedule="multistep",
                   milestones=(32000, 48000), milestone_unit="iter", iterations=64000, epochs=164, shortcut="A",
                   width=16, stem_width=0, init="he-fan-out", error_warmup="auto", normalize="pixel"),
    "lab-report": dict(batch_size=64, lr=0.1, momentum=0.9, weight_decay=1e-4, optimizer="sgd", schedule="multistep",
                       milestones=(51, 75), milestone_unit="epoch", iterations=0, epochs=164, shortcut="B",
                       width=30, widths=(30, 60, 90), stem_width=64, init="torch-default", normalize="channel",
                       error_warmup="auto"),
    "quick": dict(batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, optimizer="sgd", schedule="cosine",
                  milestones=(), milestone_unit="epoch", iterations=0, epochs=15, warmup_iters=200,
                  shortcut="A", width=16, stem_width=0, init="he-fan-out", error_warmup="off"),
    "preact2016": dict(arch="preact-bottleneck", depth=164, shortcut="B", width=16, stem_width=0, init="he-fan-out",
                       dropout=0.0, batch_size=128,
                       lr=0.1, momentum=0.9, weight_decay=1e-4, optimizer="sgd", schedule="multistep",
                       milestones=(32000, 48000), milestone_unit="iter", lr_factor=0.1, iterations=64000, epochs=164,
                       error_warmup="auto", normalize="channel"),
    "wrn2016": dict(arch="wrn", depth=28, shortcut="B", width=160, stem_width=0, init="he-fan-out", dropout=0.0,
                    batch_size=128, lr=0.1, momentum=0.9,
                    weight_decay=5e-4, optimizer="nesterov", schedule="multistep", milestones=(60, 120, 160),
                    milestone_unit="epoch", lr_factor=0.2, iterations=0, epochs=200, error_warmup="off",
                    normalize="channel"),
}

PRESET_HELP = {
    "he2016": "He et al. 2016: batch 128, lr 0.1 /10 at 32k and 48k iterations, 64k iterations, wd 1e-4, "
              "per-pixel mean subtracted",
    "lab-report": "Lab report: batch 64, 164 epochs, lr 0.1 /10 at epochs 51 and 75, wd 1e-4, stages of 30/60/90 "
                  "filters (the report's text); a 64-filter stem, shortcut B, per-channel normalisation, PyTorch's "
                  "default init (the course's example code it started from; --widths 64,128,256 is that code's net)",
    "quick": "Screening: 15 epochs, cosine schedule with 200 warm-up iterations (at most a tenth of the run)",
    "preact2016": "He et al. 2016b (Identity Mappings, ECCV), sec. 4 and the authors' code: PreAct-164 (bottleneck, "
                  "projection shortcuts), batch 128, lr 0.1 /10 at 32k and 48k of 64k iterations, wd 1e-4, per-channel "
                  "normalisation; --depth 1001 for PreAct-1001, --arch preact --depth 110 for the basic PreAct-110",
    "wrn2016": "Zagoruyko & Komodakis 2016 (Wide ResNets, BMVC), sec. 3: WRN-28-10, batch 128, SGD Nesterov 0.9, "
               "wd 5e-4, lr 0.1 x0.2 at epochs 60, 120, 160 of 200, per-channel normalisation "
               "(--dropout 0.3 for its best run)",
}


def preset(preset_name: str, /, **overrides: Any) -> RunConfig:
    """A preset with any fields overridden on top (``name=`` is the run's name). Unknown presets raise ConfigError."""
    if preset_name not in PRESETS:
        raise ConfigError({"preset": f"unknown preset {preset_name!r}; allowed: {', '.join(PRESETS)}"})
    base = RunConfig.from_dict(PRESETS[preset_name])
    return base.with_overrides(**overrides) if overrides else base


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML run file: top-level keys are RunConfig fields, plus optional ``preset = "name"``."""
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        data = tomllib.loads(read_bytes(Path(path).resolve(), MAX_JSON_BYTES).decode("utf-8"))   # a link is fine
    except FileNotFoundError:
        raise ConfigError({"config": f"{path}: no such file"}) from None
    except NotAFileError:      # /dev/zero, a FIFO, a folder: reading one would never end or cannot be done
        raise ConfigError({"config": f"{path} is not a regular file; give a TOML file"}) from None
    except FileTooLargeError:
        raise ConfigError({"config": f"{path} is larger than {size_text(MAX_JSON_BYTES)}; a TOML config file is "
                                     f"at most {size_text(MAX_JSON_BYTES)}"}) from None
    except OSError as exc:
        raise ConfigError({"config": f"{path}: cannot read ({exc.strerror})"}) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError({"config": f"{path}: invalid TOML ({exc})"}) from None
    except UnicodeDecodeError as exc:
        raise ConfigError({"config": f"{path}: not UTF-8 text (byte {exc.start}); a TOML file is UTF-8"}) from None
    # allow [model], [optim] ... tables: flatten one level; a setting given twice or a deeper table is named
    flat: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for k, v in data.items():
        for name, value in (v.items() if isinstance(v, dict) else [(k, v)]):
            if isinstance(value, dict):
                errors[f"{k}.{name}"] = f"{path}: tables nest one level ([model], [optim] ...), not [{k}.{name}]"
            elif name in flat:
                errors[name] = f"{path}: {name} is given twice"
            flat[name] = value
    if errors:
        raise ConfigError(errors)
    return flat


def config_from_sources(preset_name: str | None = None, toml_path: str | None = None,
                        **overrides: Any) -> RunConfig:
    """Preset, then TOML file, then explicit overrides (later wins). Raises ConfigError; does not validate."""
    file_values: dict[str, Any] = load_toml(toml_path) if toml_path else {}
    preset_name = preset_name or file_values.pop("preset", None)
    file_values.pop("preset", None)
    base = preset(preset_name) if preset_name else RunConfig()
    if file_values:
        unknown = sorted(set(file_values) - FIELD_NAMES)
        if unknown:
            raise ConfigError({k: f"unknown setting in {toml_path}" for k in unknown})
        base = base.with_overrides(**file_values)
    return base.with_overrides(**overrides) if overrides else base

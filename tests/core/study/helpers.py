"""A small study made in-process (tiny nets on synthetic data), for the report and the TUI's tests."""
from __future__ import annotations

from core.store.runs import RunStore
from core.study.spec import StudySpec, load, storage_url
from core.train.trainer import train_run
from tests.conftest import tiny_config


def make_study(root) -> list[str]:
    """A study of two finished trials trained here (tiny nets) and a third never finished."""
    from optuna.distributions import FloatDistribution

    root.mkdir(parents=True)
    store = RunStore(root)
    spec = StudySpec(name="ui", base=tiny_config(val_split=64, epochs=2).to_dict(), space=["lr=log:1e-3:1e-1"],
                     trials=3, pruner="none", sampler_seed=0)
    study, spec = load("ui", storage_url(root, None), spec)
    ids = []
    for _ in range(3):
        trial = study.ask({"lr": FloatDistribution(1e-3, 1e-1, log=True)})
        cfg = spec.config.with_overrides(lr=trial.params["lr"], study="ui", trial=trial.number,
                                         name=f"ui-t{trial.number}")
        if trial.number == 2:
            run = store.create(cfg, state="stopped")
        else:
            run, state = train_run(store, cfg)
        trial.set_user_attr("run_id", run.id)
        if trial.number < 2:
            study.tell(trial, run.read_epochs()[-1]["val_err"])
        ids.append(run.id)
    store.create(tiny_config(name="plain"), state="stopped")
    return ids

"""What a study holds, as plain data: its trials beside their runs (`study show`, the report, the TUI's study screen),
its best trials, and the runs that confirm the best settings with seeds (`study confirm`)."""
from __future__ import annotations

from typing import Any

from core.spec.config import RunConfig
from core.store.runs import RunError, RunStore, live_state
from core.study.spec import StudySpec

STATE_NAMES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def best_trials(study) -> list:
    """The best trial (one objective) or the Pareto front (two), by trial number."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []
    return sorted(study.best_trials, key=lambda t: t.number) if len(study.directions) > 1 else [study.best_trial]


def _run_facts(store: RunStore, run_id: str | None) -> tuple[str | None, int]:
    if not run_id:
        return None, 0
    try:
        run = store.get(run_id)
        return live_state(run), len(run.read_epochs())
    except (RunError, OSError, ValueError):
        return "missing", 0


def trial_row(store: RunStore, trial, spec: StudySpec) -> dict[str, Any]:
    run_id = trial.user_attrs.get("run_id")
    run_state, epochs = _run_facts(store, run_id)
    inter = {int(k): float(v) for k, v in trial.intermediate_values.items()}
    epochs = epochs or max(inter, default=0)
    state = STATE_NAMES.get(trial.state.name, trial.state.name.lower())
    note = ""
    if state == "running" and run_state == "stopped" and epochs in spec.rungs():
        note = f"stopped at rung {spec.rungs().index(epochs) + 1} (epoch {epochs})"
    elif state == "pruned" and epochs < spec.epochs:
        note = f"pruned at epoch {epochs}"
    promoted = sorted(int(k[5:]) for k, v in trial.user_attrs.items() if k.startswith("rung_") and v == "promoted")
    return {"number": trial.number, "state": state, "params": dict(trial.params),
            "values": list(trial.values) if trial.values is not None else None, "run": run_id, "run_state": run_state,
            "epochs": epochs, "intermediate": inter, "promoted_at": promoted, "note": note,
            "seconds": (trial.duration.total_seconds() if trial.duration else None)}


def summary(store: RunStore, study, spec: StudySpec, url: str) -> dict[str, Any]:
    trials = [trial_row(store, t, spec) for t in study.get_trials(deepcopy=False)]
    best = best_trials(study)
    return {"study": spec.name, "storage": url, "objectives": list(spec.objectives),
            "directions": [d.name.lower() for d in study.directions], "spec": spec.to_dict(),
            "rungs": list(spec.rungs()), "trials": trials,
            "best": [{"number": t.number, "values": list(t.values), "params": dict(t.params),
                      "run": t.user_attrs.get("run_id")} for t in best],
            "epochs_trained": sum(t["epochs"] for t in trials)}


def confirm_configs(store: RunStore, study, spec: StudySpec, top: int, seeds: list[int]) -> list[RunConfig]:
    """The ``top`` finished trials by validation error, each again with every seed: full length, no rungs, the
    study's name and trial -1 (a confirmed run, not a trial), named NAME-cT-sS."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    first = spec.objectives.index("val_err") if "val_err" in spec.objectives else 0
    out = []
    for trial in sorted(done, key=lambda t: (t.values[first], t.number))[:top]:
        try:
            cfg = store.get(trial.user_attrs["run_id"]).read_config()
        except (KeyError, RunError, OSError, ValueError):
            continue
        for seed in seeds:
            out.append(cfg.with_overrides(seed=seed, trial=-1, rungs=(), name=f"{spec.name}-c{trial.number}-s{seed}",
                                          sweep_name=f"{spec.name}-confirm"))
    return out

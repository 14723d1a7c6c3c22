"""The study's driver: ask Optuna for settings, queue each trial as a run, tell Optuna what the run reached, and make
the pruner's decisions at rungs (DESIGN.md "Studies").

One ``tick`` looks at every trial of the study still open in Optuna, under the study's lock file in the runs folder
(``lock_path``: beside the storage's file), so two drivers of one study never decide, ask or tell at once:

* a trial's run paused at a rung (core/train/trainer.py ``_held_at_rung``) gets its decision: ``continue`` or
  ``stop`` through the run's request file (ASHA: core/study/asha.py; median: Optuna's MedianPruner). The decision is
  kept in the trial's user attributes before it is sent, so a driver killed midway sends the same one again;
* a run stopped at a rung that is now in its rung's top is promoted: queued again, the scheduler resumes it;
* a finished run's objectives are told to Optuna (``skip_if_finished``: never twice); a failed or diverged one fails;
* while fewer runs are in flight than the scheduler has slots and fewer trials exist than asked for, a new trial is
  asked for and queued. Its run id goes into the trial's user attributes; a driver killed between the ask and that
  finds the run by its config (study, trial) or queues it then: no trial is lost or made twice.

Every value comes from the runs' own files (epochs.jsonl's val_err), so the study can always be rebuilt from them.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from core.serve import queue as Q
from core.spec.config import ConfigError
from core.spec.grid import describe
from core.store.lock import FileLock, LockHeldError
from core.store.runs import Run, RunError, RunStore, live_state
from core.study.asha import standing
from core.study.space import settings
from core.study.spec import StudySpec

ENDED_BAD = ("failed", "diverged", "damaged")


def start_driver(runs_dir: Path, name: str):
    """``tui_app.py study NAME`` in its own session (it outlives the TUI that started it, as the scheduler does):
    it continues the study from its storage (core/study/spec.py ``storage_of``) and starts a scheduler if none
    serves the folder. Its output goes to ``<runs>/.studies/NAME.log``. Returns its Popen."""
    import sys

    from core.serve.launch import ENTRY_POINT, detached, plain_env
    from core.study.spec import STUDIES_DIR

    root = Path(runs_dir).resolve()
    (root / STUDIES_DIR).mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(ENTRY_POINT), "study", name, "--runs-dir", str(root)]
    return detached(cmd, root / STUDIES_DIR / f"{name}.log", plain_env())


def objective_values(spec: StudySpec, rows: list[dict]) -> list[float]:
    """The objectives of a run's epochs: its last validation error (%) and its training seconds."""
    out = {"val_err": float(rows[-1]["val_err"]), "train_time": float(sum(r.get("seconds") or 0 for r in rows))}
    return [out[o] for o in spec.objectives]


def lock_path(runs_dir: Path, url: str, name: str) -> Path:
    """The study's lock: beside a SQLite or journal file (every process that shares the file sees it), else in the
    runs folder (drivers of other machines sharing a database server each hold their own)."""
    for prefix in ("sqlite:///", "journal:"):
        if url.startswith(prefix):
            path = Path(url.removeprefix(prefix)).expanduser().resolve()
            return path.with_name(f"{path.name}.{name}.lock")
    return Path(runs_dir) / f".study-{name}.lock"


class StudyDriver:
    def __init__(self, store: RunStore, study, spec: StudySpec, url: str, slots: int = 1,
                 echo: Callable[[str], None] | None = None):
        self.store, self.study, self.spec = store, study, spec
        self.slots = max(1, slots)
        self.echo = echo or (lambda line: None)
        self.root = str(Path(store.root).resolve())
        self.lock = FileLock(lock_path(store.root, url, spec.name))
        self.dims = spec.dims
        self.rungs = spec.rungs()
        self.values: dict[int, dict[int, float]] = {}     # trial -> epoch -> val_err, this tick

    # -- the loop ------------------------------------------------------------------------------------------------------
    def run(self, poll_s: float = 0.5, stop=None, each_tick: Callable[[], None] | None = None) -> None:
        """Tick until every trial is asked for and settled (or ``stop``, a threading.Event, is set)."""
        while stop is None or not stop.is_set():
            with self.locked():
                if self.tick():
                    return
            if each_tick is not None:
                each_tick()
            time.sleep(poll_s)

    @contextlib.contextmanager
    def locked(self, timeout: float = 120.0) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.lock.acquire()
                break
            except LockHeldError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            yield
        finally:
            self.lock.release()

    def tick(self) -> bool:
        """One look at every open trial; True when the study is done (every trial asked for has ended)."""
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        self.values = {t.number: {int(k): float(v) for k, v in t.intermediate_values.items()} for t in trials}
        open_trials = [t for t in trials if t.state == TrialState.RUNNING and self._mine(t)]
        kinds = {t.number: self._sync(t) for t in open_trials}
        active = sum(k == "active" for k in kinds.values())
        active += self._promote([t for t in open_trials if kinds[t.number] == "rung"], self.slots - active)
        asked = len(trials)
        while active < self.slots and asked < self.spec.trials:
            self._new_trial()
            active, asked = active + 1, asked + 1
        if active or asked < self.spec.trials:
            return False
        self._close([t for t in open_trials if kinds[t.number] in ("rung", "idle")])
        return True

    def _mine(self, trial) -> bool:
        """A trial this runs folder trains (another machine's trials are its driver's)."""
        return trial.user_attrs.get("runs_dir", self.root) == self.root

    # -- one trial -----------------------------------------------------------------------------------------------------
    def _run_of(self, trial) -> Run | None:
        run_id = trial.user_attrs.get("run_id")
        if run_id:
            try:
                return self.store.get(run_id)
            except RunError:
                return None
        for run in self.store.runs():     # killed between creating the run and noting its id: find it by its config
            try:
                cfg = run.read_config()
            except (OSError, ValueError):
                continue
            if cfg.study == self.spec.name and cfg.trial == trial.number:
                self.study._storage.set_trial_user_attr(trial._trial_id, "run_id", run.id)
                return run
        return self._queue(trial)        # killed between the ask and the run: queue it now

    def _sync(self, trial) -> str:
        """Bring one open trial up to date. Returns 'active' (queued, training, or deciding at a rung), 'rung' (stopped
        at a rung: may be promoted), 'idle' (stopped by a person) or 'ended' (told to Optuna now)."""
        from optuna.trial import TrialState

        run = self._run_of(trial)
        if run is None:
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            return "ended"
        rows = [r for r in run.read_epochs() if r.get("val_err") is not None]
        self._report(trial, rows)
        state = live_state(run)
        if state == "finished" and rows:
            values = objective_values(self.spec, rows)
            self.study.tell(trial.number, values if len(values) > 1 else values[0], skip_if_finished=True)
            said = ", ".join(f"{o} {v:.4g}" for o, v in zip(self.spec.objectives, values))
            self._say(run, trial, f"finished: {said}")
            return "ended"
        entry = Q.read_entry(run) or {}
        given_up = state in ("crashed", "out-of-memory") and entry.get("settled")
        if state in ENDED_BAD or state == "finished" or given_up:
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            self._say(run, trial, f"failed ({state}): {run.read_status().get('error') or 'see its events.log'}")
            return "ended"
        status = run.read_status()
        if state == "paused" and status.get("rung_epoch") == len(rows) and len(rows) in self.rungs:
            self._decide(trial, run, len(rows))
            return "active"
        if state == "stopped":
            return "rung" if len(rows) in self.rungs and self.spec.pruner == "asha" else "idle"
        if state == "queued" and not (run.path / Q.QUEUE_FILE).exists():
            with contextlib.suppress(RunError):      # RunLockedError: someone trains it after all
                Q.requeue(self.store, run.id, why=f"study {self.spec.name}: its driver ended before it queued it")
        return "active"

    def _report(self, trial, rows: list[dict]) -> None:
        """Each epoch's validation error as the trial's intermediate value (one objective: Optuna keeps one list)."""
        seen = self.values.setdefault(trial.number, {})
        for r in rows:
            epoch = int(r["epoch"])
            if epoch not in seen:
                seen[epoch] = float(r["val_err"])
                if len(self.spec.objectives) == 1:
                    self.study._storage.set_trial_intermediate_value(trial._trial_id, epoch, float(r["val_err"]))

    def _decide(self, trial, run: Run, epoch: int) -> None:
        """The pruner's decision for a run paused at a rung, kept before it is sent (a driver killed midway resends
        it), logged in the run's events.log."""
        key = f"rung_{epoch}"
        decision = self.study._storage.get_trial(trial._trial_id).user_attrs.get(key)
        if decision is None:
            rung = self.rungs.index(epoch) + 1
            if self.spec.pruner == "asha":
                st = standing(self._at(epoch), trial.number, self.spec.eta)
                go, why = st.promoted, st.text(rung, epoch)
            else:
                go, why = self._median(trial, epoch)
            decision = "continue" if go else "stop"
            self.study._storage.set_trial_user_attr(trial._trial_id, key, decision)
            self._say(run, trial, f"{'continues past' if go else 'stopped at'} {why}")
            if not go and self.spec.pruner == "median":
                from optuna.trial import TrialState

                self.study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)
        run.request("stop" if decision == "stop" else "continue")     # "promoted": resumed, it waits here again

    def _median(self, trial, epoch: int) -> tuple[bool, str]:
        from optuna.pruners import MedianPruner

        pruner = MedianPruner(n_startup_trials=min(5, max(1, self.spec.trials // 4)), n_warmup_steps=0)
        frozen = self.study._storage.get_trial(trial._trial_id)
        prune = pruner.prune(self.study, frozen)
        others = sorted(v[epoch] for n, v in self.values.items() if epoch in v and n != trial.number)
        median = others[len(others) // 2] if others else float("nan")
        return not prune, (f"epoch {epoch} by the median rule: val err {self.values[trial.number][epoch]:.1f}% "
                           f"against a median of {median:.1f}% over {len(others)} other trials")

    def _at(self, epoch: int) -> dict[int, float]:
        """trial -> validation error at ``epoch``, for every trial that reached it."""
        return {n: v[epoch] for n, v in self.values.items() if epoch in v}

    def _promote(self, stopped: list, free: int) -> int:
        """ASHA's promotions: runs stopped at a rung that are now in its top are queued again (highest rung first).
        Returns how many."""
        done = 0
        for epoch in sorted(self.rungs, reverse=True):
            for trial in stopped:
                run = self._run_of(trial)
                if free <= done or run is None or len(self.values.get(trial.number, {})) != epoch:
                    continue
                st = standing(self._at(epoch), trial.number, self.spec.eta)
                if not st.promoted:
                    continue
                why = f"promoted at {st.text(self.rungs.index(epoch) + 1, epoch)}"
                try:
                    Q.requeue(self.store, run.id, why=f"study {self.spec.name}: {why}")
                except RunError:
                    continue
                self.study._storage.set_trial_user_attr(trial._trial_id, f"rung_{epoch}", "promoted")
                self._say(run, trial, why + "; resumed from its checkpoint", log=False)
                done += 1
        return done

    def _close(self, trials: list) -> None:
        """The study is done: trials stopped at a rung (and never promoted) end as pruned, their last validation
        error as their value."""
        from optuna.trial import TrialState

        for trial in trials:
            self.study.tell(trial.number, state=TrialState.PRUNED, skip_if_finished=True)

    # -- a new trial ---------------------------------------------------------------------------------------------------
    def _new_trial(self) -> None:
        trial = self.study.ask({d.field: d.distribution() for d in self.dims})
        trial.set_user_attr("runs_dir", self.root)
        self._queue(self.study._storage.get_trial(trial._trial_id))

    def _queue(self, trial) -> Run | None:
        """The run of a trial: the study's fixed settings and the trial's parameters, planned for the full budget."""
        from optuna.trial import TrialState

        values = settings(self.dims, trial.params)
        try:
            cfg = self.spec.config.with_overrides(**values, study=self.spec.name, trial=trial.number,
                                                  rungs=self.rungs, name=f"{self.spec.name}-t{trial.number}",
                                                  sweep_name=self.spec.name)
            errors = cfg.validate()
        except ConfigError as exc:
            errors = exc.errors
        if errors:        # a combination the space's ends did not show (the ends themselves were checked)
            self.study._storage.set_trial_user_attr(trial._trial_id, "error", "; ".join(errors.values()))
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            self.echo(f"trial {trial.number}: cannot train {values}: {'; '.join(errors.values())}")
            return None
        run = Q.enqueue(self.store, [cfg])[0]
        self.study._storage.set_trial_user_attr(trial._trial_id, "run_id", run.id)
        keys = [d.field for d in self.dims]
        run.log(f"study {self.spec.name}: trial {trial.number} ({describe(cfg, keys)})")
        self.echo(f"trial {trial.number}: queued {run.id} ({describe(cfg, keys)})")
        return run

    def _say(self, run: Run, trial, text: str, log: bool = True) -> None:
        if log:
            run.log(f"study {self.spec.name}: {text}")
        self.echo(f"trial {trial.number} ({run.id}): {text}")

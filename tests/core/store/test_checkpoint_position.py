"""A checkpoint's epoch and step against the run's records (core/store/checkpoint_check.py): an iteration budget ends
inside its last epoch, and a run that finished there is finished, not damaged (every finished run of the he2016
preset, 64,000 iterations = 163.7 epochs of 391, was listed damaged)."""
from __future__ import annotations

from core.store.checkpoint_check import position_problem
from core.store.runs import RunStore
from core.train.trainer import train_run
from tests.conftest import tiny_config


def test_the_last_epoch_of_an_iteration_budget_may_end_early_and_nothing_else_may():
    status = {"epoch": 164, "iters_per_epoch": 391, "total_steps": 64000}
    assert position_problem({"epoch": 164, "step": 64000}, status, []) == ""
    assert position_problem({"epoch": 163, "step": 63733}, status, []) == ""
    assert "outside its epoch 164" in position_problem({"epoch": 163, "step": 70000}, status, [])
    assert "outside its epoch 165" in position_problem({"epoch": 164, "step": 63000}, status, [])


def test_a_run_of_20_iterations_at_8_per_epoch_is_listed_finished(tmp_path):
    run, state = train_run(RunStore(tmp_path), tiny_config(iterations=20, epochs=0))
    assert state == "finished" and run.read_status()["step"] == 20
    (info,) = RunStore(tmp_path).list()
    assert info.state == "finished", info.error

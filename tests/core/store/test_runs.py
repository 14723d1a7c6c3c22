"""The run store: ids, safe names, tolerant listing, crash detection, the writer lock."""
from __future__ import annotations

import json
import os

import pytest

from core.store.runs import RunError, RunLockedError, RunStore, run_summary_row
from tests.conftest import tiny_config


def test_ids_are_readable_and_unique(tmp_path):
    store = RunStore(tmp_path)
    a = store.create(tiny_config(depth=20, shortcut="A", width=16))
    b = store.create(tiny_config(depth=20, shortcut="A", width=16))
    assert a.id.startswith("r20-A-sgd-") and a.id != b.id
    c = store.create(tiny_config(depth=56, shortcut="none", optimizer="adam", width=64))
    assert c.id.startswith("r56-plain-w64-adam-")
    assert store.create(tiny_config(name="baseline")).id == "baseline"
    # a seed grid's runs are told apart by their id (they were r20-A-sgd-<time>, -2, -3)
    seeds = [store.create(tiny_config(depth=20, width=16, seed=s)).id for s in (1, 2, 3)]
    assert [i.split("-")[3] for i in seeds] == ["s1", "s2", "s3"], seeds
    assert store.create(tiny_config(name="baseline")).id == "baseline-2"


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/etc", ".hidden", ""])
def test_names_outside_the_store_are_refused(tmp_path, bad):
    store = RunStore(tmp_path / "runs")
    (tmp_path / "x").mkdir()
    with pytest.raises(RunError):
        store.get(bad)


def test_unknown_run_suggests_close_names(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config(name="resnet-56-seed1"))
    with pytest.raises(RunError, match="resnet-56-seed1"):
        store.get("resnet-56")
    assert store.get(run.id).path == run.path


def test_damaged_folders_list_as_damaged(tmp_path):
    store = RunStore(tmp_path)
    store.create(tiny_config(name="good"))
    (tmp_path / "no-config").mkdir()
    bad_json = store.create(tiny_config(name="bad-json"))
    bad_json.config_path.write_text("{not json")
    bad_status = store.create(tiny_config(name="bad-status"))
    bad_status.status_path.write_text("[1, 2")
    bad_epochs = store.create(tiny_config(name="bad-epochs"))
    bad_epochs.epochs_path.write_text('{"epoch": 1}\nnonsense\n{"epoch": 2}\n')
    torn = store.create(tiny_config(name="torn"))
    torn.epochs_path.write_text('{"epoch": 1, "test_err": 50.0}\n{"epoch": 2, "te')  # crash mid-write: tolerated
    torn.checkpoint_path.write_bytes(b"")       # (a run with a finished epoch and no checkpoint.pt is damaged)
    infos = {i.id: i for i in store.list()}
    assert infos["good"].state == "queued"
    for rid in ("no-config", "bad-json", "bad-status", "bad-epochs"):
        assert infos[rid].state == "damaged" and infos[rid].error, rid
        row = run_summary_row(infos[rid])
        assert row["status"] == "damaged"
    assert "config.json is missing" in infos["no-config"].error
    assert infos["torn"].state == "queued" and infos["torn"].final_test_err == 50.0


def test_running_without_a_live_owner_is_crashed(tmp_path):
    store = RunStore(tmp_path)
    run = store.create(tiny_config())
    run.update_status(state="running", pid=999999)
    assert run.info().state == "crashed"
    run.acquire_lock()
    try:
        assert run.info().state == "running"
        other = store.get(run.id)
        with pytest.raises(RunLockedError):
            other.acquire_lock()
        with pytest.raises(RunLockedError):
            store.delete(run.id)
    finally:
        run.release_lock()
    assert run.info().state == "crashed"
    store.delete(run.id)
    assert not run.path.exists()


def test_another_host_uses_the_heartbeat(tmp_path):
    import time
    run = RunStore(tmp_path).create(tiny_config())
    run.update_status(state="running", host="elsewhere", updated_at=time.time())
    assert run.info().state == "running"
    run.update_status(updated_at=time.time() - 3600)
    assert run.info().state == "crashed"


def test_truncate_logs(tmp_path):
    run = RunStore(tmp_path).create(tiny_config())
    run.append_epoch({"epoch": 1, "step": 10})
    run.append_epoch({"epoch": 2, "step": 20})
    run.append_steps([{"step": s} for s in range(5, 30, 5)])
    run.truncate_logs(1, 15)
    assert [r["epoch"] for r in run.read_epochs()] == [1]
    assert [r["step"] for r in run.read_steps()] == [5, 10, 15]


def test_status_writes_are_atomic(tmp_path):
    run = RunStore(tmp_path).create(tiny_config())
    for i in range(50):
        run.update_status(step=i)
    assert json.loads(run.status_path.read_text())["step"] == 49
    assert not [p for p in os.listdir(run.path) if p.endswith(".tmp")]


def test_a_folder_with_wrong_types_is_damaged_everywhere_and_can_be_deleted(tmp_path):
    store = RunStore(tmp_path)
    odd = store.create(tiny_config(name="odd"))
    odd.update_status(epoch="three")                       # readable JSON, but not a number where one belongs
    listed = store.create(tiny_config(name="rows-not-objects"))
    listed.epochs_path.write_text("[1, 2]\n")
    for run in (odd, listed):
        info = run.info()
        assert info.state == "damaged" and info.error, run.id
        assert run_summary_row(info)["status"] == "damaged"
    assert {i.id: i.state for i in store.list()} == {"odd": "damaged", "rows-not-objects": "damaged"}
    store.delete("odd")
    assert not odd.path.exists()


def test_every_list_is_oldest_first_then_by_id(tmp_path):
    from core.store.runs import oldest_first

    store = RunStore(tmp_path)
    for name, created in (("b", 2.0), ("a", 2.0), ("c", 1.0)):
        store.create(tiny_config(name=name)).update_status(created_at=created)
    (tmp_path / "damaged").mkdir()                          # no status: sorts as created at 0
    assert [i.id for i in store.list()] == ["damaged", "c", "a", "b"]
    assert [i.id for i in oldest_first(reversed(store.list()))] == ["damaged", "c", "a", "b"]


def test_an_extended_run_knows_its_new_length_in_iterations(tmp_path):
    # after the detail's 'x' into the queue the run read 'iteration 24/-' until it restarted (total_steps None)
    from core.store.runs import extend_run
    from tests.core.results_helpers import fake_run

    run = fake_run(RunStore(tmp_path / "runs"), [50.0, 40.0], ipe=8)     # two epochs of 8 iterations, finished
    assert run.info().status["total_steps"] == 16
    run.acquire_lock()
    try:
        extend_run(run, 5)
    finally:
        run.release_lock()
    status = run.info().status
    assert status["total_epochs"] == 5 and status["total_steps"] == 40, status

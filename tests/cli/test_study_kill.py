"""`study` under kill -9 (of the driver and of a trial) and with two drivers on one storage: no trial lost or
counted twice. Apart from tests/cli/test_study.py so that the two files' slow studies run on both test workers."""
from __future__ import annotations

import json
import os
import signal

from tests.cli.test_cli import wait_for
from tests.cli.test_study import TINY, show, start, study, study_runs


def test_kill_9_of_the_driver_and_of_a_trial_loses_no_trial_and_counts_none_twice(folders):
    runs = folders()

    def training():
        for st in runs.glob("k-t*/status.json"):
            status = json.loads(st.read_text())
            if status.get("state") == "running" and status.get("pid"):
                return status["pid"], st.parent
        return None

    proc = start("k", *TINY, "--trials", "4", runs=runs)
    try:    # the driver is killed while a trial trains (waiting for one only after it, the trials could all be done)
        found = wait_for(lambda: (runs / "k-t1").exists() and training(), "the second trial's run and a trial "
                         "training", proc=proc, timeout=240)
    finally:
        proc.kill()                        # SIGKILL: no handler runs
        proc.wait()
    pid, killed = training() or found      # the scheduler's trainers go on without the driver
    os.kill(pid, signal.SIGKILL)
    out = study("k", runs=runs)             # continues it: its settings come from its storage
    assert out.returncode == 0, out.stdout + out.stderr
    assert "continuing study k: " in out.stdout
    data = show("k", runs)
    assert [t["number"] for t in data["trials"]] == [0, 1, 2, 3]
    assert {t["state"] for t in data["trials"]} <= {"complete", "pruned"}
    assert {n: len(ids) for n, ids in study_runs(runs, "k").items()} == {0: 1, 1: 1, 2: 1, 3: 1}
    assert "scheduler: the trainer process" in (killed / "events.log").read_text()


def test_two_drivers_on_one_journal_storage_share_the_trials(folders, tmp_path):
    one, two = folders("one"), folders("two")
    journal = tmp_path / "study.journal"
    first = start("j", *TINY, "--trials", "4", "--storage", f"journal:{journal}", runs=one)
    try:
        wait_for(lambda: (one / "j-t0").exists(), "the first trial", proc=first, timeout=300)
        second = study("j", "--storage", f"journal:{journal}", "--devices", "cpu", runs=two)
        assert second.returncode == 0, second.stdout + second.stderr
        assert first.wait(600) == 0, first.communicate()[0]
    finally:
        first.kill()
        first.wait()
    data = show("j", one, "--storage", f"journal:{journal}")
    assert [t["number"] for t in data["trials"]] == [0, 1, 2, 3]
    assert {t["state"] for t in data["trials"]} <= {"complete", "pruned"}
    a, b = study_runs(one, "j"), study_runs(two, "j")
    assert sorted([*a, *b]) == [0, 1, 2, 3] and all(len(v) == 1 for v in [*a.values(), *b.values()])
    assert a and b, "each driver trained trials in its own runs folder"

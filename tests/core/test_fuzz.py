"""Issue 11, point 1: no run folder, however damaged, makes `runs`, `show`, `eval` or `resume` raise; each damaged
run is listed as damaged (with the repair hint where checkpoint.pt can rebuild it) or in its true state, every
refusal is one line, and nothing outside the runs folder is written. The TUI half is
tests/ui/test_damaged_folders.py."""
from __future__ import annotations

import json
import shutil

import pytest

from cli.main import main
from core.serve import scheduler_control as S
from tests.core.corruptions import (
    DAMAGE,
    OUTSIDE_TEXT,
    SCHEDULER_STATE,
    expected_state,
    repairable,
    restartable,
    unqueued,
)

ESC = "\x1b"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([*map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(1200)      # 130 damaged folders, each listed, shown, evaluated and resumed (minutes when loaded)
def test_every_damaged_folder_is_listed_shown_evaluated_and_resumed_without_a_traceback(damaged_runs, capsys, tmp_path):
    runs, cases, outside = damaged_runs
    code, out, err = run_cli(capsys, "runs", "--format", "json", "--runs-dir", runs)
    assert code == 0 and err == ""
    listed = {row["id"]: row for row in json.loads(out)}
    assert set(listed) == set(cases)
    for rid, (name, damage) in cases.items():
        row = listed[rid]
        assert row["status"] == expected_state(name, damage), (rid, row)
        if row["status"] == "damaged":
            assert row["error"] and "\n" not in row["error"] and ESC not in row["error"], (rid, row)
            hint = "resume --repair can recover it from checkpoint.pt"
            assert (hint in row["error"]) == repairable(name, damage), (rid, row["error"])
            assert ("resume --repair starts it over" in row["error"]) == restartable(name, damage), (rid, row)
    code, out, err = run_cli(capsys, "runs", "--runs-dir", runs)           # the table too
    assert code == 0 and err == "" and out.count("damaged") >= 1 and ESC not in out

    work = tmp_path / "runs"                                               # resume writes: work on a copy
    shutil.copytree(runs, work, symlinks=True)
    for rid, (name, damage) in cases.items():
        state = expected_state(name, damage)
        code, out, err = run_cli(capsys, "show", rid, "--runs-dir", work)
        assert code == 0 and err == "" and f"state    {state}" in out, (rid, out, err)
        assert ESC not in out and "\x07" not in out, (rid, out)            # events.log's bytes come out escaped

        code, out, err = run_cli(capsys, "eval", rid, "--device", "cpu", "--json", "--runs-dir", work)
        unreadable_config = name == "config.json" or damage in ("directory", "symlink")
        assert code == (1 if unreadable_config else 0), (rid, code, out, err)
        assert err.count("\n") == (1 if code else 0), (rid, err)
        if code == 0:
            results = {r["weights"]: r for r in json.loads(out)["results"]}
            assert "test_err" in results["checkpoint.pt" if name != "checkpoint.pt" else "best.pt"], (rid, out)

        code, out, err = run_cli(capsys, "resume", rid, "--runs-dir", work)
        if unqueued(name, damage):              # only the queue lost it: resume trains it as it is
            assert code == 0 and err == "" and out.splitlines()[-1].startswith(f"finished {rid}: 2 epochs"), \
                (rid, out, err)
        elif state == "damaged":
            assert code == 1 and err.count("\n") == 1 and "damaged" in err and out == "", (rid, out, err)
            if repairable(name, damage) or restartable(name, damage):
                assert f"{rid} --repair" in err, (rid, err)
                code, out, err = run_cli(capsys, "resume", rid, "--repair", "--runs-dir", work)
                assert code == 0 and err == "" and out.splitlines()[-1].startswith(f"finished {rid}: 2 epochs"), \
                    (rid, out, err)
        elif name == "checkpoint.pt":
            assert code == 1 and err == "", (rid, out, err)
            assert out.splitlines()[-1].startswith("failed: checkpoint.pt cannot be loaded"), (rid, out)
        else:
            assert code == 0 and err == "" and out.splitlines()[-1].startswith(f"finished {rid}: 2 epochs"), \
                (rid, out, err)
    assert outside.read_bytes() == OUTSIDE_TEXT                            # links were never followed
    code, out, err = run_cli(capsys, "runs", "--format", "json", "--runs-dir", work)
    assert code == 0 and {r["status"] for r in json.loads(out)} <= {"finished", "failed", "damaged"}


def test_every_damaged_scheduler_json_is_read_as_nothing_known(tmp_path, capsys):
    """scheduler.json, the runs folder's own file, under every damage while a scheduler holds the folder: `queue`
    lists, `scheduler` names the scheduler, nothing raises (issue 20)."""
    root = tmp_path / "runs"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(OUTSIDE_TEXT)
    lock = S.lock_of(root)
    lock.acquire()
    try:
        for damage, change in DAMAGE.items():
            path = root / S.STATE_FILE
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            elif path.exists() or path.is_symlink():
                path.unlink()
            if damage == "directory":
                path.mkdir()
            elif damage == "symlink":
                path.symlink_to(outside)
            elif (data := change(SCHEDULER_STATE)) is not None:
                path.write_bytes(data)
            state = S.read_state(root)
            assert state == {} or state == json.loads(SCHEDULER_STATE), (damage, state)
            for argv in (["queue"], ["queue", "--json"], ["scheduler", "--devices", "cpu"]):
                code, out, err = run_cli(capsys, *argv, "--runs-dir", root)
                assert code == 0 and err == "" and ESC not in out, (damage, argv, out, err)
    finally:
        lock.release()
    assert outside.read_bytes() == OUTSIDE_TEXT

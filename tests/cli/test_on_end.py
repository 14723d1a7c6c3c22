"""The user's command when a run ends (issue 34 item 10): ``--on-end CMD`` and the ``on_end`` setting.

It runs detached with the run's facts in its environment; a failing or hanging command is logged in the run's
events.log and never changes the run's outcome."""
from __future__ import annotations

import json
import shlex
import time

from core.serve import on_end
from core.store.runs import RunStore
from tests.cli.test_cli import TINY, cli, only_run, wait_for


def _env_file_command(path) -> str:
    """A command that writes its RESLAB_ variables to ``path`` (whole, by rename)."""
    q = shlex.quote(str(path))
    return f"env | grep ^RESLAB_ > {q}.tmp && mv {q}.tmp {q}"


def _read_env(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_train_on_end_runs_the_command_with_the_runs_facts_and_its_failure_is_only_logged(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "env.txt"
    command = _env_file_command(out) + "; echo webhook down >&2; exit 3"
    res = cli("train", *TINY, "--epochs", "1", "--on-end", command, runs=runs)
    assert res.returncode == 0, res.stderr               # the command's failure is not the run's
    folder = only_run(runs)
    wait_for(out.exists, "the on-end command's file", timeout=60)
    env = _read_env(out)
    last = json.loads(folder.joinpath("epochs.jsonl").read_text().splitlines()[-1])
    assert env["RESLAB_RUN_ID"] == folder.name
    assert env["RESLAB_RUN_STATE"] == "finished"
    assert env["RESLAB_RUN_DIR"] == str(folder.resolve())
    assert env["RESLAB_TEST_ERR"] == f"{last['test_err']:.2f}"
    assert env["RESLAB_RUN_EPOCHS"] == "1/1"
    events = folder / "events.log"
    wait_for(lambda: "on-end command failed with exit code 3" in events.read_text(), "the failure in events.log",
             timeout=60)
    assert "webhook down" in events.read_text()
    assert json.loads((folder / "status.json").read_text())["state"] == "finished"


def test_a_hanging_command_is_killed_and_logged(tmp_path, tiny):
    run = RunStore(tmp_path / "runs").create(tiny())
    run.update_status(state="failed", error="boom")
    started = time.monotonic()
    proc = on_end.start("sleep 30", run, timeout_s=0.5)
    assert time.monotonic() - started < 2.0          # start returns at once
    assert proc.wait(timeout=30) == 1
    assert "on-end command still running after 0.5 s: killed" in run.events_path.read_text()
    assert run.read_status()["state"] == "failed"


def test_the_setting_is_the_default_and_a_given_command_wins(tmp_path, monkeypatch, tiny):
    from core.store.settings import SETTINGS_FILE, config_dir, write_json

    assert on_end.configured(None) == ""
    write_json(config_dir() / SETTINGS_FILE, {"on_end": "notify-send done"})
    assert on_end.configured(None) == "notify-send done"
    assert on_end.configured("") == ""                # --on-end '' turns the setting off
    assert on_end.configured("curl x") == "curl x"
    run = RunStore(tmp_path / "runs").create(tiny())
    assert on_end.start("true", run) is None          # queued: it has not ended


def test_the_scheduler_runs_the_setting_once_a_run_it_served_has_ended_for_good(tmp_path, tiny):
    from core.serve import queue as Q
    from core.serve import scheduler as S
    from core.serve.slots import make_slots
    from core.store.settings import SETTINGS_FILE, config_dir, write_json

    out = tmp_path / "env.txt"
    write_json(config_dir() / SETTINGS_FILE, {"on_end": _env_file_command(out)})
    store = RunStore(tmp_path / "runs")
    run = Q.enqueue(store, [tiny(channels_last="off")])[0]
    sched = S.Scheduler(store, make_slots(["cpu"]))
    run.update_status(state="out-of-memory", error="out of memory")
    sched._ended(run, 1)                              # retried with micro-batches: not an end
    assert sched.retry and not out.exists()
    sched.retry = []
    Q.write_entry(run, {**Q.read_entry(run), "settled": False})
    run.update_status(state="diverged", error="loss became nan at step 3")
    sched._ended(run, 1)
    wait_for(out.exists, "the on-end command's file", timeout=60)
    env = _read_env(out)
    assert (env["RESLAB_RUN_ID"], env["RESLAB_RUN_STATE"]) == (run.id, "diverged")
    assert env["RESLAB_RUN_ERROR"] == "loss became nan at step 3"

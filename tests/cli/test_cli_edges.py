"""The headless CLI used as a new user would use it, from other folders and on odd input: what the README promises
about where data is read, what is printed and which exit code comes back.

Subprocesses run ``tui_app.py`` by its absolute path from a working directory of the test's choosing (as a user's
shell would); cheap commands also run in-process through ``cli.main.main``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli.main import main

REPO = Path(__file__).resolve().parents[2]
TINY_REAL = ["--depth", "8", "--width", "4", "--epochs", "1", "--batch-size", "50", "--device", "cpu",
             "--precision", "fp32", "--no-download", "--channels-last", "off"]


def run_cli(*args, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "RESLAB_DATA")}
    return subprocess.run([sys.executable, str(REPO / "tui_app.py"), *map(str, args)], cwd=cwd,
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout)


# -- the default data folder is fixed when the run is created ----------------------------------------------------------
def test_a_run_trained_on_the_default_data_folder_is_evaluated_from_anywhere(tmp_path, cifar_tiny):
    """`train` without --data-dir reads $RESLAB_DATA or ./data; the run must keep reading that folder when it is
    resumed, evaluated or trained by the queue's scheduler from another working directory (the scheduler's own
    folder, a later shell). Before, config.json kept data_dir='' and every later process looked in ITS ./data:
    `queue add` checked data/ here and the scheduler then failed with 'CIFAR-10 was not found in /elsewhere/data'
    (or downloaded 170 MB there)."""
    here, elsewhere, runs = tmp_path / "project", tmp_path / "elsewhere", tmp_path / "runs"
    here.mkdir()
    elsewhere.mkdir()
    (here / "data").symlink_to(cifar_tiny)
    res = run_cli("train", *TINY_REAL, "--runs-dir", runs, cwd=here)
    assert res.returncode == 0, res.stdout + res.stderr
    run_id = res.stdout.split()[1]
    ev = run_cli("eval", run_id, "--json", "--runs-dir", runs, cwd=elsewhere)
    assert ev.returncode == 0, ev.stdout + ev.stderr
    assert json.loads(ev.stdout)["images"] == 100
    assert json.loads((runs / run_id / "config.json").read_text())["data_dir"] == str((here / "data").resolve())

    # the same for $RESLAB_DATA: the folder it named when the run was created
    res = run_cli("train", *TINY_REAL, "--runs-dir", runs, cwd=elsewhere, env={"RESLAB_DATA": str(cifar_tiny)})
    assert res.returncode == 0, res.stdout + res.stderr
    run_id = res.stdout.split()[1]
    assert json.loads((runs / run_id / "config.json").read_text())["data_dir"] == str(cifar_tiny.resolve())


def test_synthetic_runs_record_no_data_folder(tmp_path, tiny):
    """Synthetic data reads no folder: none is recorded (the settings of such runs stay free of a path)."""
    from core.store.runs import RunStore

    assert RunStore(tmp_path).create(tiny()).read_config().data_dir == ""


# -- Fig. 7 tells apart groups of one depth and kind -------------------------------------------------------------------
def test_fig7_tells_apart_groups_of_one_depth_that_differ_in_other_settings(tmp_path, tiny):
    """Two ResNet-8 groups of widths 4 and 8 (a width study): Fig. 6 and Table 6 label them 'width=4'/'width=8',
    but Fig. 7 drew both as 'ResNet-8' in the same colour and line style, so they could not be told apart."""
    from core.results.figures import fig7
    from core.results.groups import group_runs
    from core.results.report import response_curves
    from core.store.runs import RunStore
    from core.train.trainer import train_run

    store = RunStore(tmp_path / "runs")
    for width in (4, 8):
        assert train_run(store, tiny(width=width, epochs=1))[1] == "finished"
    notes: list[str] = []
    curves = response_curves(group_runs(store.list()), notes, device="cpu")
    assert notes == [] and len(curves) == 2
    top = fig7(curves).axes[0]
    labels = [line.get_label() for line in top.lines]
    assert sorted(labels) == ["ResNet-8 (width=4)", "ResNet-8 (width=8)"], labels
    assert top.lines[0].get_color() != top.lines[1].get_color()


# -- a device this machine lacks is bad input for `train` -------------------------------------------------------------
def test_train_on_a_device_this_machine_lacks_is_refused_before_a_run_exists(tmp_path, capsys):
    """`train --device cuda:99` created a run folder, then failed it (exit 1, a 'failed' run left in `runs`), where
    `eval --device cuda:99` says '--device: ...' with exit 2: bad input, and nothing may be created."""
    runs = tmp_path / "runs"
    code = main(["train", "--dataset", "synthetic", "--depth", "8", "--width", "4", "--epochs", "1",
                 "--device", "cuda:99", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: --device: cuda:99 asked for"), err
    assert not runs.exists() or not any(runs.iterdir())


# -- usage errors point at the help that lists the flags ---------------------------------------------------------------
def test_an_unknown_flag_of_a_subcommand_points_at_that_subcommands_help(tmp_path, capsys):
    """`runs --json` (show and eval take --json, runs does not) said 'see tui_app.py --help', whose text lists the
    commands but none of their flags; the subcommand's own --help lists them."""
    for argv, prog in ((["runs", "--json"], "tui_app.py runs"), (["queue", "add", "--idle-exit", "3"],
                                                                  "tui_app.py queue add"),
                       (["train", "--frobnicate"], "tui_app.py train")):
        assert main([*argv, "--runs-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: unrecognized arguments: ") and err.endswith(f"(see {prog} --help)\n"), err
    assert main(["frobnicate"]) == 2
    assert capsys.readouterr().err.endswith("(see tui_app.py --help)\n")


# -- a report never lands inside the runs folder -----------------------------------------------------------------------
def test_report_out_inside_the_runs_folder_is_refused(tmp_path, capsys):
    """`report RUN --out runs/fig6` wrote the report into the runs folder, where every folder is read as a run:
    `runs` then listed 'fig6' as a damaged run (config.json is missing), and so did the TUI and `report --all`."""
    from core.store.runs import RunStore
    from tests.core.results_helpers import fake_run

    runs = tmp_path / "runs"
    run = fake_run(RunStore(runs), [9.0], dataset="cifar10")
    for out in (runs / "fig6", runs, runs / run.id):
        assert main(["report", run.id, "--out", str(out), "--no-layer-responses", "--runs-dir", str(runs)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --out: {out} is inside the runs folder {runs}"), err
    assert sorted(p.name for p in runs.iterdir()) == [run.id]
    assert sorted(p.name for p in (runs / run.id).iterdir()) == ["config.json", "epochs.jsonl", "events.log",
                                                                 "status.json", "steps.jsonl"]


# -- queue add: bad scheduler flags are bad input whether or not a scheduler serves the folder -------------------------
def test_queue_add_refuses_bad_scheduler_flags_on_a_served_folder(tmp_path, capsys):
    """On a folder a scheduler serves, `queue add --per-device 0` (or --gpus-per-run 0) queued the run and exited
    0; on a folder without one the same command is refused. 'Bad input exits 2 and creates nothing' (README)."""
    from core.serve import scheduler_control as S

    runs = tmp_path / "runs"
    runs.mkdir()
    lock = S.lock_of(runs)
    lock.acquire()               # this test process stands for the scheduler that serves the folder
    try:
        assert S.read_state(runs) is not None
        for flag, message in (("--per-device", "--per-device: must be 1 or more, got 0"),
                              ("--gpus-per-run", "--gpus-per-run: must be between 1 and")):
            code = main(["queue", "add", "--dataset", "synthetic", "--depth", "8", "--width", "4", flag, "0",
                         "--runs-dir", str(runs)])
            err = capsys.readouterr().err
            assert code == 2 and err.startswith(f"error: {message}"), err
    finally:
        lock.release()
    assert [p.name for p in runs.iterdir() if p.is_dir()] == []


# -- show: the files list stays a column -------------------------------------------------------------------------------
def test_show_lists_files_in_aligned_columns(tmp_path, capsys, tiny):
    """`show` printed names in a 14-character field, so a run with layer_responses.json (20 characters) or a
    tensorboard/ folder had its sizes out of line with the rest."""
    from core.store.runs import RunStore

    run = RunStore(tmp_path).create(tiny())
    (run.path / "layer_responses.json").write_text("{}")
    (run.path / "tensorboard").mkdir()
    assert main(["show", run.id, "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    files = out[out.index("files") + 1:out.index("last events") - 1]
    assert {line.split()[0] for line in files} >= {"config.json", "layer_responses.json", "tensorboard"}
    sized = [line for line in files if line.endswith(" bytes")]
    assert len({line.index(" bytes") for line in sized}) == 1, files       # right-aligned sizes end in one column
    folder = next(line for line in files if line.endswith("(directory)"))
    assert folder.index("(") > max(line.index(line.split()[0]) + len(line.split()[0]) for line in files), files


# -- text from a run folder never reaches the terminal raw -------------------------------------------------------------
def test_show_escapes_control_characters_of_status_fields(tmp_path, capsys, tiny):
    """README: 'Text from a run folder is shown with its control characters escaped'. `show` printed status.json's
    host and device as they were: a crafted host 'h\\x1b]0;title\\x07' set the terminal's title, '\\x1b[2J' in
    device cleared the screen."""
    from core.store.runs import RunStore

    run = RunStore(tmp_path).create(tiny())
    run.update_status(state="failed", host="h\x1b]0;title\x07", pid=4242, device="cpu\x1b[2J", error="x",
                      images_per_s=10.0, elapsed_s=1.0)
    assert main(["show", run.id, "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    assert "h\\x1b]0;title\\x07/4242" in out and "cpu\\x1b[2J" in out


def test_queue_escapes_control_characters_of_status_fields(tmp_path, capsys, tiny):
    """`queue` printed a running run's device from its status.json as it was (a run training on another host,
    known by its fresh heartbeat)."""
    import time

    from core.store.runs import RunStore

    run = RunStore(tmp_path).create(tiny())
    run.update_status(state="running", host="gpu01", pid=4242, device="cpu\x1b[2J", updated_at=time.time())
    assert run.info().state == "running"
    assert main(["queue", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert run.id in out and "\x1b" not in out and "cpu\\x1b[2J" in out, repr(out)


def test_stop_with_a_negative_or_nan_timeout_is_bad_input(tmp_path, capsys, tiny):
    """`stop RUN --timeout -5` answered 'did not stop within -5 s' (exit 1) after leaving a stop request in place;
    a timeout that is no length of time is bad input: exit 2 before anything is asked."""
    import time

    from core.store.runs import RunStore

    run = RunStore(tmp_path).create(tiny())
    run.update_status(state="running", host="gpu01", pid=4242, updated_at=time.time())
    for value in ("-5", "nan"):
        assert main(["stop", run.id, "--timeout", value, "--runs-dir", str(tmp_path)]) == 2
        assert capsys.readouterr().err.startswith(f"error: --timeout: must be 0 or more seconds, got {value}")
    assert not [p for p in run.path.iterdir() if "request" in p.name]


def test_runs_pointed_at_a_run_folder_names_its_runs_folder(tmp_path, capsys):
    # `runs --runs-dir runs/r8-A-...` said only 'no runs in runs/r8-A-...'
    from core.store.runs import RunStore
    from tests.conftest import tiny_config

    run = RunStore(tmp_path / "runs").create(tiny_config())
    assert main(["runs", "--runs-dir", str(run.path)]) == 0
    out = capsys.readouterr().out
    assert "is a run folder" in out and f"--runs-dir {tmp_path / 'runs'}" in " ".join(out.split()), out


def test_the_app_refuses_a_run_folder_as_its_runs_folder(tmp_path, capsys):
    # `tui_app.py --runs-dir runs/r8-A-...` opened an empty table whose form made runs inside that run's folder
    from core.store.runs import RunStore
    from tests.conftest import tiny_config

    run = RunStore(tmp_path / "runs").create(tiny_config())
    assert main(["--runs-dir", str(run.path)]) == 2
    err = capsys.readouterr().err
    assert "is a run folder" in err and f"--runs-dir {tmp_path / 'runs'}" in err, err

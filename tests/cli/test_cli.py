"""The headless CLI (issue 3): every command on tiny synthetic and small real data, run as a user would run it.

Training commands run as subprocesses (`python tui_app.py ...`, output to a pipe, so the plain non-terminal output
is what is checked); cheap commands and bad input also run in-process through ``cli.main.main``. Every wait polls a
condition with a deadline. To stop a run at a known point regardless of the machine's speed, tests freeze the
training process with SIGSTOP, make their request, and let it go on with SIGCONT.
"""
from __future__ import annotations

import csv
import io
import json
import os
import pty
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.main import main
from core.spec.field_help import FIELD_HELP, STUDY_FIELDS
from core.store.runs import RunStore
from core.train.requests import REQUEST_POLL_S

REPO = Path(__file__).resolve().parents[2]
TINY = ["--dataset", "synthetic", "--depth", "8", "--width", "4", "--max-train-images", "256", "--max-test-images",
        "100", "--batch-size", "32", "--schedule", "constant", "--device", "cpu", "--log-every", "2",
        "--precision", "fp32"]                          # 8 iterations per epoch
ESC = "\x1b"


def env() -> dict:
    e = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "COLUMNS")}
    e["PYTHONUNBUFFERED"] = "1"
    return e


def cli(*args, runs: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tui_app.py", *map(str, args), "--runs-dir", str(runs)], cwd=REPO,
                          env=env(), capture_output=True, text=True, timeout=timeout)


def start(*args, runs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "tui_app.py", *map(str, args), "--runs-dir", str(runs)], cwd=REPO,
                            env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, timeout: float = 120.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended (rc {proc.returncode}) while waiting for {what}:\n{out}\n{err}")
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lines_of(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("}")]


def run_folders(runs: Path) -> list[Path]:
    """The run folders in ``runs`` (not the hidden one a run is created in before it is renamed into place)."""
    return [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")] if runs.is_dir() else []


def only_run(runs: Path) -> Path:
    folders = run_folders(runs)
    assert len(folders) == 1, folders
    return folders[0]


def first_run_id(stdout: str) -> str:
    first = stdout.splitlines()[0]
    assert first.startswith("run "), stdout
    return first.split()[1]


def assert_plain(*texts: str) -> None:
    for text in texts:
        assert ESC not in text, f"escape code in non-terminal output: {text!r}"


def assert_one_epoch_line_each(run: Path, epochs: int) -> None:
    rows = lines_of(run / "epochs.jsonl")
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    steps = [r["step"] for r in lines_of(run / "steps.jsonl")]
    assert steps == sorted(set(steps)), "steps.jsonl overlaps or goes back"


def frozen(proc: subprocess.Popen):
    """Context: the process is SIGSTOPped inside, SIGCONTinued after."""
    class _Frozen:
        def __enter__(self):
            os.kill(proc.pid, signal.SIGSTOP)

        def __exit__(self, *exc):
            os.kill(proc.pid, signal.SIGCONT)
    return _Frozen()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, str, subprocess.CompletedProcess]:
    """One tiny synthetic run trained to the end through the CLI, shared by the read-only tests."""
    runs = tmp_path_factory.mktemp("runs")
    res = cli("train", *TINY, "--epochs", "2", runs=runs)
    assert res.returncode == 0, res.stdout + res.stderr
    return runs, first_run_id(res.stdout), res


# -- train -------------------------------------------------------------------------------------------------------------
def test_train_runs_to_the_end_with_plain_output(finished):
    runs, run_id, res = finished
    out = res.stdout.splitlines()
    assert out[0] == f"run {run_id}"
    assert out[1].startswith("started ResNet-8 A w4 sgd on cpu")
    assert [line.split()[1] for line in out if line.startswith("epoch ")] == ["1/2", "2/2"]
    assert out[-1].startswith(f"finished {run_id}: 2 epochs, test error ")
    assert_plain(res.stdout, res.stderr)
    assert res.stderr == ""
    run = runs / run_id
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    assert_one_epoch_line_each(run, 2)
    assert {"checkpoint.pt", "best.pt", "config.json", "events.log"} <= {p.name for p in run.iterdir()}


def test_train_on_real_cifar_subset_then_eval(tmp_path, cifar_tiny, capsys):
    res = cli("train", "--depth", "8", "--width", "8", "--epochs", "1", "--batch-size", "50", "--data-dir",
              cifar_tiny, "--no-download", "--device", "cpu", "--precision", "fp32", "--lr", "0.05", runs=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    run_id = first_run_id(res.stdout)
    cfg = json.loads((tmp_path / run_id / "config.json").read_text())
    assert cfg["data_dir"] == str(cifar_tiny.resolve()) and cfg["dataset"] == "cifar10"
    assert "200 training images" in res.stdout
    ev = cli("eval", run_id, "--json", runs=tmp_path)
    assert ev.returncode == 0, ev.stdout + ev.stderr
    report = json.loads(ev.stdout)
    assert report["images"] == 100
    by_file = {r["weights"]: r for r in report["results"]}
    assert set(by_file) == {"checkpoint.pt", "best.pt"}
    for r in by_file.values():   # the same weights on the same images: the trainer's own figure, to one image
        assert r["epoch"] == 1 and 0 <= r["test_err"] <= 100
        assert abs(r["test_err"] - r["recorded_test_err"]) <= 1.0
    assert main(["eval", run_id, "--device", "cpu", "--runs-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith(f"eval {run_id}: 100 test images of cifar10")
    assert [line.split()[0] for line in table[2:]] == ["checkpoint.pt", "best.pt"]
    assert main(["eval", run_id, "--device", "cuda:7", "--runs-dir", str(tmp_path)]) == 2
    assert "--device: cuda:7 asked for" in capsys.readouterr().err


def test_train_on_a_terminal_shows_progress_bars(tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "tui_app.py", "train", *TINY, "--epochs", "2", "--runs-dir",
                             str(tmp_path)], cwd=REPO, env={**env(), "TERM": "xterm-256color", "COLUMNS": "150"},
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    out = b"".join(chunks).decode(errors="replace")
    assert ESC in out and "━" in out                      # rich bars, drawn with control codes
    assert "batch" in out and "epoch 2/2" in out and "img/s" in out
    assert "finished " in out.splitlines()[-1]


# -- bad input: exit 2, one line naming the field or file, nothing created ---------------------------------------------
BAD_TRAIN = [
    (["--depth", "21"], "--depth: depth must be 6n+2"),
    (["--depth", "twenty"], "--depth: expected an integer"),
    (["--lr", "0"], "--lr: learning rate must be > 0"),
    (["--lr", "-0.1"], "--lr: learning rate must be > 0"),
    (["--schedule", "multistep", "--epochs", "10", "--milestones", "7,5"],
     "--milestones: milestones must be strictly increasing"),
    (["--schedule", "multistep", "--epochs", "10", "--milestones", "5,12"],
     "--milestones: milestones must lie before the end of training (epoch 10)"),
    (["--batch-size", "0"], "--batch-size: batch size must be >= 1"),
    (["--preset", "resnet"], "--preset: unknown preset 'resnet'; allowed: he2016, lab-report, quick"),
    (["--optimizer", "rmsprop"], "--optimizer: unknown optimizer 'rmsprop'; allowed: sgd, nesterov, adam, adamw"),
    (["--schedule", "linear"], "--schedule: unknown schedule 'linear'; allowed: multistep, cosine, constant"),
    (["--shortcut", "C"], "--shortcut: unknown shortcut 'C'; allowed: A, B, none"),
    (["--dataset", "mnist"], "--dataset: unknown dataset 'mnist'"),
    (["--val-split", "300"], "--val-split: val_split (300) must be smaller than max_train_images (256)"),
    (["--frobnicate"], "unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize("extra,message", BAD_TRAIN, ids=[" ".join(a) for a, _ in BAD_TRAIN])
def test_bad_train_input_exits_2_with_one_line_and_creates_nothing(tmp_path, capsys, extra, message):
    runs = tmp_path / "runs"
    argv = ["train", *TINY, *extra] if "--frobnicate" not in extra else ["train", *extra]
    code = main([*argv, "--runs-dir", str(runs)])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert out == ""
    assert not runs.exists()


@pytest.mark.parametrize("content,message", [
    (None, "--config: {path}: no such file"),
    ("depth = = 20\n", "--config: {path}: invalid TOML"),
    ("depht = 20\n", "error: depht: unknown setting in {path}"),
    ("depth = 22\n", "depth (from {path}): depth must be 6n+2"),
    ('preset = "fast"\n', "unknown preset 'fast'"),
])
def test_bad_toml_exits_2_and_names_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "run.toml"
    if content is not None:
        path.write_text(content)
    runs = tmp_path / "runs"
    assert main(["train", "--config", str(path), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message.format(path=path) in err, err
    assert not runs.exists()


def test_good_toml_with_flags_on_top(tmp_path, capsys):
    path = tmp_path / "run.toml"
    path.write_text('preset = "quick"\n[model]\ndepth = 8\nwidth = 4\n[data]\ndataset = "synthetic"\n'
                    'max_train_images = 64\nmax_test_images = 20\n')
    runs = tmp_path / "runs"
    code = main(["train", "--config", str(path), "--epochs", "1", "--batch-size", "32", "--warmup-iters", "0",
                 "--device", "cpu", "--name", "from-toml", "--runs-dir", str(runs)])
    assert code == 0, capsys.readouterr()
    cfg = json.loads((runs / "from-toml" / "config.json").read_text())
    got = (cfg["depth"], cfg["width"], cfg["schedule"], cfg["epochs"], cfg["weight_decay"])
    assert got == (8, 4, "cosine", 1, 5e-4)
    assert main(["train", "--config", str(path), "--name", "from-toml", "--runs-dir", str(runs)]) == 2
    assert "a run named 'from-toml' already exists" in capsys.readouterr().err


def test_data_folder_without_cifar_exits_2_and_stays_empty(tmp_path, capsys):
    data, runs = tmp_path / "data", tmp_path / "runs"
    data.mkdir()
    (data / "README").write_text("not CIFAR")
    assert main(["train", "--depth", "8", "--data-dir", str(data), "--no-download", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --data-dir: CIFAR-10 was not found in") and str(data) in err
    assert "Downloading is off" in err
    assert not runs.exists() and [p.name for p in data.iterdir()] == ["README"]


def test_corrupt_cifar_folder_exits_2(tmp_path, capsys):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("batches.meta", "data_batch_1", "test_batch"):
        (folder / name).write_bytes(b"garbage")
    assert main(["train", "--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batches.meta is corrupt" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv,code,message", [
    (["resume", "nope"], 2, "no run 'nope' in"),
    (["resume", "../etc"], 2, "invalid run id '../etc'"),
    (["stop", "nope"], 2, "no run 'nope' in"),
    (["show", "nope"], 2, "no run 'nope' in"),
    (["eval", "nope"], 2, "no run 'nope' in"),
    (["runs", "--format", "xml"], 2, "invalid choice: 'xml'"),
])
def test_unknown_runs_and_bad_arguments(tmp_path, capsys, argv, code, message):
    runs = tmp_path / "runs"
    assert main([*argv, "--runs-dir", str(runs)]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not runs.exists()


def test_help_explains_every_flag(capsys):
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in set(FIELD_HELP) - set(STUDY_FIELDS):
        assert "--" + name.replace("_", "-") in text
    assert "he2016" in text and "exit codes" in text
    # the defaults shown are those the form starts with (he2016): error_warmup once read off here, auto there
    assert "[default: auto]" in text.split("--error-warmup")[-1].split("--")[0]
    assert "[default: pixel]" in text.split("--normalize")[-1].split("--")[0]
    for command in ("resume", "stop", "runs", "show", "eval"):
        assert main([command, "--help"]) == 0
        assert "--runs-dir" in capsys.readouterr().out


def test_no_subcommand_opens_the_tui_or_says_why_not(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "screens.app", None)     # a UI that cannot be imported
    assert main(["--runs-dir", "x"]) == 1
    assert "the terminal UI cannot start" in capsys.readouterr().err
    opened = {}

    class FakeApp:
        def run(self):
            opened["ran"] = True

    fake = type(sys)("screens.app")
    fake.make_app = (lambda runs_dir=None, data_dir=None:
                     opened.update(runs_dir=runs_dir, data_dir=data_dir) or FakeApp())
    monkeypatch.setitem(sys.modules, "screens.app", fake)
    assert main(["--runs-dir", "some/runs"]) == 0
    assert opened == {"runs_dir": "some/runs", "data_dir": None, "ran": True}


# -- runs / show -------------------------------------------------------------------------------------------------------
@pytest.fixture
def store_with_damage(finished, tmp_path) -> Path:
    runs = tmp_path / "runs"
    shutil.copytree(finished[0], runs)
    bad = runs / "broken-config"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    (bad / "status.json").write_text('{"state": "finished"}')
    (runs / "no-status").mkdir()
    (runs / "no-status" / "config.json").write_text((runs / finished[1] / "config.json").read_text())
    return runs


def test_runs_in_every_format_with_damaged_folders(store_with_damage, finished, capsys):
    runs, run_id = store_with_damage, finished[1]
    res = cli("runs", runs=runs)          # table, to a pipe
    assert res.returncode == 0 and res.stderr == ""
    assert_plain(res.stdout)
    table = res.stdout
    assert run_id in table and "finished" in table and "2/2" in table
    assert "broken-config" in table and "no-status" in table and table.count("damaged") == 2

    assert main(["runs", "--format", "json", "--runs-dir", str(runs)]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {run_id, "broken-config", "no-status"}
    good = rows[run_id]
    assert (good["depth"], good["shortcut"], good["width"], good["optimizer"], good["schedule"]) == (8, "A", 4, "sgd",
                                                                                                    "constant")
    assert (good["epochs_done"], good["total_epochs"], good["status"]) == (2, 2, "finished")
    assert good["final_test_err"] is not None and good["best_test_err"] <= good["final_test_err"]
    assert good["paper_err"] is None and good["duration_s"] > 0
    assert rows["broken-config"]["status"] == "damaged" and "config.json" in rows["broken-config"]["error"]
    assert rows["no-status"]["status"] == "damaged" and "status.json is missing" in rows["no-status"]["error"]

    assert main(["runs", "--format", "csv", "--runs-dir", str(runs)]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["id"]: r["status"] for r in parsed} == {run_id: "finished", "broken-config": "damaged",
                                                      "no-status": "damaged"}

    assert main(["runs", "--format", "markdown", "--runs-dir", str(runs)]) == 0
    md = capsys.readouterr().out.splitlines()
    assert md[0].startswith("| id | depth |") and set(md[1]) <= set("|-")
    assert len(md) == 5 and all(line.startswith("|") and line.endswith("|") for line in md)


def test_runs_on_an_empty_or_missing_folder(tmp_path, capsys):
    assert main(["runs", "--runs-dir", str(tmp_path / "none")]) == 0
    assert "no runs" in capsys.readouterr().out
    assert main(["runs", "--format", "json", "--runs-dir", str(tmp_path / "none")]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert not (tmp_path / "none").exists()


def test_paper_error_column(tmp_path, capsys):
    store = RunStore(tmp_path)
    from core.spec.config import RunConfig

    store.create(RunConfig(depth=56, name="r56"))
    assert main(["runs", "--format", "json", "--runs-dir", str(tmp_path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["paper_err"] == 6.97 and row["status"] == "queued"


def test_show_prints_config_status_epochs_and_files(store_with_damage, finished, capsys):
    runs, run_id = store_with_damage, finished[1]
    assert main(["show", run_id, "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert f"run {run_id}" in out and "state    finished" in out and "depth=8" in out and "lr=" in out
    assert "train loss" in out and "test err" in out and "checkpoint.pt" in out and "epochs.jsonl" in out
    assert str((runs / run_id).resolve()) in out
    assert main(["show", run_id, "--json", "--runs-dir", str(runs)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["state"] == "finished" and len(data["epochs"]) == 2 and data["config"]["depth"] == 8
    assert main(["show", "broken-config", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "damaged" in out and "config.json is unreadable" in out


# -- resume / stop refusals --------------------------------------------------------------------------------------------
def test_resume_refuses_a_finished_run_unless_extended(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished[0], runs)
    run_id = finished[1]
    assert main(["resume", run_id, "--runs-dir", str(runs)]) == 1
    err = capsys.readouterr().err
    assert err == f"error: run {run_id} is finished (2 epochs); use --epochs M to train longer (M > 2)\n"
    assert main(["resume", run_id, "--epochs", "2", "--runs-dir", str(runs)]) == 2
    assert "has already done 2 epochs" in capsys.readouterr().err
    assert main(["resume", run_id, "--epochs", "3", "--runs-dir", str(runs)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"run {run_id}" and "resumed at epoch 3, step" in out
    assert out.splitlines()[-1].startswith(f"finished {run_id}: 3 epochs")
    assert_one_epoch_line_each(runs / run_id, 3)


def test_resume_and_stop_refuse_a_run_another_process_holds(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished[0], runs)
    run = RunStore(runs).get(finished[1])
    run.update_status(state="stopped")
    assert main(["stop", run.id, "--runs-dir", str(runs)]) == 1
    assert "is not running (state: stopped)" in capsys.readouterr().err
    run.acquire_lock()                          # as the process training it would
    try:
        assert main(["resume", run.id, "--runs-dir", str(runs)]) == 1
        assert "is being trained by another process" in capsys.readouterr().err
        run.update_status(state="running", pid=os.getpid())
        assert main(["resume", run.id, "--runs-dir", str(runs)]) == 1
        assert f"is running in another process (pid {os.getpid()})" in capsys.readouterr().err
    finally:
        run.release_lock()
    assert main(["stop", run.id, "--runs-dir", str(runs)]) == 1     # the lock is gone: crashed, nothing to stop
    assert "its process is gone" in capsys.readouterr().err


def test_resume_without_its_data_fails_with_the_reason_on_the_last_line(tmp_path, capsys):
    from core.spec.config import RunConfig

    run = RunStore(tmp_path).create(RunConfig(depth=8, data_dir=str(tmp_path / "gone"), download=False))
    assert main(["resume", run.id, "--runs-dir", str(tmp_path)]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"failed: CIFAR-10 was not found in {tmp_path / 'gone'}") and "--data-dir" in last
    info = run.info()      # recorded in the folder too, where the TUI shows it
    assert info.state == "failed" and info.error.startswith("CIFAR-10 was not found")


# -- stopping and crashing ---------------------------------------------------------------------------------------------
def test_stop_from_another_process_then_resume_to_the_end(tmp_path):
    proc = start("train", *TINY, "--epochs", "3", runs=tmp_path)
    wait_for(lambda: run_folders(tmp_path), "the run folder", proc=proc)
    run = only_run(tmp_path)
    wait_for(lambda: lines_of(run / "steps.jsonl"), "the first steps", proc=proc)
    with frozen(proc):        # the request lands while the trainer is mid-epoch, however fast this machine is
        t_frozen = time.monotonic()
        stopper = subprocess.Popen([sys.executable, "tui_app.py", "stop", run.name, "--runs-dir", str(tmp_path)],
                                   cwd=REPO, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (run / "request").exists(), "the stop request", proc=stopper)
        # frozen longer than the trainer's polling interval: it reads the request at its very next iteration
        wait_for(lambda: time.monotonic() - t_frozen > REQUEST_POLL_S, "one polling interval")
    out, err = stopper.communicate(timeout=120)
    assert stopper.returncode == 0, out + err
    assert out.startswith(f"stopped {run.name} at step ") and "resume with: " in out
    t_out, t_err = proc.communicate(timeout=120)
    assert proc.returncode == 143, t_out + t_err
    assert_plain(t_out, t_err)
    assert "stopped by a stop request" in t_out
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "stopped" and 0 < status["step"] < 24
    res = cli("resume", run.name, runs=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].startswith(f"finished {run.name}: 3 epochs")
    assert_one_epoch_line_each(run, 3)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_with_a_checkpoint_and_the_printed_command_resumes(tmp_path, sig, code):
    proc = start("train", *TINY, "--epochs", "3", runs=tmp_path)
    wait_for(lambda: run_folders(tmp_path), "the run folder", proc=proc)
    run = only_run(tmp_path)
    wait_for(lambda: lines_of(run / "steps.jsonl"), "the first steps", proc=proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, out + err
    assert_plain(out, err)
    last = out.splitlines()[-1]
    assert last == f"resume with: python tui_app.py resume {run.name} --runs-dir {tmp_path.resolve()}"
    assert json.loads((run / "status.json").read_text())["state"] == "stopped"
    assert (run / "checkpoint.pt").exists()
    argv = shlex.split(last.removeprefix("resume with: "))
    assert argv[0] == "python"
    res = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, env=env(), capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "resumed at epoch" in res.stdout and res.stdout.splitlines()[-1].startswith(f"finished {run.name}")
    assert_one_epoch_line_each(run, 3)


def test_sigkill_gives_a_crashed_run_that_resume_finishes(tmp_path, capsys):
    proc = start("train", *TINY, "--epochs", "4", runs=tmp_path)
    wait_for(lambda: run_folders(tmp_path), "the run folder", proc=proc)
    run = only_run(tmp_path)
    wait_for(lambda: lines_of(run / "epochs.jsonl"), "the first epoch", proc=proc)
    proc.kill()
    proc.communicate(timeout=30)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] in ("running", "paused")           # what the dead process last wrote
    assert main(["runs", "--format", "json", "--runs-dir", str(tmp_path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "crashed"
    res = cli("resume", run.name, runs=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].startswith(f"finished {run.name}: 4 epochs")
    assert_one_epoch_line_each(run, 4)


# -- background launch -------------------------------------------------------------------------------------------------
def test_spawn_background_trains_a_queued_run_detached(tmp_path):
    from core.serve.launch import spawn_background
    from core.spec.config import RunConfig

    cfg = RunConfig(dataset="synthetic", depth=8, width=4, max_train_images=128, max_test_images=50, batch_size=32,
                    epochs=1, iterations=0, milestones=(), schedule="constant", device="cpu", log_every=2)
    run = RunStore(tmp_path).create(cfg)
    proc = spawn_background(tmp_path, run.id)
    assert os.getsid(proc.pid) != os.getsid(0)                 # its own session: no SIGHUP when the TUI goes
    assert proc.wait(timeout=120) == 0
    log = (run.path / "process.log").read_text()
    assert log.startswith(f"run {run.id}\n") and f"finished {run.id}: 1 epoch," in log
    assert_plain(log)
    assert run.info().state == "finished"


def test_core_launch_imports_no_ui_library():
    code = "import sys, core.serve.launch; assert not {'rich', 'textual'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)

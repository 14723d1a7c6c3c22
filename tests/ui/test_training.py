"""The real training loop driven from the TUI: launch from the form, stop/pause/resume from the keys, quitting,
and a run trained by the CLI in another process followed live. Tiny synthetic runs on the CPU."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.store.runs import Run
from screens.app import make_app
from screens.confirm import ConfirmScreen
from screens.monitor import MonitorScreen
from screens.new_run import NewRunScreen
from screens.runs import RunsScreen
from screens.widgets.run_table import RunsTable
from tests.conftest import tiny_config

from .helpers import POLL, launched, press, state_of, type_into, wait_for

ROOT = Path(__file__).resolve().parents[2]


tiny = tiny_config  # depth 8, width 4, 256 synthetic images, 2 epochs on the CPU


async def tick(pilot, selector: str) -> None:
    """Toggle a checkbox of the form the way a user does: focus it (it scrolls into view) and press space."""
    pilot.app.screen.query_one(selector).focus()
    await pilot.pause()
    await pilot.press("space")
    await pilot.pause()


async def test_launch_from_form_trains_and_shows_result_in_table(tmp_path):
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, NewRunScreen)
        for name, text in (("depth", "8"), ("width", "4"), ("max_train_images", "256"), ("max_test_images", "128"),
                           ("epochs", "2"), ("batch_size", "32"), ("milestones", ""), ("lr", "0.05"),
                           ("warmup_iters", "0"), ("device", "cpu"), ("log_every", "4"), ("name", "tiny-ui")):
            await type_into(pilot, f"#f-{name}", text)
        assert form.query_one("#f-iterations").value == "0"       # typing epochs switched the length to epochs
        for select, value in (("dataset", "synthetic"), ("schedule", "constant"), ("precision", "fp32")):
            form.query_one(f"#f-{select}").value = value
        await pilot.pause()
        assert form.errors == {}, form.errors
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the monitor to open")
        assert app.screen.run_id == "tiny-ui"
        await wait_for(pilot, lambda: state_of(app, "tiny-ui") == "finished", 90, "the run to finish")
        await press(pilot, "escape")
        assert isinstance(app.screen, RunsScreen)
        table = app.screen.query_one(RunsTable)
        row = [getattr(c, "plain", str(c)) for c in table.get_row("tiny-ui")]
        info = app.watcher.infos["tiny-ui"]
        assert info.final_test_err is not None
        assert "finished" in row and "2/2" in row and f"{info.final_test_err:.2f}" in row
        cfg = Run(tmp_path / "runs" / "tiny-ui").read_config()
        assert (cfg.depth, cfg.width, cfg.dataset, cfg.epochs, cfg.iterations) == (8, 4, "synthetic", 2, 0)

        # the form is kept: it reopens with the last settings but no name (a name is used once: typed again, it is
        # refused under the field, as the CLI refuses it; it silently made tiny-ui-2), and launches again
        await press(pilot, "n")
        assert app.screen is form and form.query_one("#f-depth").value == "8"
        assert form.query_one("#f-name").value == "" and not form.errors
        await type_into(pilot, "#f-name", "tiny-ui")
        await wait_for(pilot, lambda: "already exists" in form.errors.get("name", ""), 5, "the name refused")
        await press(pilot, "ctrl+s")
        assert app.screen is form and not (tmp_path / "runs" / "tiny-ui-2").exists()
        await type_into(pilot, "#f-name", "")
        await wait_for(pilot, lambda: not form.errors, 5, "a generated name")
        await press(pilot, "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen), 5, "the monitor to open again")
        second = app.screen.run_id
        assert second.startswith("r8-A-w4-sgd-"), second
        await wait_for(pilot, lambda: state_of(app, second) == "finished", 90, "the second run to finish")


async def test_invalid_fields_block_launch_and_say_why(tmp_path):
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        await type_into(pilot, "#f-depth", "20,21")
        await type_into(pilot, "#f-lr", "-1")
        await type_into(pilot, "#f-batch_size", "lots")
        assert set(form.errors) == {"depth", "lr", "batch_size"}
        assert "6n+2" in str(form.query_one("#msg-depth").render())
        assert "must be > 0" in str(form.query_one("#msg-lr").render())
        assert "expected an integer" in str(form.query_one("#msg-batch_size").render())
        assert form.query_one("#launch").disabled
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
        # untick every shortcut: that is an error too; ticking two makes a grid
        await tick(pilot, "#f-shortcut-A")
        assert "shortcut" in form.errors
        await type_into(pilot, "#f-depth", "20,56")
        await type_into(pilot, "#f-lr", "0.1")
        await type_into(pilot, "#f-batch_size", "128")
        await tick(pilot, "#f-shortcut-A")
        await tick(pilot, "#f-shortcut-none")
        assert form.errors == {}
        assert [(c.depth, c.shortcut) for c in form.configs] == [(20, "A"), (20, "none"), (56, "A"), (56, "none")]
        assert "launches 4 run(s)" in str(form.query_one("#summary").render())


async def test_preset_fills_fields(tmp_path):
    app = make_app(runs_dir=tmp_path / "runs", data_dir="/data/cifar", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert form.query_one("#f-data_dir").value == "/data/cifar"
        form.query_one("#preset").focus()
        await pilot.press("right")                           # he2016 -> lab-report
        await pilot.pause()
        assert form.query_one("#preset").value == "lab-report"
        assert form.query_one("#f-batch_size").value == "64"
        assert form.query_one("#f-milestones").value == "51,75"
        assert form.query_one("#f-milestone_unit").value == "epoch"
        assert form.query_one("#f-iterations").value == "0"
        await type_into(pilot, "#f-lr", "0.05")               # an edit makes it custom
        assert form.query_one("#preset").value == "custom"


async def test_grid_runs_one_after_another_and_stop_pause_resume_keys(tmp_path):
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        ids = await launched(pilot, [tiny(name="g1", epochs=40), tiny(name="g2", epochs=2)])
        assert ids == ["g1", "g2"] and app.in_app == ["g1", "g2"]
        await wait_for(pilot, lambda: state_of(app, "g1") == "running", 60, "g1 to run")
        assert state_of(app, "g2") == "queued"               # one after another
        table = app.screen.query_one(RunsTable)
        table.move_cursor(row=table.get_row_index("g1"))
        await press(pilot, "p")
        await wait_for(pilot, lambda: state_of(app, "g1") == "paused", 30, "g1 to pause")
        step = app.watcher.infos["g1"].step
        await press(pilot, "s")                                # stop asks first
        assert isinstance(app.screen, ConfirmScreen)
        await press(pilot, "escape")                           # "keep training": nothing happens
        assert state_of(app, "g1") == "paused"
        await press(pilot, "s")
        await press(pilot, "enter")                            # the first answer, Stop, has the focus
        await wait_for(pilot, lambda: state_of(app, "g1") == "stopped", 30, "g1 to stop")
        assert (tmp_path / "runs" / "g1" / "checkpoint.pt").exists()
        assert app.watcher.infos["g1"].step == step               # paused: no iteration ran meanwhile
        # the grid goes on with g2
        await wait_for(pilot, lambda: state_of(app, "g2") == "finished", 90, "g2 to train after g1 stopped")
        # resume g1 with r; it continues from its checkpoint
        table.move_cursor(row=table.get_row_index("g1"))
        await press(pilot, "r")
        await wait_for(pilot, lambda: app.watcher.infos["g1"].step > step, 60, "g1 to continue")
        events = "\n".join(Run(tmp_path / "runs" / "g1").read_events())
        assert "resumed at epoch" in events and f"step {step}" in events
        await press(pilot, "s")
        await press(pilot, "enter")                            # the first answer, Stop, has the focus
        await wait_for(pilot, lambda: state_of(app, "g1") == "stopped", 30, "g1 to stop again")
        await wait_for(pilot, lambda: not app.in_app, 10, "the worker to end")


async def test_quit_with_active_run_asks_and_stops_with_checkpoint(tmp_path):
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await launched(pilot, [tiny(name="long", epochs=200)])
        await wait_for(pilot, lambda: state_of(app, "long") == "running", 60, "the run to train")
        await press(pilot, "q")
        assert isinstance(app.screen, ConfirmScreen) and app.screen.id == "confirm-quit"
        await press(pilot, "tab", "tab", "enter")              # Keep waiting: the app stays, training goes on
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmScreen), 5, "the dialog to close")
        assert app.is_running and state_of(app, "long") == "running"
        await press(pilot, "q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), 5, "the quit dialog")
        await pilot.click("#answer-stop")                      # the mouse works too
        await wait_for(pilot, lambda: not app.is_running, 60, "the app to exit after stopping")
    assert "Stopped with a checkpoint: long" in str(app.return_value) and "resume RUN" in str(app.return_value)
    status = Run(tmp_path / "runs" / "long").read_status()
    assert status["state"] == "stopped"
    assert (tmp_path / "runs" / "long" / "checkpoint.pt").exists()


async def test_cli_run_in_another_process_appears_and_updates_live(tmp_path):
    runs = tmp_path / "runs"
    app = make_app(runs_dir=runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        cmd = [sys.executable, str(ROOT / "tui_app.py"), "train", "--name", "from-cli", "--depth", "8", "--width",
               "4", "--dataset", "synthetic", "--max-train-images", "256", "--max-test-images", "128",
               "--batch-size", "32", "--epochs", "3", "--schedule", "constant", "--lr", "0.05", "--device", "cpu",
               "--precision", "fp32", "--log-every", "4", "--runs-dir", str(runs)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            await wait_for(pilot, lambda: "from-cli" in app.watcher.infos, 60, "the CLI run to appear")
            await wait_for(pilot, lambda: state_of(app, "from-cli") in ("running", "finished"), 60,
                           "the CLI run to be seen training")
            table = app.screen.query_one(RunsTable)
            await wait_for(pilot, lambda: "from-cli" in [r.key.value for r in table.ordered_rows], 5, "its row")
            table.move_cursor(row=table.get_row_index("from-cli"))
            await press(pilot, "enter")
            seen_epochs = set()

            def progressed():
                info = app.watcher.infos["from-cli"]
                seen_epochs.add(info.epochs_done)
                return info.state == "finished"

            await wait_for(pilot, progressed, 90, "the CLI run to finish")
            assert proc.wait(30) == 0, proc.stdout.read().decode()
            info = app.watcher.infos["from-cli"]
            assert info.epochs_done == 3 and info.final_test_err is not None
            if isinstance(app.screen, MonitorScreen):           # followed its folder while it trained
                assert app.screen.query_one("#epochs").row_count == 3
            else:
                await press(pilot, "escape")
            assert len(seen_epochs) >= 2                         # it was seen between start and end
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

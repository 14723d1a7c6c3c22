"""The app in a real terminal (tmux): keys in with send-keys, screen out with capture-pane. Skips without tmux."""
from __future__ import annotations

import re
import shutil
import statistics

import pytest

from .tmux_smoke import no_color_check, run_smoke

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_train_stop_resume_quit_in_tmux():
    result = run_smoke(verbose=True, light=True)
    screens = result["screens"]
    assert "live-cpu" in screens["runs_80x24_filtered"] and "queued" in screens["runs_80x24_filtered"]
    assert "running" in screens["runs_80x24_training"]
    assert "Monitor live-cpu" in screens["monitor_80x24"] and re.search(r"epoch \d+/200", screens["monitor_80x24"])
    assert "Stop live-cpu?" in screens["stop_dialog_80x24"]
    assert result["checkpoint_after_stop"] and result["resumed_logged"]
    assert "Quit ResLab?" in screens["quit_dialog_80x24"]
    assert result["exited"] and result["state_after_quit"] == "stopped"
    assert result["step_after_quit"] >= result["stopped_at_step"]
    # every key got its answer (wait_for would have failed otherwise); the numbers go to the test log
    print("screen switches while training:", round(statistics.median(result["latency_training_s"]) * 1000), "ms")


def test_no_color_leaves_only_greys():
    colours = no_color_check()
    assert colours, "expected some colour codes (greys) in the captured screen"
    assert all(r == g == b for r, g, b in colours), sorted(colours)[:10]

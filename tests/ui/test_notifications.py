"""A run that ends while the user looks elsewhere (issue 34 item 10): a notification on whatever screen is shown, a
desktop notification through the terminal where it is known to show one, the user's on_end command for the runs the
app trains itself."""
from __future__ import annotations

import screens.notify as N
from core.store.settings import SETTINGS_FILE, config_dir, write_json
from screens.app import make_app
from tests.conftest import tiny_config

from .fixtures import add_running
from .helpers import POLL, launched, press, state_of, wait_for


def _messages(app) -> list[str]:
    return [n.message for n in app._notifications]


async def test_a_run_ending_in_another_process_is_told_on_any_screen(fixture_runs, monkeypatch):
    """The run trains elsewhere (its lock held, as a trainer would); the user is on another run's detail; the run's
    status.json then says failed: a notification, and the terminal's (here a WezTerm, which shows OSC 9)."""
    written: list[str] = []
    monkeypatch.setattr(N, "write_terminal", lambda app, seq: written.append(seq))
    monkeypatch.setenv("TERM_PROGRAM", "WezTerm")
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("STY", raising=False)
    monkeypatch.delenv(N.OVERRIDE_ENV, raising=False)
    live = add_running(fixture_runs)
    app = make_app(runs_dir=fixture_runs, poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: state_of(app, "r44-live") == "running", what="the run training elsewhere")
        app.open_run("r20-A", view="detail")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DetailScreen", what="the detail")
        live.update_status(state="failed", error="CUDA error: an illegal memory access\x1b[2J")
        live.release_lock()
        await wait_for(pilot, lambda: any("r44-live failed" in m for m in _messages(app)), 20, "the notification")
        toast = next(n for n in app._notifications if "r44-live failed" in n.message)
        assert toast.severity == "error" and "illegal memory access" in toast.message
        assert type(app.screen).__name__ == "DetailScreen"          # it told; it did not move the user
        assert len(written) == 1 and written[0].startswith("\x1b]9;ResLab: r44-live failed")
        assert "\x1b[2J" not in written[0] and written[0].count("\x1b") == 1      # the error cannot escape it
        # an ended run seen again (another poll, a restart) is not told twice
        await press(pilot, "escape")
        await pilot.pause(3 * POLL)
        assert len([m for m in _messages(app) if "r44-live" in m]) == 1


async def test_a_run_trained_in_the_app_runs_the_users_on_end_setting(tmp_path):
    out = tmp_path / "ended.txt"
    write_json(config_dir() / SETTINGS_FILE,
               {"on_end": f'echo "$RESLAB_RUN_ID $RESLAB_RUN_STATE" > {out}.tmp && mv {out}.tmp {out}'})
    app = make_app(runs_dir=tmp_path / "runs", poll_interval=POLL)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await launched(pilot, [tiny_config(name="hooked", epochs=1, channels_last="off")])
        await wait_for(pilot, out.exists, 90, "the on_end command's file")
        assert out.read_text().split() == ["hooked", "finished"]
        assert len([m for m in _messages(app) if "hooked finished" in m]) == 1     # one notification, not two


def test_the_terminal_sequence_only_where_it_is_known_to_work():
    body = "r1 failed: boom;\x07\x1b]0;pwned"
    assert N.terminal_sequence("ResLab", body, {"TERM": "xterm-256color"}) == ""             # unknown: nothing
    assert N.terminal_sequence("ResLab", body, {"TERM_PROGRAM": "WezTerm", "TMUX": "/tmp/x"}) == ""   # tmux
    osc9 = N.terminal_sequence("ResLab", body, {"TERM": "xterm-kitty"})
    assert osc9.startswith("\x1b]9;ResLab: r1 failed") and osc9.endswith("\x07") and osc9.count("\x1b") == 1
    assert osc9.count("\x07") == 1
    osc777 = N.terminal_sequence("Res;Lab", body, {"TERM": "foot"})
    assert osc777.startswith("\x1b]777;notify;Res,Lab;r1 failed: boom,") and osc777.count(";") == 3
    forced = N.terminal_sequence("ResLab", "done", {N.OVERRIDE_ENV: "osc9", "TMUX": "/tmp/x"})
    assert forced == "\x1bPtmux;\x1b\x1b]9;ResLab: done\x07\x1b\\"
    assert N.terminal_sequence("ResLab", "done", {N.OVERRIDE_ENV: "off", "TERM_PROGRAM": "iTerm.app"}) == ""

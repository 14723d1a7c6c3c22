"""`serve` in a real browser: headless Chromium from the system's packages, driven by Playwright. The page shows the
runs table of a prepared folder; `n` opens the form and a tiny run launched from it appears live; a second browser
session sees the same run, and its report (`e`) arrives as a download; a wrong or missing token is refused;
closing the tabs leaves no app process behind.

The terminal is drawn on a canvas (xterm.js), so the tests read what the app sent: a script in the page keeps the
text of every websocket frame (escape sequences removed)."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from core.store.runs import RunStore
from core.train.trainer import train_run
from screens.new_run_model import as_text
from tests.conftest import tiny_config

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium; "
                                                         ".ci/run installs it where it can)"),
              pytest.mark.timeout(400)]

RECORD = """
window.__frames = [];
const Native = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = new Native(url, protocols);
  const decoder = new TextDecoder();
  ws.addEventListener('message', (e) => {
    if (typeof e.data !== 'string') window.__frames.push(decoder.decode(e.data));
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
window.__text = () => window.__frames.join('').replace(/\\x1b\\[[0-9;?]*[ -\\/]*[@-~]/g, '');
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_processes(root: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"tui_app.py --runs-dir {root}"], capture_output=True, text=True).stdout
    return out.split()


def wait_until(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def served(tmp_path):
    """A runs folder with one finished tiny run, served on a free port with a token, two tabs at most; (url, root,
    run id)."""
    root = tmp_path / "runs"
    run, _ = train_run(RunStore(root), tiny_config(name="browser-run", epochs=1))
    config = Path(os.environ["RESLAB_CONFIG_DIR"])         # the form opens on a tiny run's settings
    config.mkdir(parents=True, exist_ok=True)
    fields = {k: as_text(v) for k, v in tiny_config(epochs=2).to_dict().items()} | {"shortcut": ["A"]}
    (config / "form.json").write_text(json.dumps({"preset": "custom", "where": "app", "fields": fields}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "tui_app.py", "serve", "--port", str(port), "--token", "--max-sessions",
                             "2", "--runs-dir", str(root)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = wait_until(lambda: proc.stdout.readline(), "serve's first line", 60)
    url = re.search(r"http://\S+", first + proc.stdout.readline()).group(0)
    try:
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, "serve listening")
        yield url, root, run.id
    finally:
        proc.terminate()
        proc.wait(20)


def open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1300, "height": 800}).new_page()
    page.add_init_script(RECORD)
    response = page.goto(url)
    return page, response


def shows(page, text: str, timeout: float = 90.0) -> None:
    page.wait_for_function(f"() => window.__text().includes({json.dumps(text)})", timeout=timeout * 1000)


def test_the_browser_console_lists_launches_and_shares_runs_and_leaves_no_process(served, tmp_path):
    url, root, run_id = served
    bare = url.split("?")[0]
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, response = open_page(browser, url)
            assert response.status == 200
            shows(page, run_id)                                   # the runs table of the prepared folder
            page.locator(".textual-terminal").click()
            page.keyboard.press("n")
            shows(page, "New run")
            page.keyboard.press("Control+s")                     # the remembered tiny settings, trained in the app
            new = wait_until(lambda: [i.id for i in RunStore(root).list() if i.id != run_id], "the launched run")[0]
            shows(page, new)
            wait_until(lambda: RunStore(root).get(new).info().state == "finished", "the run to finish", 120)

            other, response = open_page(browser, url)              # a second session, the same folder
            assert response.status == 200
            shows(other, new)
            with pytest.raises(urllib.error.HTTPError) as full:      # --max-sessions 2: a third tab waits
                urllib.request.urlopen(url, timeout=30)
            assert full.value.code == 503 and "close one and reload" in full.value.read().decode()
            shot = Path(os.environ.get("RESLAB_SCREENSHOT_DIR", tmp_path)) / "serve.png"
            other.wait_for_timeout(500)                           # the last frame drawn on the canvas
            other.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            other.locator(".textual-terminal").click()
            with other.expect_download(timeout=180_000) as download:   # e: the report, downloaded as a zip
                other.keyboard.press("e")
            assert download.value.suggested_filename.endswith(".zip")
            with zipfile.ZipFile(download.value.path()) as archive:
                assert any(name.endswith("/report.md") for name in archive.namelist())

            for wrong in (bare, bare + "?token=nope"):             # no token, a wrong one: refused
                refused, response = open_page(browser, wrong)
                assert response.status == 403 and "needs the token" in refused.content()
                refused.context.close()
            assert len(app_processes(root)) == 2                  # one app per open tab
            page.context.close()
            other.context.close()
            wait_until(lambda: not app_processes(root), "the tabs' app processes to end", 60)
        finally:
            browser.close()

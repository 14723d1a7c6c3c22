"""`serve`'s refusals (cli/serve.py): a host other machines reach needs --allow-remote, bad numbers name their flag;
exit 2 and nothing created, nothing listening. The browser tests are tests/web/test_serve.py."""
from __future__ import annotations

import socket

import pytest

from cli.main import main


@pytest.mark.parametrize("args, message", [
    (["--host", "0.0.0.0"], "--host 0.0.0.0: other machines could reach it"),
    (["--host", "192.168.1.20"], "or add --allow-remote: the page then needs the token printed at start"),
    (["--port", "70000"], "--port: a port from 1 to 65535, got 70000"),
    (["--max-sessions", "0"], "--max-sessions: 1 or more, got 0"),
])
def test_unsafe_or_bad_serve_flags_are_refused_before_anything_listens(tmp_path, capsys, args, message):
    runs = tmp_path / "runs"
    assert main(["serve", *args, "--runs-dir", str(runs)]) == 2
    assert message in capsys.readouterr().err and not runs.exists()


def test_a_port_in_use_is_said_plainly(tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--runs-dir", str(tmp_path / "runs")]) == 2
    assert f"--port {port}: cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_the_server_waits_for_a_busy_apps_download_chunks():
    """textual-serve waits 4 s for each chunk of a download; under load (the app importing torch) the browser's
    download of a report was cancelled in the browser test. serve waits a minute."""
    from textual_serve import download_manager

    from cli.serve import DOWNLOAD_CHUNK_S, make_server

    make_server("true", "127.0.0.1", 8000, None, 1)
    assert download_manager.DOWNLOAD_TIMEOUT >= DOWNLOAD_CHUNK_S == 60

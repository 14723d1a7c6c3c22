"""``serve``: the same console in a browser, through textual-serve.

    serve [--port 8000] [--host 127.0.0.1] [--max-sessions 4] [--token] [--allow-remote]

Every browser tab that opens the page gets its own ResLab app (``tui_app.py --runs-dir RUNS``, a process of its own
that textual-serve starts and draws through xterm.js over a websocket) on the same runs folder, as two terminals
would; closing the tab ends that process. The normal way in is an ssh tunnel (``ssh -L 8000:localhost:8000
server``, then http://localhost:8000 on the laptop), so ``serve`` binds to loopback. A non-loopback ``--host`` is
refused unless ``--allow-remote`` is given, and then every request needs the secret token printed at start (in the
URL; the page keeps it in a cookie for its websocket and downloads): whoever merely reaches the port cannot stop,
delete or launch runs. ``--token`` asks for the token on loopback too (other users of a shared server reach its
loopback). Bad or missing tokens get a plain 403; sessions beyond ``--max-sessions`` a 503.
"""
from __future__ import annotations

import argparse
import hmac
import ipaddress
import secrets
import shlex
import socket
import sys
from pathlib import Path

from cli.common import EXIT_OK, CliError
from cli.folder import store_of

DOWNLOAD_CHUNK_S = 60        # the longest the server waits for the app to send one chunk of a download
COOKIE = "reslab_token"      # the page's token, for its websocket and the files the app delivers


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="N", type=int, default=8000, help="port to listen on [default: 8000]")
    parser.add_argument("--host", metavar="ADDR", default="127.0.0.1",
                        help="address to listen on [default: 127.0.0.1, this machine only: reach it through "
                             "ssh -L 8000:localhost:8000 SERVER]")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a --host other machines reach (0.0.0.0, a LAN address); the page then needs the "
                             "token printed at start")
    parser.add_argument("--token", action="store_true",
                        help="ask for a secret token on loopback too (other users of a shared server reach it)")
    parser.add_argument("--max-sessions", metavar="N", type=int, default=4,
                        help="browser tabs served at once, each an app process [default: 4]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(args: argparse.Namespace) -> None:
    """Bad input and unsafe asks, before anything listens. Raises CliError (exit 2)."""
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port: a port from 1 to 65535, got {args.port}")
    if args.max_sessions < 1:
        raise CliError(f"--max-sessions: 1 or more, got {args.max_sessions}")
    if not is_loopback(args.host) and not args.allow_remote:
        raise CliError(f"--host {args.host}: other machines could reach it, and whoever reaches the page can stop, "
                       f"delete and launch runs. Use an ssh tunnel to the default 127.0.0.1 (ssh -L {args.port}:"
                       f"localhost:{args.port} SERVER, then http://localhost:{args.port}), or add --allow-remote: "
                       f"the page then needs the token printed at start")
    try:
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as exc:
        raise CliError(f"--port {args.port}: cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
                       f"is another serve running? pick another --port") from None


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from textual_serve.server import Server  # noqa: F401 - checked here, used in make_server
    except ImportError:
        raise CliError('serve needs textual-serve: pip install textual-serve (or pip install -e ".")', 1) from None
    check(args)
    store = store_of(args)
    token = secrets.token_urlsafe(24) if (args.token or args.allow_remote) else None
    data = f" --data-dir {shlex.quote(str(Path(args.data_dir).resolve()))}" if args.data_dir else ""
    entry = Path(__file__).resolve().parents[1] / "tui_app.py"
    # exec: the shell textual-serve starts becomes the app, so ending the app ends the tab's only process
    command = (f"exec {shlex.quote(sys.executable)} {shlex.quote(str(entry))} "
               f"--runs-dir {shlex.quote(str(store.root.resolve()))}{data}")
    server = make_server(command, args.host, args.port, token, args.max_sessions)
    shown = "localhost" if is_loopback(args.host) else (socket.gethostname() if args.host in ("0.0.0.0", "::")
                                                        else args.host)
    url = f"http://{shown}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"serving ResLab on {args.host}:{args.port} for {store.root.resolve()} (at most {args.max_sessions} "
          f"tabs at once; each tab is an app process, ended when the tab closes)")
    if is_loopback(args.host):
        print(f"from a laptop: ssh -L {args.port}:localhost:{args.port} {socket.gethostname()}, then open {url}")
    else:
        print(f"open {url}")
    if token:
        print("the token in that URL is the key to this folder's runs: share it only with who may stop, delete "
              "and launch them")
    print("Ctrl-C stops serving (runs in the queue go on training)", flush=True)
    server.serve()
    return EXIT_OK


def make_server(command: str, host: str, port: int, token: str | None, max_sessions: int):
    """A textual-serve Server with the token check, the session limit and URLs built from the browser's own
    address (the page is reached through a tunnel or a host name the server does not know)."""
    from aiohttp import web
    from textual_serve import download_manager
    from textual_serve.server import Server

    # textual-serve gives the app 4 s to send each chunk of a download; an app busy importing torch (its preload
    # after the first draw holds the GIL for seconds on a loaded server) missed that, and the browser's download of a
    # report was cancelled: wait as long as a busy machine needs
    download_manager.DOWNLOAD_TIMEOUT = max(download_manager.DOWNLOAD_TIMEOUT, DOWNLOAD_CHUNK_S)

    class Served(Server):
        def __init__(self) -> None:
            super().__init__(command, host=host, port=port, title="ResLab")
            self.sessions = 0

        def initialize_logging(self) -> None:     # textual-serve's own: a logo and Rich's log handler
            import logging

            logging.basicConfig(level=logging.WARNING, format="serve: %(message)s")

        async def on_startup(self, app) -> None:
            return None

        async def _make_app(self) -> web.Application:
            app = await super()._make_app()
            app.middlewares.append(self.guard)
            return app

        @web.middleware
        async def guard(self, request: web.Request, handler):
            guarded = request.path in ("/", "/ws") or request.path.startswith("/download/")
            if token is not None and guarded:
                given = request.query.get("token") or request.cookies.get(COOKIE, "")
                if not hmac.compare_digest(given.encode(), token.encode()):
                    return web.Response(status=403, text="403: this ResLab page needs the token printed by "
                                                         "`serve` at start (the URL it printed)\n")
            if request.path in ("/", "/ws") and self.sessions >= max_sessions:
                return web.Response(status=503, text=f"503: {self.sessions} ResLab tabs are open, the most this "
                                                     f"serve allows (--max-sessions); close one and reload\n")
            response = await handler(request)
            if token is not None and request.path == "/" and request.query.get("token"):
                response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
            return response

        async def handle_index(self, request: web.Request):
            self.public_url = f"{request.scheme}://{request.host}"    # the browser's address, e.g. a tunnel's
            return await super().handle_index(request)

        async def handle_websocket(self, request: web.Request):
            self.sessions += 1
            try:
                return await super().handle_websocket(request)
            finally:
                self.sessions -= 1

    return Served()

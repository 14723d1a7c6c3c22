"""Helpers for the Pilot tests: wait for a condition with a deadline, type into fields, read the screen."""
from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable

POLL = 0.2  # the app's store polling interval in tests (1 s in real use)


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    """Let the app run until condition() is truthy; fail with `what` after `timeout` seconds.

    Sleeps on the event loop between checks (the app keeps running). Never pilot.pause() without a delay while
    training runs: it waits for the process to go idle, which a training thread prevents (up to 1 s each)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            await pilot.pause(0.01)
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def state_of(app, run_id: str) -> str | None:
    info = app.watcher.infos.get(run_id)
    return info.state if info else None


async def type_into(pilot, selector: str, text: str) -> None:
    """Focus an Input of the current screen, clear it with keys and type text."""
    widget = pilot.app.screen.query_one(selector)
    widget.focus()
    await pilot.pause(0.02)
    await press(pilot, "ctrl+a", "ctrl+k", *text)


_SVG_TEXT = re.compile(r'<text [^>]*?x="([0-9.]+)"[^>]*?textLength="([0-9.]+)"'
                       r'[^>]*?clip-path="url\(#[^)]*-line-(\d+)\)">(.*?)</text>', re.S)


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines (each the screen's width), read from Textual's public
    screenshot (``App.export_screenshot``, an SVG): each run of text sits on its line (its clip path ``-line-N``) at
    its column (x over the width of a cell)."""
    width, height = app.size
    rows = [[" "] * width for _ in range(height)]
    for x, length, line, escaped in _SVG_TEXT.findall(app.export_screenshot(simplify=True)):
        text = html.unescape(escaped).replace("\xa0", " ")
        column = round(float(x) / (float(length) / len(text)))
        row = rows[int(line)]
        row[column:column + len(text)] = text
        del row[width:]
    return "\n".join("".join(row) for row in rows)


_KEY_CHARS = {"enter": "\r", "escape": "\x1b", "space": " ", "tab": "\t"}


async def press(pilot, *keys: str) -> None:
    """Like pilot.press, without its waits for an idle process: those last up to a second per key while a
    training thread keeps the CPU busy. Keys go through the app's normal key handling (bindings, focus)."""
    from textual import events

    app = pilot.app
    for key in keys:
        name = {",": "comma", "/": "slash", "-": "minus", ".": "full_stop"}.get(key, key)
        char = key if len(key) == 1 else _KEY_CHARS.get(key)
        app.post_message(events.Key(name, char))
        await asyncio.sleep(0.01)
    await pilot.pause(0.05)


async def launched(pilot, configs, where: str = "app", timeout: float = 30.0) -> list[str]:
    """``App.launch`` (its folders made in the actions thread): the run ids once created and listed ([] refused)."""
    box: list[list[str]] = []
    pilot.app.launch(configs, where=where, then=box.append)
    await wait_for(pilot, lambda: box, timeout, "the launch's run folders")
    return box[0]

"""The keys of a screen, in one place for the `?` help screen and the command palette.

A screen's keys are its own bindings, the App's, and those its widgets show in the footer (a table's enter);
keys that widgets keep to themselves (cursor movement) are left out. A screen may add lines for what no binding
says (mouse clicks, typing) in ``KEYS_HELP``: (keys, what they do) pairs.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import ActiveBinding
from textual.screen import Screen


def screen_bindings(screen: Screen) -> list[ActiveBinding]:
    """The screen's described bindings, one per action, in the order they are defined (the screen's first)."""
    app = screen.app
    seen: set[str] = set()
    out: list[ActiveBinding] = []
    for active in screen.active_bindings.values():
        binding = active.binding
        own = active.node is screen or active.node is app or binding.show
        action = binding.action.removeprefix("app.")     # "app.help" on a screen is the App's "help"
        if not binding.description or not own or action in seen:
            continue
        seen.add(action)
        out.append(active)
    screen_first = [a for a in out if a.node is not app] + [a for a in out if a.node is app]
    return screen_first


def key_rows(screen: Screen) -> list[tuple[str, str, bool]]:
    """(keys, what they do, enabled now) for every key of ``screen``, then its ``KEYS_HELP`` lines."""
    app = screen.app
    rows = []
    for active in screen_bindings(screen):
        display = " ".join(dict.fromkeys(_all_keys(app, screen, active)))
        rows.append((display, active.binding.tooltip or active.binding.description, active.enabled))
    rows += [(k, text, True) for k, text in getattr(screen, "KEYS_HELP", ())]
    return rows


def _all_keys(app: App, screen: Screen, active: ActiveBinding) -> list[str]:
    """Every key bound to the same action on the same node (a binding such as "escape,q" is listed once)."""
    out = []
    for other in screen.active_bindings.values():
        if other.node is active.node and other.binding.action == active.binding.action:
            out.append(app.get_key_display(other.binding))
    return out or [app.get_key_display(active.binding)]


def palette_commands(app: App, screen: Screen) -> Iterable[SystemCommand]:
    """Every enabled key of the screen as a command of the palette (ctrl+p)."""
    for active in screen_bindings(screen):
        if active.enabled:
            binding = active.binding
            yield SystemCommand(binding.description, f"key: {app.get_key_display(binding)}",
                                partial(app.call_later, app.run_action, binding.action, active.node))

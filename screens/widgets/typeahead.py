"""Keys typed while a screen is still being built: held in order, then replayed into its fields.

A fast typist presses ``n`` and goes on typing ``5 6 tab tab tab tab 8`` before the form has drawn. Textual sends
keys that arrive while nothing has the focus to the screen, which ignores them; keys that arrive a moment later go
to whatever field has the focus by then: some keys are lost and the rest land in the wrong field.

A screen that wants its keys held sets ``typed_ahead = []`` until it is ready; the App (``hold``) appends every key
there instead of dispatching it. When ready, the screen calls ``replay``: the keys are applied in order as the
focused fields would take them (a field that gets the focus has its text selected, so the first character replaces
it; tab, shift+tab, up and down move between fields; escape and ctrl+s go back to the screen), then normal key
handling resumes. Held and replayed in the App's own message loop, so no key can overtake another.
"""
from __future__ import annotations

from collections.abc import Callable

from textual import events
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Checkbox, Input

from .choice import Choice
from .tickbox import TickBox

NEXT = ("tab", "down")
PREVIOUS = ("shift+tab", "up")


def hold(screen: Screen, event: events.Event) -> bool:
    """Keep ``event`` for ``screen`` when it is a key and the screen is not ready; True when kept."""
    pending = getattr(screen, "typed_ahead", None)
    if pending is None or not isinstance(event, events.Key):
        return False
    pending.append(event)
    return True


def replay(screen: Screen, keys: list[events.Key], first: Widget,
           actions: dict[str, Callable[[], object]]) -> None:
    """Give ``first`` the focus and apply ``keys`` as typed there. ``actions`` maps keys such as "escape" and
    "ctrl+s" to what the screen does for them (run after the edits before them; nothing runs after escape)."""
    chain = [w for w in screen.focus_chain]
    target, fresh = first, True
    screen.set_focus(first)
    later: list[Callable[[], object]] = []
    for key in keys:
        name, char = key.key, key.character
        if name in actions:
            if name == "escape":
                actions[name]()
                return
            later.append(actions[name])
        elif name in NEXT or name in PREVIOUS:
            if target in chain:
                step = 1 if name in NEXT else -1
                target = chain[(chain.index(target) + step) % len(chain)]
                fresh = True
        elif isinstance(target, Input):
            if name == "backspace":
                target.value = "" if fresh else target.value[:-1]
                fresh = False
            elif key.is_printable and char:
                target.value = char if fresh else target.value + char
                fresh = False
        elif isinstance(target, Choice) and char and char.isalnum():
            target.jump(char)
        elif isinstance(target, Checkbox) and name in ("space", "enter"):
            target.toggle()
        elif isinstance(target, TickBox) and name in ("left", "right"):
            target = target.side(-1 if name == "left" else 1)
        elif isinstance(target, TickBox) and char and char.isalnum():
            target = target.jump(char) or target
    screen.set_focus(target)
    if isinstance(target, Input) and not fresh:
        # the focus selects the whole text (after this); put the cursor at its end instead, so typing goes on
        target.call_later(lambda: setattr(target, "cursor_position", len(target.value)))
    for action in later:
        action()

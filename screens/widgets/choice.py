"""A one-line choice among a few options, drawn as ``‹ value ›``: the form's light replacement for Select.

A Select is a dozen widgets with its drop-down overlay; the new-run form has ten choices and must open at once,
so each is one widget here. Keys: left/right (or space, enter) step through the options, a letter jumps to the
next option that starts with it; a click steps forward. ``value`` and ``Changed`` mirror Select's.
"""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget


class Choice(Widget, can_focus=True):
    DEFAULT_CSS = """
    Choice { height: 1; width: auto; min-width: 8; background: $boost; }
    Choice:focus { text-style: reverse; }
    """
    BINDINGS = [
        Binding("left", "step(-1)", "Previous", show=False),
        Binding("right,space,enter", "step(1)", "Next", show=False),
    ]

    value: reactive[str] = reactive("", init=False, layout=True)   # width: auto follows the label

    class Changed(Message):
        def __init__(self, choice: Choice, value: str):
            super().__init__()
            self.choice, self.value = choice, value

        @property
        def control(self) -> Choice:
            return self.choice

    def __init__(self, options: Sequence[tuple[str, str]], value: str, *, id: str | None = None,
                 classes: str | None = None):
        """``options``: (label, value) pairs."""
        super().__init__(id=id, classes=classes)
        self.options = list(options)
        self.set_reactive(Choice.value, value)

    @property
    def values(self) -> list[str]:
        return [v for _, v in self.options]

    def render(self) -> Text:
        label = next((lab for lab, v in self.options if v == self.value), str(self.value))
        return Text(f"‹ {label} ›", no_wrap=True, overflow="ellipsis")

    def watch_value(self, value: str) -> None:
        self.post_message(self.Changed(self, value))

    def action_step(self, by: int) -> None:
        values = self.values
        i = values.index(self.value) if self.value in values else -1
        self.value = values[(i + by) % len(values)]

    def jump(self, letter: str) -> bool:
        """Select the next option whose label starts with ``letter``; False when none does."""
        labels = [lab.lower() for lab, _ in self.options]
        values = self.values
        start = values.index(self.value) + 1 if self.value in values else 0
        for k in range(len(labels)):
            i = (start + k) % len(labels)
            if labels[i].startswith(letter.lower()):
                self.value = values[i]
                return True
        return False

    def on_key(self, event) -> None:
        if event.character and len(event.character) == 1 and event.character.isalnum() and self.jump(event.character):
            event.stop()
            event.prevent_default()

    def on_click(self) -> None:
        self.action_step(1)

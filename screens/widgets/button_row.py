"""Dialogs whose answers are a row of buttons: left and right move along the row (Textual's buttons take only tab).
A focused field that uses the arrows itself (an Input) keeps them: its bindings come first."""
from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Button

ROW_BINDINGS = [Binding("left", "step(-1)", "Previous answer", show=False),
                Binding("right", "step(1)", "Next answer", show=False)]


class ButtonRowMixin:
    """For a ModalScreen: add ROW_BINDINGS to its BINDINGS."""

    def action_step(self, delta: int) -> None:
        buttons = list(self.query(Button))              # type: ignore[attr-defined]
        focused = self.focused                          # type: ignore[attr-defined]
        current = buttons.index(focused) if focused in buttons else 0
        buttons[max(0, min(len(buttons) - 1, current + delta))].focus()

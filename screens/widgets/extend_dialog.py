"""A dialog (a modal screen the detail screen opens) to extend a finished run: how many more epochs, and where to
train them (this app or the queue).

Dismisses with (total epochs, where) or None. The detail screen does the rest: core.store.runs.extend_run under the
run's
lock (what `tui_app.py resume RUN --epochs N` does), then a resume from the checkpoint.
"""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from .button_row import ROW_BINDINGS, ButtonRowMixin
from .ordered_input import OrderedInput


class ExtendScreen(ButtonRowMixin, ModalScreen[tuple[int, str] | None]):
    DEFAULT_CSS = """
    ExtendScreen {
        align: center middle;
        background: $background 60%;
    }

    ExtendScreen #dialog {
        width: 72;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }

    ExtendScreen #dialog-title {
        text-style: bold;
        padding-bottom: 1;
    }

    ExtendScreen #more-row {
        height: 1;
        margin-top: 1;
    }

    ExtendScreen #more-label {
        width: 14;
    }

    ExtendScreen #more {
        width: 10;
    }

    ExtendScreen #extend-error {
        color: $error;
        height: auto;
    }

    ExtendScreen #buttons {
        height: auto;
        align-horizontal: right;
    }

    ExtendScreen Button {
        margin-left: 1;
    }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel"), *ROW_BINDINGS]

    def __init__(self, run_id: str, epochs_done: int, more: int = 10):
        super().__init__(id="extend")
        self.run_id, self.epochs_done, self.more = run_id, epochs_done, more

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Extend {self.run_id}", id="dialog-title")
            yield Static(f"It finished after {self.epochs_done} epochs. Train it for more, from its checkpoint "
                         f"(the same as `tui_app.py resume {self.run_id} --epochs N`); a multistep schedule keeps "
                         f"its milestones, a cosine one is stretched to the new end.", id="question")
            with Horizontal(id="more-row"):
                yield Static("more epochs", id="more-label")
                yield OrderedInput(str(self.more), id="more", compact=True)
            yield Static(id="extend-error")
            with Horizontal(id="buttons"):
                yield Button("Extend, train here", id="answer-app", variant="primary")
                yield Button("Extend, queue it", id="answer-queue", variant="warning")
                yield Button("Cancel", id="answer-cancel")

    def on_mount(self) -> None:
        self.query_one("#more", Input).focus()

    def answer(self) -> int | None:
        text = self.query_one("#more", Input).value.strip()
        if not text.isdigit() or int(text) < 1:
            self.query_one("#extend-error", Static).update(f"✗ a whole number of epochs, 1 or more, got {text!r}")
            return None
        return self.epochs_done + int(text)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.chosen("app")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        event.stop()
        where = str(event.button.id).removeprefix("answer-")
        if where == "cancel":
            self.dismiss(None)
        else:
            self.chosen(where)

    def chosen(self, where: str) -> None:
        total = self.answer()
        if total is not None:
            self.dismiss((total, where))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

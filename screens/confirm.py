"""A modal question with a few labelled answers (stop? delete? quit?); dismisses with the chosen answer's key."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from .widgets.button_row import ROW_BINDINGS, ButtonRowMixin
from .widgets.resume import RestyleWhenChanged


class ConfirmScreen(ButtonRowMixin, RestyleWhenChanged, ModalScreen[str | None]):
    """Ask ``question``; ``answers`` are (key, label, variant) buttons. Escape answers None (nothing happens)."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel"), *ROW_BINDINGS]

    def __init__(self, title: str, question: str, answers: list[tuple[str, str, str]], *, id: str | None = None,
                 focus: str | None = None):
        """``focus``: the answer that enter gives (default the first); the safe one for what cannot be undone."""
        super().__init__(id=id)
        self.title_text = title
        self.question = question
        self.answers = answers
        self.focus_answer = focus or answers[0][0]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="dialog-title")
            yield Static(self.question, id="question")
            with Horizontal(id="buttons"):
                for key, label, variant in self.answers:
                    yield Button(label, id=f"answer-{key}", name=key, variant=variant)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query_one(f"#answer-{self.focus_answer}", Button).focus()

    @on(Button.Pressed)
    def answered(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.name)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

"""A dialog (a modal screen the detail screen opens with t) for a run's tags and note (core/store/notes.py): tags as
words separated by spaces, the note as one line. Enter in the note (or Save) writes notes.json atomically; Esc
leaves it as it was. `tui_app.py note RUN TEXT --tag T` does the same from a shell."""
from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from core.store.notes import write_notes
from core.util.files import error_text

from .ordered_input import OrderedInput


class NotesScreen(ModalScreen[dict | None]):
    DEFAULT_CSS = """
    NotesScreen { align: center middle; background: $background 60%; }
    NotesScreen #dialog { width: 76; max-width: 100%; height: auto; border: thick $primary; background: $surface;
                          padding: 0 1; }
    NotesScreen #dialog-title { text-style: bold; padding-bottom: 1; }
    NotesScreen .row { height: 1; margin-bottom: 1; }
    NotesScreen .label { width: 7; }
    NotesScreen Input { width: 1fr; }
    NotesScreen #notes-error { color: $error; height: auto; }
    NotesScreen #buttons { height: auto; align-horizontal: right; }
    NotesScreen Button { margin-left: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, run_id: str, run_path: Path, current: dict):
        """``current``: the tags and note as already read (the detail screen's reading, off the event loop)."""
        super().__init__(id="notes")
        self.run_id, self.run_path = run_id, Path(run_path)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Tags and note of {self.run_id}", id="dialog-title")
            with Horizontal(classes="row"):
                yield Static("tags", classes="label")
                yield OrderedInput(" ".join(self.current["tags"]), placeholder="e.g. best baseline", compact=True,
                                   id="tags")
            with Horizontal(classes="row"):
                yield Static("note", classes="label")
                yield OrderedInput(self.current["note"], placeholder="one line", compact=True, id="note")
            yield Static("", id="notes-error")
            with Horizontal(id="buttons"):
                yield Button("Save  enter", id="save", variant="primary", compact=True)
                yield Button("Cancel  esc", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#tags", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def save(self) -> None:
        """Written in the App's actions thread (screens/action_thread.py); the dialog closes once it is stored."""
        tags, note, path = self.query_one("#tags", Input).value.split(), self.query_one("#note", Input).value, \
            self.run_path

        def work() -> dict | str:
            try:
                return write_notes(path, tags=tags, note=note)
            except (ValueError, OSError) as exc:
                return error_text(exc, path, "save again")

        self.app.actions.do(work, self._saved, f"saving the note of {self.run_id}")

    def _saved(self, stored: dict | str) -> None:
        if not self.is_attached:
            return
        if isinstance(stored, str):
            self.query_one("#notes-error", Static).update(stored)
            return
        self.dismiss(stored)

    @on(Button.Pressed, "#cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)

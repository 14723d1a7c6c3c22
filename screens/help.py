"""`?` (or F1): every key of the screen beneath, with what it does now (dim: not possible right now)."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from .widgets.keys import key_rows
from .widgets.resume import RestyleWhenChanged


class HelpScreen(RestyleWhenChanged, ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,question_mark,f1,q,backspace", "dismiss", "Close", show=False)]

    def __init__(self, screen: Screen):
        super().__init__(id="help")
        self.title_text = getattr(screen, "HELP_TITLE", type(screen).__name__.removesuffix("Screen"))
        self.rows = key_rows(screen)

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, text, enabled in self.rows:
            table.add_row(keys, Text(text, style="" if enabled else "dim"))
        with VerticalScroll(id="help-box"):
            yield Static(Text.assemble(("Keys: ", "bold"), (self.title_text, "bold")), id="help-title")
            yield Static(table, id="help-keys")
            yield Static("esc closes · ctrl+p lists every command, searchable", id="help-foot")

    def action_dismiss(self) -> None:   # type: ignore[override]
        self.dismiss(None)

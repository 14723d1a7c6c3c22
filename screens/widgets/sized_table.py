"""A DataTable whose columns widen for a row as it is added, not on the next idle.

DataTable measures a new row's cells when the app is next idle, but a frame drawn before then is cached under the
same update count: once the columns widen, those rows keep their narrower drawing (the monitor showed an epoch's lr
"0.1" as "0." until the next epoch came). Widening at ``add_row`` means no frame is ever drawn with a column too
narrow for its rows; the idle pass then finds nothing to change. Only text cells are measured here (every cell this
app adds is text); any other renderable is left to DataTable's own pass.
"""
from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey


def cell_width(cell: object) -> int | None:
    """The width of a one-line cell as DataTable draws it, or None for a renderable that is not text."""
    if isinstance(cell, Text):
        plain = cell.plain
    elif isinstance(cell, str):
        plain = Text.from_markup(cell).plain
    elif isinstance(cell, float):
        plain = f"{cell:.2f}"
    elif isinstance(cell, (int, type(None))):
        plain = str(cell)
    else:
        return None
    return cell_len(plain.split("\n", 1)[0])


class SizedTable(DataTable):
    def add_row(self, *cells, height: int | None = 1, key: str | None = None,
                label=None) -> RowKey:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        if height == 1:
            for column, cell in zip(self.ordered_columns, cells):
                width = cell_width(cell)
                if column.auto_width and width is not None and width > column.content_width:
                    column.content_width = width
        return row_key

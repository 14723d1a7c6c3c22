"""A table of one-line rows that makes and draws only the rows in view (Textual's Line API): ten thousand runs cost
what a screenful does.

Textual's DataTable keeps a record per row and per cell and measures them as they are added: 10,000 runs of 17
columns took about 0.9 s to add on the event loop, at every change of the rows shown (a filter key included), and a
virtual table's rows were the only way to a whole table in under 2 s and a filter key in under 100 ms (issue 33).
``set_rows`` takes the rows' keys in order and a function that gives a row's cells; a row's cells are asked for only
when it is drawn, and the owner says how wide the columns must be (``widen``).

It looks, reads and answers as a DataTable with a row cursor: the same component classes and styles (its CSS is
DataTable's), zebra stripes, fixed columns, the cursor, its keys (↑ ↓ pgup pgdn home end enter), a click on a header
(``DataTable.HeaderSelected``) or a row (the cursor there; on the cursor's row: ``DataTable.RowSelected``), and
``DataTable.RowHighlighted`` when the cursor moves, so the screens' handlers serve both. Its reading API is the
DataTable's that the screens and tests use (``row_count``, ``ordered_rows``, ``ordered_columns``, ``get_row_index``,
``get_row``, ``get_cell``, ``get_cell_at``, ``get_column``, ``cursor_row``, ``move_cursor``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.geometry import Size
from textual.renderables.styled import Styled
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import Column, ColumnKey, Row, RowKey


def cell_renderable(cell: Any) -> Text:
    """A cell as DataTable shows it: a str read as markup, anything else as its text; one line."""
    if isinstance(cell, Text):
        return cell
    text = Text.from_markup(cell, end="") if isinstance(cell, str) else Text(str(cell), end="")
    text.no_wrap = True
    return text


class VirtualTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES
    DEFAULT_CSS = DataTable.DEFAULT_CSS.replace("DataTable", "VirtualTable")
    BINDINGS = [Binding("enter", "select_cursor", "Select", show=False),
                Binding("up", "cursor_up", "Cursor up", show=False),
                Binding("down", "cursor_down", "Cursor down", show=False),
                Binding("pageup", "page_up", "Page up", show=False),
                Binding("pagedown", "page_down", "Page down", show=False),
                Binding("home", "scroll_top", "First row", show=False),
                Binding("end", "scroll_bottom", "Last row", show=False)]

    cursor_type = "row"     # (the only kind this table has; DataTable's attributes, for the code that sets them)
    show_cursor = True
    show_header = True
    cell_padding = 1

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: dict[ColumnKey, Column] = {}
        self.fixed_columns = 0
        self.zebra_stripes = False
        self._keys: list[str] = []                      # the rows' keys in order
        self._cells_of: Callable[[str], Sequence[Any]] = lambda key: ()    # key -> cells in column order
        self._at: dict[str, int] | None = None          # key -> row index (made when asked)
        self._cursor = 0
        self._lines: LRUCache[tuple, Strip] = LRUCache(1024)
        self._version = 0                               # bumped by every change: the cached lines go

    # -- columns and rows ------------------------------------------------------------------------------------------
    def add_column(self, label: str, *, key: str) -> ColumnKey:
        text = Text.from_markup(label) if isinstance(label, str) else label
        column_key = ColumnKey(key)
        self.columns[column_key] = Column(column_key, text, content_width=text.cell_len, auto_width=True)
        self._changed()
        return column_key

    def clear(self, columns: bool = False) -> VirtualTable:
        self._keys, self._at = [], None
        if columns:
            self.columns = {}
        self._changed()
        return self

    def set_rows(self, keys: list[str], cells: Callable[[str], Sequence[Any]]) -> None:
        """Show these rows in this order; ``cells(key)``: a row's cells in column order, asked for when the row is
        drawn or read (the owner keeps them: it knows when they change, ``rows_changed``). The cursor stays on its
        row's key when it is still shown, else on the row that took its place."""
        current = self.current_key
        self._keys, self._cells_of, self._at = keys, cells, None
        index = self.get_row_index(current) if current is not None and current in self._index() \
            else min(self._cursor, max(0, len(keys) - 1))
        self._changed()
        self._set_cursor(index, scroll=False)

    def rows_changed(self) -> None:
        """Some rows' cells changed (their order did not): they are drawn again."""
        self._changed()

    def widen(self, widths: Sequence[int]) -> bool:
        """Make each column at least as wide as ``widths`` says (its widest cell); a column never narrows, as
        DataTable's: typing a filter never makes the columns jump. True when one grew."""
        grew = False
        for column, width in zip(self.columns.values(), widths):
            if width > column.content_width:
                column.content_width, grew = width, True
        if grew:
            self._changed()
        return grew

    def _changed(self) -> None:
        self._version += 1
        self._lines.clear()
        width = sum(c.get_render_width(self) for c in self.columns.values())
        self.virtual_size = Size(width, len(self._keys) + int(self.show_header))
        self.refresh()

    # -- DataTable's reading API ---------------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def ordered_columns(self) -> list[Column]:
        return list(self.columns.values())

    @property
    def ordered_rows(self) -> list[Row]:
        return [Row(RowKey(k), 1) for k in self._keys]

    def _index(self) -> dict[str, int]:
        if self._at is None:
            self._at = {k: i for i, k in enumerate(self._keys)}
        return self._at

    def get_row_index(self, row_key: RowKey | str) -> int:
        key = row_key.value if isinstance(row_key, RowKey) else row_key
        if key not in self._index():
            raise KeyError(key)
        return self._index()[key]

    def get_row(self, row_key: RowKey | str) -> list[Any]:
        key = row_key.value if isinstance(row_key, RowKey) else row_key
        self.get_row_index(key)
        return list(self._cells_of(key))

    def _column_index(self, column_key: ColumnKey | str) -> int:
        key = column_key if isinstance(column_key, ColumnKey) else ColumnKey(column_key)
        return list(self.columns).index(key)

    def get_cell(self, row_key: RowKey | str, column_key: ColumnKey | str) -> Any:
        return self.get_row(row_key)[self._column_index(column_key)]

    def get_cell_at(self, coordinate: Coordinate) -> Any:
        return self._cells_of(self._keys[coordinate.row])[coordinate.column]

    def get_column(self, column_key: ColumnKey | str) -> Iterable[Any]:
        at = self._column_index(column_key)
        return (self._cells_of(k)[at] for k in self._keys)

    @property
    def current_key(self) -> str | None:
        return self._keys[self._cursor] if 0 <= self._cursor < len(self._keys) else None

    # -- the cursor ------------------------------------------------------------------------------------------------
    @property
    def cursor_row(self) -> int:
        return self._cursor

    @property
    def cursor_coordinate(self) -> Coordinate:
        return Coordinate(self._cursor, 0)

    def move_cursor(self, *, row: int | None = None, column: int | None = None, animate: bool = False,
                    scroll: bool = True) -> None:
        if row is not None:
            self._set_cursor(row, scroll=scroll)

    def _set_cursor(self, index: int, scroll: bool = True) -> None:
        index = max(0, min(index, len(self._keys) - 1)) if self._keys else 0
        moved = index != self._cursor
        self._cursor = index
        self._lines.clear()
        self.refresh()
        if scroll:
            self._scroll_cursor_into_view()
        if moved and self._keys:
            self.post_message(DataTable.RowHighlighted(self, index, RowKey(self._keys[index])))  # type: ignore

    def _scroll_cursor_into_view(self) -> None:
        rows = self.scrollable_content_region.height - int(self.show_header)
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, immediate=True)
        elif rows > 0 and self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - int(self.show_header))

    def action_cursor_up(self) -> None:
        self._set_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._set_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self._set_cursor(self._cursor - self._page())

    def action_page_down(self) -> None:
        self._set_cursor(self._cursor + self._page())

    def action_scroll_top(self) -> None:
        self._set_cursor(0)

    def action_scroll_bottom(self) -> None:
        self._set_cursor(len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        if self._keys:
            self.post_message(DataTable.RowSelected(self, self._cursor, RowKey(self._keys[self._cursor])))  # type: ignore

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        x, y = offset
        if self.show_header and y == 0:
            column = self._column_at(x)
            if column is not None:
                at = self._column_index(column.key)
                self.post_message(DataTable.HeaderSelected(self, column.key, at, column.label))  # type: ignore
            return
        index = y - int(self.show_header) + round(self.scroll_y)
        if 0 <= index < len(self._keys):
            again = index == self._cursor
            self._set_cursor(index)
            if again:
                self.action_select_cursor()
            event.stop()

    def _column_at(self, x: int) -> Column | None:
        columns = self.ordered_columns
        fixed = columns[:self.fixed_columns]
        left = sum(c.get_render_width(self) for c in fixed)
        pos, candidates = 0, fixed
        if x >= left:                       # in the scrolled part: where it is in the whole of the scrolled columns
            x, candidates = x - left + round(self.scroll_x), columns[self.fixed_columns:]
        for column in candidates:
            pos += column.get_render_width(self)
            if x < pos:
                return column
        return None

    # -- drawing (DataTable's styles, one line a row) ----------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        header = int(self.show_header)
        index = -1 if y < header else y - header + round(self.scroll_y)
        width, base_style = self.size.width, self.rich_style
        if index >= len(self._keys):
            return Strip.blank(width, base_style)
        scroll_x = round(self.scroll_x)
        key = (index, self._keys[index] if index >= 0 else None, scroll_x, width, self.has_focus, self._version,
               self._cursor == index, base_style)
        strip = self._lines.get(key)
        if strip is None:
            fixed, scrollable = self._row_segments(index, base_style)
            fixed_width = sum(c.get_render_width(self) for c in self.ordered_columns[:self.fixed_columns])
            line = Strip(scrollable).crop(scroll_x + fixed_width, scroll_x + width)
            strip = Strip([*fixed, *line]).adjust_cell_length(width, base_style).simplify()
            self._lines[key] = strip
        return strip

    def _row_segments(self, index: int, base_style: Style) -> tuple[list[Segment], list[Segment]]:
        header_style = self.get_component_styles("datatable--header").rich_style
        cursor = index >= 0 and index == self._cursor and self.show_cursor
        if index == -1:
            row_style = fixed_style = header_style
            cells: Sequence[Any] = [c.label for c in self.columns.values()]
        else:
            fixed_style = self.get_component_styles("datatable--fixed").rich_style + Style.from_meta({"fixed": True})
            row_style = self.get_component_styles("datatable--odd-row" if index % 2 else "datatable--even-row") \
                .rich_style if self.zebra_stripes else base_style
            cells = self._cells_of(self._keys[index])
        columns = self.ordered_columns
        fixed: list[Segment] = []
        for at, column in enumerate(columns[:self.fixed_columns]):
            fixed += self._cell(index, at, cells[at], fixed_style, column.get_render_width(self), cursor, True)
        scrollable: list[Segment] = []
        for at, column in enumerate(columns):
            scrollable += self._cell(index, at, cells[at], row_style, column.get_render_width(self), cursor,
                                     at < self.fixed_columns and index >= 0)
        table_width = sum(c.get_render_width(self) for c in columns[self.fixed_columns:])
        extend = row_style + (self._component_style(index == -1, False, cursor)[0])
        extend += Style.from_meta({"row": index, "column": 0, "out_of_bounds": True})
        scrollable.append(Segment(" " * max(0, self.size.width - table_width), extend))
        return fixed, scrollable

    def _component_style(self, header: bool, fixed: bool, cursor: bool) -> tuple[Style, Style]:
        """The cursor's styles over a cell (DataTable's ``_get_styles_to_render_cell`` for a row cursor, no hover):
        the style under the cell and the colour put over it (the cursor's colour wins over the cell's own)."""
        style = Style()
        if cursor:
            style += self.get_component_rich_style("datatable--cursor")
            if header:
                style += self.get_component_rich_style("datatable--header-cursor")
            elif fixed:
                style += self.get_component_rich_style("datatable--fixed-cursor")
        return style, Style.from_color(color=style.color)

    def _cell(self, index: int, at: int, cell: Any, base: Style, width: int, cursor: bool, fixed: bool) \
            -> list[Segment]:
        pre, post = self._component_style(index == -1, fixed, cursor)
        options = self.app.console_options.update_dimensions(width, 1).update(no_wrap=True)
        lines = self.app.console.render_lines(
            Styled(Padding(cell_renderable(cell), (0, self.cell_padding)),
                   pre_style=base + Style.from_meta({"row": index, "column": at}) + pre, post_style=post), options)
        return lines[0]

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
        self.refresh()

"""Sideways scrolling of the run tables by whole columns (issue 21, point 5).

DataTable scrolls a row-cursor table one character per ← or →: a wide table took dozens of key presses to read,
and a column came into view cut at its left edge. Here ← and → bring the previous or the next column to the left
edge of the scrolled part (just right of the fixed columns), never more than a screenful at a time, so a column wider
than the screen (the seed groups' 'other settings that differ') is read in screenfuls instead of skipped.
"""
from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable

SIDEWAYS_KEYS = [Binding("left", "column_left", "Scroll a column left", show=False),
                 Binding("right", "column_right", "Scroll a column right", show=False)]
SIDEWAYS_HELP = ("← →", "scroll sideways a column at a time (the first columns stay in view; the table keeps its place "
                        "while the runs refresh)")


def column_stops(table: DataTable) -> list[int]:
    """The scroll_x at which each scrolled column starts at the left edge of the scrolled part."""
    widths = [column.get_render_width(table) for column in table.ordered_columns[table.fixed_columns:]]
    stops, x = [], 0
    for width in widths:
        stops.append(x)
        x += width
    return stops


def fixed_width(table: DataTable) -> int:
    return sum(column.get_render_width(table) for column in table.ordered_columns[:table.fixed_columns])


def next_scroll_x(table: DataTable, step: int) -> int:
    """Where ← (``step`` -1) or → (+1) scrolls: the previous or next column start, at most a screenful away."""
    x = round(table.scroll_x)
    room = max(1, table.scrollable_content_region.width - fixed_width(table))
    if step > 0:
        target = min([s for s in column_stops(table) if s > x] or [table.max_scroll_x])
        target = min(target, x + room)
    else:
        target = max([s for s in column_stops(table) if s < x] or [0])
        target = max(target, x - room)
    return max(0, min(target, table.max_scroll_x))


class ColumnScroll:
    """Mixin for a DataTable with a row cursor: ← and → scroll by columns (``SIDEWAYS_KEYS`` in its BINDINGS)."""

    def action_column_left(self) -> None:
        self.scroll_to(x=next_scroll_x(self, -1), animate=False, immediate=True)  # type: ignore[attr-defined, arg-type]

    def action_column_right(self) -> None:
        self.scroll_to(x=next_scroll_x(self, 1), animate=False, immediate=True)  # type: ignore[attr-defined, arg-type]

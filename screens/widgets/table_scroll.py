"""Sideways scrolling of the run tables by whole columns (issue 21, point 5).

DataTable scrolls a row-cursor table one character per ← or →: a wide table took dozens of key presses to read,
and a column came into view cut at its left edge. Here ← and → bring the previous or the next column to the left
edge of the scrolled part (just right of the fixed columns), never more than a screenful at a time, so a column wider
than the screen (the seed groups' 'other settings that differ') is read in screenfuls instead of skipped.

A column only partly in view is never shown cut mid-value (lr 0.1 read '0.', wd 0.0001 and 0.0005 both '0.000'):
a narrow one is left blank until scrolled into view (its header's last cell shows '›': more to the right), a wide
text column (a note) ends in '…' where the screen ends (``whole_values``).
"""
from __future__ import annotations

from rich.segment import Segment
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.strip import Strip
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


WIDE = 20           # a column at least this wide (free text) is elided with '…', a narrower one is blanked


def partial_columns(table: DataTable) -> list[tuple[int, int, bool, object]]:
    """The scrolled columns only partly in view: (first cell, end, wide, column key) of their visible part."""
    width, left = table.size.width, fixed_width(table)
    pos, spans = left - round(table.scroll_x), []
    for column in table.ordered_columns[table.fixed_columns:]:
        start, end = pos, pos + column.get_render_width(table)
        pos = end
        if end > left and start < width and (start < left or end > width):
            spans.append((max(start, left), min(end, width), end - start >= WIDE, column.key))
    return spans


def whole_values(strip: Strip, spans: list[tuple[int, int, bool, object]], header: bool,
                 longer=lambda key, room: False) -> Strip:
    """``strip`` (a rendered line of the table) with the columns in ``spans`` blanked, or elided when wide (where
    ``longer(column key, cells in view)`` says its text runs on past the edge); a blank at the right edge gets '›' in
    the header."""
    for start, end, wide, key in spans:
        if wide and start > 0 and end == strip.cell_length and longer(key, end - start):
            pieces = [strip.crop(0, end - 1), _text(strip.crop(end - 1, end), "…")]
        elif wide:
            continue                    # a long text read in screenfuls: its left part scrolled away on purpose
        else:
            mark = "›" if header and end == strip.cell_length else ""
            pieces = [strip.crop(0, start), _text(strip.crop(start, end), mark)]
        strip = Strip.join([*pieces, strip.crop(end, strip.cell_length)])
    return strip


def _text(part: Strip, last: str) -> Strip:
    """``part`` in its own styles (row colours, cursor) with spaces for its text and ``last`` in its last cell."""
    segments = [Segment(" " * seg.cell_length, seg.style) for seg in part if not seg.control]
    if last and segments:
        tail = segments[-1]
        segments[-1] = Segment(" " * (tail.cell_length - 1) + last, tail.style)
    return Strip(segments, part.cell_length)


class ColumnScroll:
    """Mixin for a table with a row cursor (a DataTable, or screens/widgets/virtual_table.py's): ← and → scroll by
    columns (``SIDEWAYS_KEYS`` in its BINDINGS); a column only partly in view shows no cut value (``whole_values``)."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)  # type: ignore[misc]
        spans = partial_columns(self)  # type: ignore[arg-type]
        if not spans:
            return strip
        shown = int(self.show_header)  # type: ignore[attr-defined]
        header, index = y < shown, y - shown + round(self.scroll_y)  # type: ignore[attr-defined]   (one-line rows)

        def longer(key, room: int) -> bool:
            if header:
                cell = self.columns[key].label  # type: ignore[attr-defined]
            elif 0 <= index < self.row_count:  # type: ignore[attr-defined]
                at = list(self.columns).index(key)  # type: ignore[attr-defined]
                cell = self.get_cell_at(Coordinate(index, at))  # type: ignore[attr-defined]
            else:
                return False
            return len(getattr(cell, "plain", str(cell)).rstrip()) > room - self.cell_padding  # type: ignore
        return whole_values(strip, spans, header, longer)

    def action_column_left(self) -> None:
        self.scroll_to(x=next_scroll_x(self, -1), animate=False, immediate=True)  # type: ignore[attr-defined, arg-type]

    def action_column_right(self) -> None:
        self.scroll_to(x=next_scroll_x(self, 1), animate=False, immediate=True)  # type: ignore[attr-defined, arg-type]

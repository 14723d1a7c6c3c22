"""A row added to a table is drawn whole, even when a frame is drawn before the app is idle.

DataTable widens its columns for new rows when the app is next idle, and a frame drawn in between stays cached:
the CI's monitor snapshot, under load, showed an epoch's lr "0.1" as "0." (screens/widgets/sized_table.py).
"""
from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text
from textual.app import App

from screens.widgets.sized_table import SizedTable, cell_width

SCREENS = Path(__file__).resolve().parents[2] / "screens"


class TableApp(App):
    def compose(self):
        yield SizedTable(cursor_type="row")


def drawn(table, y: int) -> str:
    return "".join(segment.text for segment in table.render_line(y))


async def test_a_row_is_drawn_whole_when_a_frame_comes_before_the_idle_measure():
    app = TableApp()
    async with app.run_test(size=(40, 6)) as pilot:
        table = app.query_one(SizedTable)
        table.add_column("lr", key="lr")
        table.add_column("time", key="time")
        table.add_row(Text("0.1", justify="right"), "12s")
        await pilot.pause()
        table.add_row(Text("0.0001", justify="right"), "[b]1m08s[/b]")
        before_idle = drawn(table, 2)   # the frame a loaded machine draws before DataTable's idle pass
        await pilot.pause()
        assert "0.0001" in before_idle and "1m08s" in before_idle
        assert "0.0001" in drawn(table, 2) and "1m08s" in drawn(table, 2)
        assert [c.content_width for c in table.ordered_columns] == [6, 5]


def test_cell_width_of_text_markup_and_numbers():
    assert cell_width(Text("0.0001")) == 6
    assert cell_width("[bold]ab[/bold]") == 2
    assert cell_width(0.123) == 4 and cell_width(42) == 2
    assert cell_width("résumé 東京") == 11
    assert cell_width(object()) is None


def test_every_data_table_of_the_app_is_a_sized_one():
    """A plain DataTable (or a subclass of it) anywhere in screens/ would bring the truncated cells back."""
    offenders = []
    for path in SCREENS.rglob("*.py"):
        if path.name == "sized_table.py":
            continue
        source = path.read_text()
        if re.search(r"\bDataTable\(|class \w+\([^)]*\bDataTable\)", source):
            offenders.append(path.name)
    assert offenders == []

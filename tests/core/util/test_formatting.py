"""core.util.formatting: the one way the CLI and the TUI write figures and states."""
from __future__ import annotations

import math

from core.store.runs import STATES
from core.util.formatting import (
    STATE_STYLES,
    count,
    duration,
    epochs_text,
    mem,
    model_name,
    num,
    one_line,
    pct,
    rate,
    state_style,
)


def test_unknown_values_print_as_a_dash():
    for fmt in (pct, num, rate, count, duration, mem):
        for value in (None, math.nan, math.inf, "12", True):
            assert fmt(value) == "-", (fmt.__name__, value)


def test_numbers():
    assert pct(8.754) == "8.75%" and pct(8.754, unit=False) == "8.75"
    assert num(2.302585) == "2.303" and num(0.1) == "0.1" and num(12.345, 3) == "12.3"
    assert rate(12345.6) == "12,346"
    assert count(750) == "750" and count(1234) == "1.23k" and count(64000) == "64k" and count(2.5e6) == "2.5M"


def test_durations():
    assert [duration(s) for s in (0, 4.24, 42, 65, 3725)] == ["0.0s", "4.2s", "42s", "1m05s", "1h02m"]


def test_memory_is_in_binary_units():
    assert mem(0) == "-" and mem(512) == "512 B" and mem(1536) == "1.5 KiB"
    assert mem(300 * 2**20) == "300.0 MiB" and mem(3 * 2**30) == "3.0 GiB" and mem(5 * 2**40) == "5.0 TiB"


def test_text():
    assert one_line("CIFAR-10 was not found\n  Fix: copy it") == "CIFAR-10 was not found Fix: copy it"
    long = one_line("x" * 100, limit=10)
    assert len(long) == 10 and long.endswith("…")
    assert one_line(None) == ""
    assert epochs_text(3, 10) == "3/10" and epochs_text(3, None) == "3/?" and epochs_text(None, 10) == "-"
    assert model_name(20, "A") == "ResNet-20" and model_name(20, "none") == "plain-20" and model_name(None, "A") == "-"


def test_every_state_has_a_style_valid_in_rich_and_textual():
    from rich.style import Style
    from textual.style import Style as TextualStyle

    assert set(STATE_STYLES) == set(STATES)
    for state in STATES:
        Style.parse(state_style(state))
        TextualStyle.parse(state_style(state))
    assert state_style("no-such-state", "red") == "red"


def test_a_column_of_losses_or_seconds_has_one_number_of_decimals():
    # the runs table showed s/epoch '0.81' beside '0.702', `show` test loss '2.06' beside '2.275' (significant digits)
    from cli.tables import EPOCH_COLUMNS
    from core.util.formatting import decimals

    assert decimals(2.06, 4) == "2.0600" and decimals(0.01234, 4) == "0.0123" and decimals(None, 2) == "-"
    shown = {name: fmt for name, _, fmt in EPOCH_COLUMNS}
    for column, values in (("test loss", (2.06, 2.275, 0.3)), ("seconds", (0.81, 0.702, 312.5))):
        cells = [shown[column](v) for v in values]
        assert len({len(c.split(".")[1]) for c in cells}) == 1, (column, cells)

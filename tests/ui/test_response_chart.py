"""The layer-response chart (issue 35, item 6): a layer_responses.json holding NaN or inf, which ResLab itself writes
for a checkpoint with NaN weights, is drawn with a note instead of ending the app with a ValueError."""
from __future__ import annotations

import math

from screens.widgets.response_chart import response_chart


def test_non_finite_responses_are_drawn_with_a_note_never_a_crash():
    chart = response_chart({"layers": [{"std": math.nan}, {"std": 1.0}, {"std": math.inf}], "epoch": 2}, 40).plain
    assert "2 of 3 layers have no finite response (NaN or inf" in chart and "max 1" in chart
    for layers in ([{"std": math.nan}], [{"std": -math.inf}, {"std": "x"}], [5, None]):
        assert "no finite response" in response_chart({"layers": layers}, 40).plain
    assert "no layers" in response_chart({"layers": []}, 40).plain
    assert "max 0.5" in response_chart({"layers": [{"std": 0.5}, {"std": 0.25}]}, 40).plain

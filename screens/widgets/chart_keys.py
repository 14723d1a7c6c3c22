"""The chart keys that the detail and compare screens share: ``z`` cycles the error axis (fitted, the paper's Fig. 6
range, 0-100 %), ``y`` switches it between linear and log, ``t`` shows or hides the training curves. A screen mixes
in ``ChartKeys``, lists the bindings it offers (``CHART_BINDINGS``, plus ``TRAIN_BINDING`` where it draws training
curves) and redraws in ``refresh_view``; the state lives here, so both screens cycle the same way."""
from __future__ import annotations

from textual.binding import Binding

from .curve_plot import Y_MODES

CHART_BINDINGS = [
    Binding("z", "zoom", "Y range"),
    Binding("y", "log_scale", "Log/linear y axis", show=False),   # named in the plot's title
]
TRAIN_BINDING = Binding("t", "toggle_train", "Train curves")


class ChartKeys:
    """Mixin for a screen with an error chart: ``y_mode`` (one of Y_MODES), ``y_log`` and ``show_train``."""

    y_mode: str = "auto"        # the error axis: fitted, Fig. 6 or full (z)
    y_log: bool = False         # log axis (y)
    show_train: bool = True     # training curves beside the test curves (t)

    def action_zoom(self) -> None:
        self.y_mode = Y_MODES[(Y_MODES.index(self.y_mode) + 1) % len(Y_MODES)]
        self.refresh_view()

    def action_log_scale(self) -> None:
        self.y_log = not self.y_log
        self.refresh_view()

    def action_toggle_train(self) -> None:
        self.show_train = not self.show_train
        self.refresh_view()

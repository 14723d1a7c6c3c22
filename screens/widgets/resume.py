"""A screen pushed again is restyled only when something its styles depend on has changed.

Textual restyles every node of a screen each time it is pushed (``ScreenResume(refresh_styles=True)``). The new-run
form is built once per session and pushed at each ``n``: restyling its few hundred widgets was most of the time
between the key and the form (``bench/screen_latency.py --profile form``). While a screen is suspended its own
widgets' class changes are restyled when they happen; what is not is the app's side: the theme, the CSS (both bump
the app's CSS count), the terminal's focus (``:focus``/``:blur``) and colour mode. So the first push restyles as
Textual does, and a later one only when one of those has changed since.
"""
from __future__ import annotations

from textual import events


def style_inputs(app) -> tuple:
    """What a suspended screen's styles depend on beyond its own widgets."""
    return (getattr(app, "_css_update_count", None), app.theme, app.app_focus, app.no_color, app.native_ansi_color)


class RestyleWhenChanged:
    """Mixin for a Screen subclass that is pushed more than once (listed before ``Screen``). Textual calls the
    handler of each class of the MRO in turn, this one before Screen's: it only clears the event's flag."""

    _styled_with: tuple | None = None

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        inputs = style_inputs(self.app)  # type: ignore[attr-defined]
        if event.refresh_styles and inputs == self._styled_with:
            event.refresh_styles = False
        self._styled_with = inputs

    def _on_mount(self, event: events.Mount) -> None:
        """Mounting styled each widget: the push that follows need not do it again."""
        self._styled_with = style_inputs(self.app)  # type: ignore[attr-defined]

"""The key bar under each screen: Textual's Footer, rebuilt only when what it shows changed.

Textual's Footer recomposes (a widget per key, each styled) on every ``bindings_updated`` signal: each focus change
while a screen mounts and every return to a screen, although its keys are the same. That was most of the time from
escape to the runs table drawn (~0.4 of 0.6 s on a busy 2-core machine) and a large part of opening a screen.
"""
from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer as TextualFooter


class Footer(TextualFooter):
    _shown: tuple | None = None

    def _keys(self, screen: Screen) -> tuple:
        """What the bar would show: each shown binding with its state, and the key display names."""
        return tuple((b.key, self.app.get_key_display(b), b.description, b.action, b.group, enabled, tooltip)
                     for (_, b, enabled, tooltip) in screen.active_bindings.values() if b.show)

    def bindings_changed(self, screen: Screen) -> None:
        if (self._bindings_ready and self._shown is not None and self.is_attached and screen is self.screen
                and self._keys(screen) == self._shown):
            return
        super().bindings_changed(screen)

    def compose(self):
        if self._bindings_ready:
            self._shown = self._keys(self.screen)
        yield from super().compose()

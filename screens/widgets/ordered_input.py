"""An Input whose editing keys (backspace, delete, arrows, home, end ...) take effect in the order they are typed.

Textual resolves a focused widget's key bindings only once the key has bubbled up to the App, while the Input
inserts a printable character as soon as it reads it. In a burst such as ``BSpace BSpace BSpace 9`` sent to a field
holding ``0.1`` the 9 overtook the three deletions, which then removed it: the field read ``0`` (or nothing, when
the text was selected) instead of ``9``. Here the widget's own bindings run the moment their key arrives.
"""
from __future__ import annotations

from functools import cache

from textual import events
from textual.binding import Binding
from textual.widgets import Input


@cache
def key_actions(cls: type) -> dict[str, str]:
    """Every key the class binds -> its action, a subclass's bindings over its bases' ("backspace" ->
    "delete_left", "home" and "ctrl+a" -> "home", ...)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        for binding in klass.__dict__.get("BINDINGS", ()):
            key, action = (binding.key, binding.action) if isinstance(binding, Binding) else binding[:2]
            out.update({k.strip(): action for k in key.split(",")})
    return out


class OrderedInput(Input):
    """Also: a steady cursor (no blink timer repainting the field twice a second while a run trains)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cursor_blink = False

    async def _on_key(self, event: events.Key) -> None:
        action = key_actions(type(self)).get(event.key)
        if action is None:
            return                  # Input's own key handler (printable characters) comes next
        event.stop()
        event.prevent_default()     # neither Input's handler nor the bubbled binding runs it a second time
        await self.run_action(action)

"""A checkbox that reads [x] / [ ] instead of a coloured X, so its state shows without colour (NO_COLOR).

Its keys follow the form's choices (the footer says '←→: choices', issue 21 point 6): in a row of boxes (the
shortcuts A, B, none) ← and → move along the row and a letter ticks or unticks the box whose label starts with it;
a lone on/off box has two choices, so ← and → tick or untick it. Space and enter toggle, as a Checkbox does.
"""
from __future__ import annotations

from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    BINDINGS = [Binding("left", "side(-1)", "Previous", show=False),
                Binding("right", "side(1)", "Next", show=False)]

    def render(self) -> Content:
        box = Content.styled("[x]" if self.value else "[ ]", self.get_visual_style("toggle--button"))
        label = self.label.pad(1, 1).stylize_before(self.get_visual_style("toggle--label"))
        return Content.assemble(box, label)

    def row(self) -> list[TickBox]:
        """The boxes of this box's row (a Horizontal of boxes, as the shortcuts'; itself alone when it has none)."""
        parent = self.parent
        boxes = [w for w in parent.children if isinstance(w, TickBox)] if isinstance(parent, Horizontal) else []
        return boxes if len(boxes) > 1 else [self]

    def side(self, by: int) -> TickBox:
        """← (-1) or → (+1): the box along the row (wrapping), or this one toggled when it is alone; which box has
        the focus now."""
        boxes = self.row()
        if len(boxes) == 1:
            self.toggle()
            return self
        target = boxes[(boxes.index(self) + by) % len(boxes)]
        target.focus()
        return target

    def jump(self, letter: str) -> TickBox | None:
        """The box of the row whose label starts with ``letter``, toggled and focused; None when none does."""
        boxes = self.row()
        if len(boxes) == 1:
            return None
        for box in boxes:
            if str(box.label).lower().startswith(letter.lower()):
                box.toggle()
                box.focus()
                return box
        return None

    def action_side(self, by: int) -> None:
        self.side(by)

    def on_key(self, event) -> None:
        if event.character and len(event.character) == 1 and event.character.isalnum() and self.jump(event.character):
            event.stop()
            event.prevent_default()

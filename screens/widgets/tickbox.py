"""A checkbox that reads [x] / [ ] instead of a coloured X, so its state shows without colour (NO_COLOR)."""
from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    def render(self) -> Content:
        box = Content.styled("[x]" if self.value else "[ ]", self.get_visual_style("toggle--button"))
        label = self.label.pad(1, 1).stylize_before(self.get_visual_style("toggle--label"))
        return Content.assemble(box, label)

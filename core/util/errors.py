"""Errors that more than one package raises and every client catches the same way."""
from __future__ import annotations


class ReportError(ValueError):
    """Runs that cannot make a table or figure: the message says what is wrong and what to do."""


class MissingDependency(ReportError):
    """matplotlib or tensorboard is not installed: the message names the pip command."""

"""Exceptions raised by symloss."""

from __future__ import annotations


class SymlossError(Exception):
    """Base class of every error symloss raises on purpose."""


class ParseError(SymlossError, ValueError):
    """A LaTeX formula could not be turned into a loss.

    Attributes
    ----------
    text : str
        The input, as given.
    position : int
        0-based character offset in *text* where the problem was found.
    reason : str
        One line saying what is wrong.
    """

    def __init__(self, text: str, position: int, reason: str):
        self.text = text
        self.position = max(0, min(int(position), len(text)))
        self.reason = reason
        super().__init__(f"{reason} (at character {self.position})")

    def caret(self) -> str:
        """The input line with a caret under the offending character."""
        line_start = self.text.rfind("\n", 0, self.position) + 1
        line_end = self.text.find("\n", self.position)
        line = self.text[line_start : None if line_end < 0 else line_end]
        return f"{line}\n{' ' * (self.position - line_start)}^"


class BudgetExceeded(SymlossError, RuntimeError):
    """Symbolic work ran past its time or size budget."""

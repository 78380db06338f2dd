"""Every error symloss raises on purpose, in one place.

Layer: the bottom (with :mod:`symloss.symbols`); it imports nothing from symloss.
Each class subclasses :class:`SymlossError` and the built-in exception a caller would
otherwise catch (``ValueError`` for bad values, ``FileExistsError`` for a refused
directory), so ``except ValueError`` keeps working.  All are exported from
:mod:`symloss`.
"""

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


class BackendError(SymlossError, RuntimeError):
    """The evaluation backend asked for (:func:`symloss.set_backend` or
    ``SYMLOSS_BACKEND``) cannot run here; the message says why."""


class UsageError(SymlossError, ValueError):
    """A mistake in a command line or its values: the CLI prints one line and exits 2."""


class UnsafeOutputError(SymlossError, FileExistsError):
    """The output directory is not empty and was not built by symloss."""


class CheckFailed(SymlossError, AssertionError):
    """Raised by :meth:`symloss.Report.raise_if_failed`; ``.report`` holds the report."""

    def __init__(self, report):
        self.report = report
        super().__init__(str(report))


class InputError(SymlossError, ValueError):
    """An array passed to a loss is wrong: its dtype, shape, domain or a row constraint.
    The message names the loss, the array and the first offending element."""


class ArgumentError(SymlossError, TypeError):
    """A call or option the function does not take: an unknown option, a missing or
    unexpected keyword input, an option of the wrong type."""


class OptionError(SymlossError, ValueError):
    """An option's value lies outside its domain (``delta=-1``, a bad reduction)."""


class DefinitionError(SymlossError, ValueError):
    """A loss is defined wrongly (no sum over the samples, an undeclared symbol, a
    reduction it does not accept) or registered under a name already taken."""


class UnknownLossError(SymlossError, KeyError):
    """No registered loss has this name or alias; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CompilerUnavailable(SymlossError, RuntimeError):
    """A compiled kernel cannot run here (the message says why).  *environment*: the
    cause holds for every kernel (no compiler, no private cache directory)."""

    def __init__(self, message: str, environment: bool = False, quiet: bool = False):
        super().__init__(message)
        self.environment = environment
        self.quiet = quiet  # no compiler at all: the NumPy code is expected, no warning


class UntrustedCache(CompilerUnavailable):
    """The kernel cache is refused: someone other than this user (or root) could put
    code in it (docs/cache-trust.md).  Under ``SYMLOSS_BACKEND=auto`` the NumPy code
    runs instead, with one warning; under ``c`` it is the cause of the BackendError."""

    def __init__(self, message: str):
        super().__init__(message, environment=True)


class SettingError(SymlossError, ValueError):
    """A setting (:func:`symloss.configure`, or a ``SYMLOSS_*`` environment variable)
    holds a value outside its accepted range; the message names it and the range.  An
    environment variable's error is raised by the first evaluation, not by
    ``import symloss``."""

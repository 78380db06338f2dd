r"""Printers: LaTeX in two notations and Unicode text, as subclasses of SymPy's.

Layer: just above :mod:`symloss.symbols` and :mod:`symloss.errors`, which are all it
may import.  :class:`~symloss.printing.printers.ArticleLatexPrinter` reproduces the
source article's notation (bare ``log``, ``\,`` spacing, braces around summands);
:class:`~symloss.printing.printers.StandardLatexPrinter` writes conventional LaTeX
that KaTeX and pdflatex accept; :class:`~symloss.printing.printers.TextPrinter` is the
terminal's.  Each overrides only the ``_print_<Class>`` methods it needs.
"""

from symloss.printing.printers import STYLES, TextPrinter, latex_expr, pretty, pretty_equation

__all__ = ["STYLES", "TextPrinter", "latex_expr", "pretty", "pretty_equation"]

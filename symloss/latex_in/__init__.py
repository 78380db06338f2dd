"""LaTeX in: a formula as a paper writes it, turned into a :class:`~symloss.Loss`.

Layer 7: may import the registry and everything below it.  Nothing in user text is
ever evaluated: :mod:`~symloss.latex_in.parser` reads the LaTeX into SymPy through a
lexer and the ANTLR grammar of ``latex2sympy2_extended`` (bounded in length and time),
and :mod:`~symloss.latex_in.convert` makes it a Loss (:func:`from_latex`) and names the
catalog loss it equals (:func:`identify`).
"""

from symloss.latex_in.convert import equivalent, from_latex, identify, match

__all__ = ["equivalent", "from_latex", "identify", "match"]

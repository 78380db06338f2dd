"""LaTeX in: a formula as a paper writes it, turned into a :class:`~symloss.Loss`.

Layer 7: may import the registry and everything below it.  Nothing in user text is
ever evaluated: :mod:`~symloss.latex_in.parser` reads the LaTeX into SymPy through a
lexer and the ANTLR grammar of ``latex2sympy2_extended`` (bounded in length and time),
:mod:`~symloss.latex_in.canonical` turns written-out activations into the named ones,
:mod:`~symloss.latex_in.convert` makes it a Loss (:func:`from_latex`) and names the
catalog loss it equals (:func:`identify`, :func:`match` with the hyperparameter values),
and :mod:`~symloss.latex_in.compare` checks equality on the domain numerically and
solves for hyperparameters.
"""

from symloss.latex_in.convert import equivalent, from_latex, identify, match

__all__ = ["equivalent", "from_latex", "identify", "match"]

"""symloss: machine-learning losses written once in SymPy.

Every loss is one SymPy expression; its gradient, Hessian, LaTeX, NumPy kernels,
docs and CLI entry are derived from it.

>>> import symloss
>>> symloss.get("bce_logits").gradient()
(sigmoid(z[i]) - t[i])/n
"""

from ._calculus import Constraint
from ._core import Composition, Domain, Loss, Param, catalog, get, names, register
from ._errors import BudgetExceeded, ParseError, SymlossError
from ._printing import latex_expr
from ._symbols import array, index, m, n, sigmoid, softmax

__version__ = "0.1.0"

# Imported on first use: the LaTeX parser (ANTLR) and the checker are not needed to
# show a loss, and `symloss show` should start about as fast as `import sympy`.
_LAZY = {
    "from_latex": "._from_latex",
    "identify": "._from_latex",
    "check": ".checker",
    "Report": ".checker",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symloss' has no attribute {name!r}")


def latex(obj, style: str = "standard", part: str = "loss") -> str:
    r"""LaTeX for a :class:`Loss` (its *part*) or for any SymPy expression built from
    symloss's symbols, in the ``"standard"`` or ``"article"`` style.

    >>> import symloss
    >>> print(symloss.latex(symloss.sigmoid(symloss.array("z")[symloss.index("i")])))
    \sigma\left(z_{i}\right)
    """
    if isinstance(obj, Loss):
        return obj.latex(style=style, part=part)
    return latex_expr(obj, style)


__all__ = [
    "BudgetExceeded",
    "Composition",
    "Constraint",
    "Domain",
    "Loss",
    "Param",
    "ParseError",
    "Report",
    "SymlossError",
    "array",
    "get",
    "index",
    "latex",
    "catalog",
    "check",
    "from_latex",
    "identify",
    "m",
    "n",
    "names",
    "register",
    "sigmoid",
    "softmax",
]

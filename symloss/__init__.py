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
from ._from_latex import from_latex, identify
from ._printing import latex_expr as latex
from ._symbols import array, index, m, n, sigmoid, softmax
from .checker import Report, check

__version__ = "0.1.0"

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

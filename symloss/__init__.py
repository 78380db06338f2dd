"""symloss: machine-learning losses written once in SymPy.

Every loss is one SymPy expression; its gradient, Hessian, LaTeX, NumPy kernels,
docs and CLI entry are derived from it.

>>> import symloss
>>> symloss.get("bce_logits").gradient()
(sigmoid(z[i]) - t[i])/n

The dependency rule
-------------------
The package is in layers.  A module imports only from its own layer and the layers
below it, never above, and there is no import cycle between modules (counting imports
inside functions; only ``TYPE_CHECKING`` imports and optional third-party packages are
exempt).  ``tests/test_layout.py`` enforces both.  From the bottom:

0. :mod:`symloss.errors`, :mod:`symloss.symbols`, :mod:`symloss.version`
1. :mod:`symloss.printing`: LaTeX and text printers
2. :mod:`symloss.symbolic`: calculus over indexed sums, budgets, derivatives, derivations
3. :mod:`symloss.numeric`: stable forms, kernels (NumPy, fused, compiled C), evaluation
4. :mod:`symloss.frameworks`: PyTorch modules, JAX functions, standalone modules, dask
5. :mod:`symloss.core`: the :class:`Loss` value, :class:`Domain` and :class:`Param`
6. :mod:`symloss.losses`: the catalog, one module per family
7. :mod:`symloss.registry`: names to losses
8. :mod:`symloss.latex_in`, :mod:`symloss.checker`, :mod:`symloss.testing`
9. :mod:`symloss.docs`
10. :mod:`symloss.cli`

This module, the public face, sits on top and re-exports the public names.
``docs/architecture.md`` has the diagram and a paragraph per subpackage.
"""

from symloss.core.domain import Domain, Param
from symloss.core.loss import Composition, Loss
from symloss.errors import (
    ArgumentError,
    BackendError,
    BudgetExceeded,
    CheckFailed,
    DefinitionError,
    InputError,
    OptionError,
    ParseError,
    SettingError,
    SymlossError,
    UnknownLossError,
    UnsafeOutputError,
    UntrustedCache,
    UsageError,
)
from symloss.numeric.config import backend, configure, configured, get_backend, set_backend
from symloss.printing import latex_expr
from symloss.registry import catalog, get, names, register
from symloss.symbolic.calculus import Constraint
from symloss.symbols import array, index, m, n, sigmoid, softmax
from symloss.version import __version__

# Imported on first use: the LaTeX parser (ANTLR) and the checker are not needed to
# show a loss, and `symloss show` should start about as fast as `import sympy`.
_LAZY = {
    "from_latex": "symloss.latex_in",
    "identify": "symloss.latex_in",
    "match": "symloss.latex_in",
    "check": "symloss.checker",
    "Report": "symloss.checker",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
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
    "ArgumentError",
    "BackendError",
    "BudgetExceeded",
    "CheckFailed",
    "Composition",
    "Constraint",
    "DefinitionError",
    "Domain",
    "InputError",
    "Loss",
    "OptionError",
    "Param",
    "ParseError",
    "Report",
    "SettingError",
    "SymlossError",
    "UnknownLossError",
    "UnsafeOutputError",
    "UntrustedCache",
    "UsageError",
    "__version__",
    "array",
    "backend",
    "catalog",
    "check",
    "configure",
    "configured",
    "from_latex",
    "get",
    "get_backend",
    "identify",
    "index",
    "latex",
    "m",
    "match",
    "n",
    "names",
    "register",
    "set_backend",
    "sigmoid",
    "softmax",
]

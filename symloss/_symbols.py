"""The shared vocabulary of every loss: sizes, index letters, arrays and activations.

Every loss, the LaTeX parser and the printers build on these objects, so a formula
typed by a user and a formula in the registry are made of the very same SymPy atoms.
"""

from __future__ import annotations

import sympy as sp
from sympy import Function, Indexed, IndexedBase, KroneckerDelta, S, Symbol, exp, log

#: Number of samples (the article's n) and of classes (its m).
n = Symbol("n", integer=True, positive=True)
m = Symbol("m", integer=True, positive=True)

#: Index letters.  ``i``/``k`` run over samples, ``j`` over classes, as in the article.
i, j, k, l = (Symbol(c, integer=True) for c in "ijkl")
INDEX_LETTERS = "ijklpqrs"


def index(name: str) -> Symbol:
    """The integer index symbol called *name* (``i``, ``j``, ...)."""
    return Symbol(name, integer=True)


def array(name: str) -> IndexedBase:
    """The real-valued indexed array called *name*, such as ``y``, ``t`` or ``z``.

    The IndexedBase is built from a real ``Symbol`` label so that its elements
    are real, which lets SymPy drop ``Abs`` and ``conjugate`` in derivatives.
    """
    return IndexedBase(Symbol(name, real=True), real=True)


class sigmoid(Function):
    r"""The logistic function :math:`\sigma(x) = 1/(1+e^{-x})`."""

    nargs = 1

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return S.Half
        return None

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + exp(-x))

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_positive(self):
        return True if self.args[0].is_real else None


class softplus(Function):
    r"""Softplus, :math:`\log(1+e^{x})`, used by stable kernels."""

    nargs = 1

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return log(1 + exp(x))

    def _eval_rewrite_as_log(self, x, **kwargs):
        return log(1 + exp(x))


class softmax(Function):
    r"""Element ``(r, c)`` of the row-wise softmax of the array ``z``.

    ``softmax(z, i, j)`` is :math:`e^{z_{ij}} / \sum_{k=1}^{m} e^{z_{ik}}`.  Its
    derivative with respect to an element ``z[a, b]`` is the softmax Jacobian
    :math:`p_{ij}(\delta_{jb} - p_{ib})\,\delta_{ia}`, given here in closed form so
    that differentiation never expands the normalising sum.
    """

    nargs = 3

    def _eval_derivative(self, s):
        base, r, c = self.args
        if isinstance(s, Indexed) and s.base == base and len(s.indices) == 2:
            a, b = s.indices
            return self * (KroneckerDelta(c, b) - softmax(base, r, b)) * KroneckerDelta(r, a)
        return S.Zero

    def _eval_rewrite_as_exp(self, base, r, c, **kwargs):
        dummy = _fresh_index(self)
        return exp(base[r, c]) / sp.Sum(exp(base[r, dummy]), (dummy, 1, m))

    def _eval_is_real(self):
        return True

    def _eval_is_positive(self):
        return True


class logsumexp(Function):
    r"""Row ``r`` of :math:`\log\sum_{k=1}^{m} e^{z_{rk}}`, used by stable kernels."""

    nargs = 2

    def _eval_derivative(self, s):
        base, r = self.args
        if isinstance(s, Indexed) and s.base == base and len(s.indices) == 2:
            a, b = s.indices
            return softmax(base, r, b) * KroneckerDelta(r, a)
        return S.Zero

    def _eval_rewrite_as_exp(self, base, r, **kwargs):
        dummy = _fresh_index(self)
        return log(sp.Sum(exp(base[r, dummy]), (dummy, 1, m)))

    def _eval_is_real(self):
        return True


class xlogy(Function):
    r""":math:`x \log y` with the convention :math:`0 \log 0 = 0` (kernels only)."""

    nargs = 2

    def fdiff(self, argindex=1):
        x, y = self.args
        return log(y) if argindex == 1 else xdivy(x, y)

    def _eval_rewrite_as_log(self, x, y, **kwargs):
        return x * log(y)


class xdivy(Function):
    r""":math:`x / y` with the convention :math:`0 / 0 = 0` (kernels only)."""

    nargs = 2

    def fdiff(self, argindex=1):
        x, y = self.args
        return 1 / y if argindex == 1 else -xdivy(x, y**2)

    def _eval_rewrite_as_log(self, x, y, **kwargs):
        return x / y


def _fresh_index(expr: sp.Basic) -> Symbol:
    used = {s.name for s in expr.free_symbols}
    for name in "klpqrs":
        if name not in used:
            return index(name)
    raise ValueError("ran out of index letters")  # pragma: no cover


#: Functions a loss may use besides SymPy's own, by name (used by the parser too).
ACTIVATIONS = {"sigmoid": sigmoid, "softmax": softmax}
KERNEL_FUNCTIONS = {"softplus": softplus, "logsumexp": logsumexp, "xlogy": xlogy, "xdivy": xdivy}

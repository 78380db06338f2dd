"""The shared vocabulary of every loss: sizes, index letters, arrays and activations.

Every loss, the LaTeX parser and the printers build on these objects, so a formula
typed by a user and a formula in the registry are made of the very same SymPy atoms.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp
from sympy import Function, Indexed, IndexedBase, KroneckerDelta, S, Symbol, exp, log
from sympy.concrete.expr_with_limits import ExprWithLimits

#: Number of samples (the article's n) and of classes (its m).
n = Symbol("n", integer=True, positive=True)
m = Symbol("m", integer=True, positive=True)

#: Index letters.  ``i``/``k`` run over samples, ``j`` over classes, as in the article.
i, j, k, l = (Symbol(c, integer=True) for c in "ijkl")


def index(name: str) -> Symbol:
    """The integer index symbol called *name* (``i``, ``j``, ...)."""
    return Symbol(name, integer=True)


#: Letters for a new index (a summation dummy, a Hessian partner), in order of
#: preference: from ``k`` on, skipping the sizes ``m`` and ``n``, ``o`` (it reads as 0)
#: and the target's ``t``.
FRESH_LETTERS = "klpqrsuvw"


def fresh_index(taken: Iterable[str | Symbol], letters: str = FRESH_LETTERS) -> Symbol:
    """The index symbol of the first of *letters* whose name is not in *taken*.

    *taken* holds names or symbols: every letter the new index must not clash with,
    free or bound.  The one place symloss picks an index letter.

    >>> fresh_index({"k", "l"})
    p
    >>> fresh_index([index("j")], letters="jk")
    k
    """
    names = {str(s) for s in taken}
    for c in letters:
        if c not in names:
            return index(c)
    raise ValueError(f"ran out of index letters: all of {letters!r} are taken")


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
        dummy = fresh_index(self.free_symbols)
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
        dummy = fresh_index(self.free_symbols)
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


class relu(Function):
    r""":math:`\max(0, x)` with PyTorch's derivative at the kink, :math:`\mathrm{relu}'(0) = 0`.

    SymPy's ``Max(0, x)`` differentiates to ``Heaviside(x)``, whose value at 0 is 1/2;
    ``relu`` differentiates to :class:`step`, which is 0 there, as
    ``torch.nn.functional.relu`` and the hinge of ``multi_margin_loss`` are in autograd.
    It prints as :math:`\max\left(0, x\right)`.
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_number and x.is_extended_real:
            return sp.Max(S.Zero, x)
        if x.is_nonnegative:
            return x
        if x.is_nonpositive:
            return S.Zero
        return None

    def fdiff(self, argindex=1):
        return step(self.args[0])

    def _eval_rewrite_as_Max(self, x, **kwargs):
        return sp.Max(S.Zero, x)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_is_nonnegative(self):
        return True if self.args[0].is_real else None

    def _symloss_latex(self, printer, exp=None):
        tex = rf"\max\left(0, {printer._print(self.args[0])}\right)"
        return rf"{tex}^{{{exp}}}" if exp else tex

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(*printer._print(sp.Tuple(S.Zero, self.args[0])).left("max"))


class step(Function):
    r"""The unit step :math:`\mathbf{1}[x > 0]`, with :math:`\mathbf{1}[0 > 0] = 0`.

    The derivative of :class:`relu`.  Its own derivative is 0 almost everywhere, which
    is also what autograd returns at 0; a power of it is itself.
    """

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_positive:
            return S.One
        if x.is_nonpositive:
            return S.Zero
        return None

    def fdiff(self, argindex=1):
        return S.Zero

    def _eval_power(self, e):
        if e.is_integer and e.is_positive:
            return self
        return None

    def _eval_rewrite_as_Heaviside(self, x, **kwargs):
        return sp.Heaviside(x, 0)

    def _eval_is_real(self):
        return True

    def _eval_is_nonnegative(self):
        return True

    def _symloss_latex(self, printer, exp=None):
        return rf"\mathbf{{1}}\left[{printer._print(self.args[0])} > 0\right]"

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        form = prettyForm(*printer._print(self.args[0]).right(" > 0"))
        return prettyForm(*prettyForm(*form.parens("[", "]")).left("1"))


class rowmax(ExprWithLimits):
    r""":math:`\max_{j} f_j`: the largest value of an expression over one index.

    ``rowmax(f, (j, 1, m))`` is to ``max`` what ``Sum(f, (j, 1, m))`` is to a sum: ``j``
    is bound, and the other indices of ``f`` (the sample ``i``) are free.  Its
    derivative is the subgradient :math:`\sum_j s_j\, \partial f_j/\partial x`, where
    :math:`s_j` (:class:`argmax_share`) is 1 at the maximum and, at a tie, splits the
    gradient equally between the tied maxima (as ``tf.reduce_max``, ``jnp.max`` and
    ``torch.amax`` do in autograd).
    """

    def _eval_derivative(self, x):
        ((var, lo, hi),) = self.limits
        d = fresh_index({*self.free_symbols, *x.free_symbols, var})
        body = self.function.xreplace({var: d})
        return sp.Sum(argmax_share(self, d) * sp.diff(body, x), (d, lo, hi))

    def _eval_is_real(self):
        return self.function.is_real

    def _symloss_latex(self, printer, exp=None):
        ((var, _, _),) = self.limits
        tex = rf"\max_{{{printer._print(var)}}} \left({printer._print(self.function)}\right)"
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        ((var, _, _),) = self.limits
        form = prettyForm(*printer._print(self.function).parens())
        return prettyForm(*form.left(f"max_{var}"))


class argmax_share(Function):
    r"""The share of :math:`\partial \max_j f_j` that goes to index ``d``.

    ``argmax_share(R, d)`` with ``R = rowmax(f, (j, 1, m))`` is :math:`1/c` when
    :math:`f_d` is one of the :math:`c` tied maxima of the row, else 0.  It is constant
    almost everywhere, so its derivative is 0.
    """

    nargs = 2

    def _eval_derivative(self, x):
        return S.Zero

    def _eval_is_real(self):
        return True

    def _eval_is_nonnegative(self):
        return True

    def _symloss_latex(self, printer, exp=None):
        top, d = self.args
        ((var, _, _),) = top.limits
        tex = (
            rf"\mathbf{{1}}\left[{printer._print(d)} = \operatorname*{{arg\,max}}_{{"
            rf"{printer._print(var)}}} \left({printer._print(top.function)}\right)\right]"
        )
        return rf"{tex}^{{{exp}}}" if exp else tex

    def _pretty(self, printer):
        from sympy.printing.pretty.stringpict import prettyForm

        top, d = self.args
        ((var, _, _),) = top.limits
        form = prettyForm(*printer._print(top.function).parens())
        form = prettyForm(*form.left(f"{d} = argmax_{var}"))
        return prettyForm(*prettyForm(*form.parens("[", "]")).left("1"))


class rowgap(Function):
    r"""The gap between the largest and the second largest value of a :class:`rowmax`.

    Zero exactly at a tie, where the row maximum has a kink; used to locate kinks
    (:func:`symloss.symbolic.calculus.kink_arguments`), never inside a loss.
    """

    nargs = 1

    def _eval_is_nonnegative(self):
        return True

    def _symloss_latex(self, printer, exp=None):
        return rf"\operatorname{{gap}}\left({printer._print(self.args[0])}\right)"

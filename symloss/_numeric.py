"""From a symbolic per-element expression to a vectorised, numerically stable NumPy kernel.

Two steps, both derived from the expression and nothing kept by hand:

1. :func:`stabilize` rewrites the expression into an equal one that float64 can
   evaluate at the extremes: ``log(sigmoid(x))`` becomes ``-softplus(-x)``,
   ``log(softmax)`` becomes ``z - logsumexp(z)``, ``t log y`` becomes ``xlogy(t, y)``
   (``0 log 0 = 0``), and so on.  ``tests/test_numeric.py`` proves each rule an identity.
2. :class:`Kernel` lifts every array-valued piece (``Indexed`` elements, row-wise
   softmax and log-sum-exp, sums over a class index, Kronecker deltas) to a NumPy
   array laid out along the expression's free indices, and lambdifies the remaining
   element-wise expression once, with common-subexpression elimination.  No Python
   loop ever runs over data.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp
from sympy import Abs, Add, Function, Indexed, KroneckerDelta, Mul, Pow, S, Sum, Symbol, exp, log
from sympy.codegen.cfunctions import expm1, log1p
from sympy.printing.numpy import NumPyPrinter

from . import _fused
from ._symbols import (
    argmax_share,
    logsumexp,
    relu,
    rowgap,
    rowmax,
    sigmoid,
    softmax,
    softplus,
    step,
    xdivy,
    xlogy,
)


class maximum(Function):
    """Element-wise ``max(a, b)`` (``numpy.maximum``); kernel-only."""

    nargs = 2


class minimum(Function):
    """Element-wise ``min(a, b)`` (``numpy.minimum``); kernel-only."""

    nargs = 2


class where_nonneg(Function):
    """``a if x >= 0 else b``, element-wise; a kernel-only helper (``numpy.where``)."""

    nargs = 3


def _np_sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _np_xlogy(x, y):
    # Kernels run under np.errstate(all ignored): log(0) and 0 * -inf are masked here.
    return np.where(x != 0, x * np.log(y), 0.0)


def _np_xdivy(x, y):
    return np.where(x != 0, x / y, 0.0)


def _np_relu(x):
    return np.maximum(x, 0.0)


def _np_step(x):
    # relu'(0) = 0, as autograd; a cast, not numpy.where (3.5 ns per element on
    # unpredictable signs, against 0.5).
    return np.greater(x, 0.0).astype(np.float64)


def _np_where_nonneg(x, a, b):
    return np.where(x >= 0, a, b)


_NUMPY_FUNCS = {
    "sigmoid": _np_sigmoid,
    "xlogy": _np_xlogy,
    "xdivy": _np_xdivy,
    "relu": _np_relu,
    "step": _np_step,
    "where_nonneg": _np_where_nonneg,
    "maximum": np.maximum,
    "minimum": np.minimum,
}


#: Row maxima over up to this many columns run as a loop of element-wise maxima over
#: the columns: NumPy reduces a short last axis element by element (2.9 ns per element
#: for the max over 10 columns, 0.6 ns column by column).
_MAX_COLUMN_LOOP = 64


def _reduce_rows(ufunc: np.ufunc, vals: np.ndarray, keepdims: bool = False) -> np.ndarray:
    """``ufunc.reduce(vals, axis=-1)`` for ``numpy.maximum`` and ``numpy.add``, fast for
    short rows.  The max is the same; sums add in another order than NumPy's pairwise
    one (a last-bit difference): column by column below 8 columns, else through
    ``einsum`` (0.28 ns per element over 10 columns, against 1.4 for ``sum``).
    """
    m = vals.shape[-1]
    if vals.ndim < 2 or m < 2:
        return ufunc.reduce(vals, axis=-1, keepdims=keepdims)
    done = _compiled_rows("row_reduce", ufunc, vals)
    if done is not None:
        return done[..., None] if keepdims else done
    if ufunc is np.add and m >= 8:
        total = np.einsum("...j->...", vals)
        return total[..., None] if keepdims else total
    if ufunc is np.maximum and m > _MAX_COLUMN_LOOP:
        return ufunc.reduce(vals, axis=-1, keepdims=keepdims)
    acc = ufunc(vals[..., 0], vals[..., 1])
    for j in range(2, m):
        ufunc(acc, vals[..., j], out=acc)
    return acc[..., None] if keepdims else acc


def _row_stats(z, cache: dict, name: str):
    """Row maximum, shifted exponentials and their row sums of ``z``, once per call.

    Softmax and log-sum-exp of the same logits share them, so a fused value and
    gradient kernel exponentiates the logits once.
    """
    key = ("row_stats", name)
    if key not in cache:
        cache[key] = _compiled_rows("row_stats", z)
    if cache[key] is None:
        top = _reduce_rows(np.maximum, z, keepdims=True)
        e = np.exp(z - top)
        cache[key] = (top, e, _reduce_rows(np.add, e, keepdims=True))
    return cache[key]


def _row_logsumexp(z, cache, name):
    top, _, total = _row_stats(z, cache, name)
    return (top + np.log(total))[..., 0]


def _row_softmax(z, cache, name):
    key = ("softmax", name)  # once per block, however many leaves hold it
    if key not in cache:
        _, e, total = _row_stats(z, cache, name)
        done = _compiled_rows("row_divide", e, total)
        cache[key] = done if done is not None else e / total
    return cache[key]


def _compiled_rows(name: str, *args):
    """The C row reduction *name* of :mod:`symloss._compiled` on *args*, where the
    backend runs compiled code for them (:func:`_use_compiled`); None to use NumPy's."""
    if not _use_compiled(args):
        return None
    from . import _compiled

    try:
        return getattr(_compiled, name)(*args)
    except _compiled.Unavailable as exc:
        return _fallback(exc)


_WARNED: set[str] = set()


def _fallback(exc: Exception) -> None:
    """Under ``"c"``, the error; under ``"auto"``, None (NumPy's code runs instead),
    with one warning per cause unless the cause is simply that there is no compiler."""
    if BACKEND == "c":
        raise BackendError(f"SYMLOSS_BACKEND=c: {exc}") from None
    if not getattr(exc, "quiet", False) and str(exc) not in _WARNED:
        _WARNED.add(str(exc))
        warnings.warn(f"symloss runs NumPy code instead: {exc}", RuntimeWarning, stacklevel=2)
    return None


def _depends_on(expr: sp.Basic, bases: frozenset) -> bool:
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Indexed) and node.base in bases:
            return True
        if isinstance(node, (softmax, logsumexp)) and node.args[0] in bases:
            return True
    return False


def stabilize(expr: sp.Expr, targets: frozenset = frozenset()) -> sp.Expr:
    """An expression equal to *expr* that float64 evaluates without overflow or ``0 * inf``.

    Parameters
    ----------
    expr : sympy.Expr
        Per-element expression.
    targets : frozenset of IndexedBase
        Arrays that may hold exact zeros (targets).  A product ``a * log(b)`` or
        ``a / b`` whose ``a`` depends on them becomes ``xlogy(a, b)`` or
        ``xdivy(a, b)``, so that a zero target contributes exactly 0, as the limit does.
    """

    def rule(node: sp.Basic) -> sp.Basic:
        if isinstance(node, log):
            (arg,) = node.args
            if isinstance(arg, sigmoid):
                return -softplus(-arg.args[0])
            if isinstance(arg, Add) and isinstance(1 - arg, sigmoid):
                return -softplus((1 - arg).args[0])
            if isinstance(arg, softmax):
                base, r, c = arg.args
                return base[r, c] - logsumexp(base, r)
            return node
        if isinstance(node, Add) and isinstance(1 - node, sigmoid):
            return sigmoid(-(1 - node).args[0])
        if isinstance(node, (Add, Mul)) and node.has(sp.sinh, sp.tanh):
            node = _hyperbolic(node)
        if isinstance(node, Add) and targets:
            node = _residual(node, targets)
        if isinstance(node, Mul):
            node = _merge_powers(node)
            if isinstance(node, xdivy):  # the cofactor may still weight a log by a target
                return xdivy(rule(node.args[0]), node.args[1])
        if isinstance(node, Mul) and targets:
            factors = list(node.args)
            weight = [f for f in factors if _depends_on(f, targets)]
            rest = [f for f in factors if not _depends_on(f, targets)]
            logs = [f for f in rest if isinstance(f, log)]
            if weight and len(logs) == 1:
                others = [f for f in rest if f is not logs[0]]
                return Mul(*others) * xlogy(Mul(*weight), logs[0].args[0])
            own = [f for f in weight if isinstance(f, log)]
            if not logs and len(own) == 1 and len(weight) > 1:
                # t log t (the KL divergence's t log t - t y): a target times the log of
                # a target, 0 at t = 0 as well.
                scale = Mul(*[f for f in weight if f is not own[0]])
                return Mul(*rest) * xlogy(scale, own[0].args[0])
            # t / y**k for any k >= 1 (a Hessian's t / y**2): 0 where t is 0, as the limit.
            inverse = [
                f
                for f in rest
                if isinstance(f, Pow) and f.exp.is_Integer and f.exp < 0 and f.base.has(Indexed)
            ]
            if weight and len(inverse) == 1:
                others = [f for f in rest if f is not inverse[0]]
                return Mul(*others) * xdivy(Mul(*weight), inverse[0].base ** -inverse[0].exp)
        return node

    # First on the derivative as SymPy wrote it, before the rules above regroup its terms.
    expr = _bottom_up(expr, _expm1_pairs)
    return _bottom_up(expr, rule)


def _expm1_pairs(node: sp.Basic) -> sp.Basic:
    """``c expm1(x) - c exp(x)`` -> ``-c``.

    The derivative of ``y**b expm1(b L)/b`` (a Tweedie deviance, ``L = log t - log y``)
    holds ``expm1(b L) - exp(b L)``, which float64 loses entirely once ``exp(b L)``
    passes 2**53, and which is NaN where both are inf.
    """
    if not (isinstance(node, Add) and node.has(expm1)):
        return node
    terms = list(node.args)
    for term in node.args:
        found = [f for f in Mul.make_args(term) if isinstance(f, expm1)]
        if len(found) != 1 or term not in terms:
            continue
        c = term / found[0]
        partner = -c * exp(found[0].args[0])
        if partner in terms:
            terms.remove(term)
            terms.remove(partner)
            terms.append(-c)
    return Add(*terms)


def _residual(node: Add, targets: frozenset) -> sp.Expr:
    """``p + (-1 - x) t + y`` -> ``(p - t) (1 + x) + (y - x p)``: the residual kept whole.

    A gradient through a softmax or sigmoid ``p`` holds the residual ``p - t`` of ``p``
    and its target ``t``, and the derivation collects the terms in ``t``: poly-1's
    ``p - t + eps p (S - t)`` (``S = sum_k p_k t_k``) comes out as
    ``eps p S + (-eps p - 1) t + p``, which leaves a rounding residue of 1e-16 at
    ``p = t = S = 1``, where the true value is 0 (or ``e^-1e4``).  Any ``E`` linear in
    ``t`` equals ``(p - t) Q + E|_{t=p}`` with ``Q = -dE/dt``: ``p - t`` is exact near
    ``p = t``, and the rest (``eps p (S - p)``) holds its own differences whole.

    Applied where ``p`` (times a number) is a term of the sum and ``Q`` depends on ``p``
    (``p - t`` and a label-smoothed ``p - (1 - eps) t - eps/m`` stay as they are).
    """
    sums = {s: sp.Dummy("sum") for s in node.atoms(Sum)}  # t[i, k] in a sum is another element
    flat = node.xreplace(sums)
    terms = {term.as_coeff_Mul()[1] for term in flat.args}
    for t in sorted((a for a in flat.atoms(Indexed) if a.base in targets), key=str):
        matching = [
            p
            for p in flat.atoms(softmax, sigmoid)
            if p in terms
            and (
                p.args[1:] == t.indices
                if isinstance(p, softmax)
                else isinstance(p.args[0], Indexed) and p.args[0].indices == t.indices
            )
        ]
        if len(matching) != 1:
            continue
        (p,) = matching
        slope = sp.diff(flat, t)
        if not slope.has(p) or slope.has(t):
            continue
        rest = sp.factor_terms(sp.expand_mul(flat.xreplace({t: p})))
        return ((p - t) * -slope + rest).xreplace({d: s for s, d in sums.items()})
    return node


def _merge_powers(node: Mul) -> sp.Expr:
    """``x * b**g * b**-k`` -> ``xdivy(x, b**(k - g))``: ``x b**(g - k)``, 0 where x is 0.

    SymPy keeps the two powers apart unless ``b`` is known positive, and the derivative
    of a focal factor ``(1 - p)**gamma`` is ``gamma (1 - p)**gamma ... / (1 - p)``: 0/0
    where ``1 - p`` underflows to 0.  The merged power is finite there for
    ``gamma >= k``.  For ``gamma < k`` it is inf, and the cofactor ``x`` has underflowed
    to 0 with ``b`` (it holds ``b' = p (1 - p)`` or ``log p = log(1 - b)``): where the
    merged term enters the gradient through the sigmoid or softmax Jacobian, of the size
    of ``1 - p``, its contribution is below the float64 range, and ``xdivy``'s
    ``0 / y = 0`` gives that float64 value where ``0 * inf`` gave NaN.
    """
    exponents: dict[sp.Basic, list[sp.Expr]] = {}
    for f in node.args:
        b, e = f.as_base_exp()
        exponents.setdefault(b, []).append(e)
    merge = {}
    for b, es in exponents.items():
        symbolic = [e for e in es if not e.is_number]
        negative = [e for e in es if e.is_Integer and e < 0]
        # Only sums underflow to 0 from non-zero inputs (1 - p where p rounds to 1).
        if isinstance(b, Add) and len(es) == 2 and len(symbolic) == 1 and len(negative) == 1:
            merge[b] = b ** (-negative[0] - symbolic[0])
    if not merge:
        return node
    keep = [f for f in node.args if f.as_base_exp()[0] not in merge]
    return xdivy(Mul(*keep), Mul(*merge.values()))


def _hyperbolic(node: Add | Mul) -> sp.Expr:
    """``sinh(x)**k / cosh(x)**k`` -> ``tanh(x)**k`` and ``1 - tanh(x)**2`` -> ``1/cosh(x)**2``.

    The ratio is inf/inf beyond |x| = 710, and ``1 - tanh**2`` cancels to 0 beyond
    |x| = 19 while its true value is still far above the smallest double.
    """
    if isinstance(node, Mul):
        powers = node.as_powers_dict()
        for s in [b for b in powers if isinstance(b, sp.sinh)]:
            c = sp.cosh(s.args[0])
            if powers.get(c) == -powers[s]:
                powers[sp.tanh(s.args[0])] = powers.pop(s)
                del powers[c]
        return Mul(*(b**e for b, e in powers.items()))
    if S.One in node.args:
        for term in node.args:
            square = -term
            if isinstance(square, Pow) and square.exp == 2 and isinstance(square.base, sp.tanh):
                rest = [a for a in node.args if a not in (S.One, term)]
                return Add(*rest) + 1 / sp.cosh(square.base.args[0]) ** 2
    return node


def _bottom_up(expr: sp.Basic, rule: Callable[[sp.Basic], sp.Basic]) -> sp.Basic:
    if expr.args and not isinstance(expr, (Indexed, softmax, logsumexp)):
        expr = expr.func(*[_bottom_up(a, rule) for a in expr.args])
    return rule(expr)


def _expand_kernel_functions(expr: sp.Expr) -> sp.Expr:
    """Write softplus and sigmoid through ``exp(-|x|)`` so CSE can share it.

    ``sigmoid(x) = (1 if x >= 0 else e) / (1 + e)`` with ``e = exp(-|x|)`` never
    overflows and is accurate to an ulp on both tails; ``sigmoid(-x)`` reuses ``e``.
    """

    def rule(node):
        if isinstance(node, softplus):
            x = node.args[0]
            return relu(x) + log1p(exp(-Abs(x)))
        if isinstance(node, log) and isinstance(node.args[0], sp.cosh):
            # log cosh x: 2 sinh^2(x/2) = cosh x - 1 without cancellation near 0, and
            # |x| - log 2 + log1p(e^(-2|x|)) without overflow (tests/test_regression.py).
            x = node.args[0].args[0]
            return sp.Piecewise(
                (log1p(2 * sp.sinh(x / 2) ** 2), Abs(x) < 1),
                (Abs(x) + log1p(exp(-2 * Abs(x))) - log(2), True),
            )
        if isinstance(node, log) and isinstance(node.args[0], Add) and S.One in node.args[0].args:
            return log1p(node.args[0] - 1)  # log(1 + x), accurate for small x
        if isinstance(node, sigmoid):
            x = node.args[0]
            e = exp(-Abs(x))
            return where_nonneg(x, S.One, e) / (1 + e)
        if isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
            a, b = node.args
            if isinstance(node, sp.Max) and S.Zero in (a, b):
                return relu(b if a == 0 else a)
            return (maximum if isinstance(node, sp.Max) else minimum)(a, b)
        return node

    return _bottom_up(expr, rule)


Layout = Sequence[tuple[Symbol, Symbol]]  # (index letter, size symbol), in axis order

#: Nodes whose value in float64 does not depend on how a loop is vectorised: IEEE
#: operations rounded once (with FP contraction off), selects and comparisons.
_EXACT = (
    Add,
    Mul,
    Indexed,
    Symbol,
    sp.Number,
    Abs,
    relu,
    step,
    maximum,
    minimum,
    sp.Piecewise,
    sp.Max,
    sp.Min,
    sp.logic.boolalg.BooleanAtom,
    sp.core.relational.Relational,
    sp.functions.elementary.piecewise.ExprCondPair,
)


def _exact(expr: sp.Basic) -> bool:
    """Whether *expr* uses only exactly rounded operations (powers: products, one
    reciprocal or a square root; see :meth:`symloss._fused._Emitter._pow`)."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Pow):
            if node.exp not in (2, 3, -1, -2, -3, S.Half):
                return False
        elif isinstance(node, (sp.Tuple, sp.IndexedBase)) or not node.args:
            continue
        elif not isinstance(node, _EXACT):
            return False
    return True


def _row_form(exprs: Sequence[sp.Expr], layout: Layout) -> tuple[list, list]:
    """A kernel over rows ``(i, j)`` with its row statistics made symbols, for the
    compiled loop to compute row by row (:func:`symloss._compiled.source`'s *stats*).

    Argmax shares are written with the sums and maxima NumPy's code computes them
    from (``share = [f_d = max] / #[f_k = max]``); then every sum and maximum over the
    row, innermost first, becomes a symbol (softmax and log-sum-exp stay leaves, made
    by the row helpers of :mod:`symloss._compiled`).  Returns
    ``(stats, exprs)``: *stats* lists ``(symbol, summand over (i, j), "sum" | "max")``
    in an order they can be computed in, one per node (the compiled loop computes
    equal summands once).  Raises
    :class:`symloss._fused.Unsupported` for what is not a statistic of a whole row (a
    sum that varies along ``j``, one over another length, several indices at once).
    """
    col, size = layout[-1]
    found: dict[tuple, Symbol] = {}
    stats: list[tuple[Symbol, sp.Expr, str]] = []

    def statistic(body, limits, op, bound):
        if len(limits) != 1 or limits[0][1] != 1 or limits[0][2] != size:
            raise _fused.Unsupported("a row statistic that is not over one whole row")
        var = limits[0][0]
        if (body.free_symbols - {var}) & (bound | {col}):
            raise _fused.Unsupported("a row statistic that varies along the row")
        # One symbol per node, as Kernel._lift makes one leaf per node: two sums that
        # differ only in their index letter are two symbols (S_k / S_l must stay 0/0
        # where S is 0, not become 1), and no assumptions (log(exp(S)) stays).  The C
        # loop computes equal summands once (source() sees one name for both).
        key = (op, body, tuple(limits))
        if key not in found:
            summand = walk(body, bound | {var}).xreplace({var: col})
            found[key] = sp.Dummy(f"R{len(stats)}")
            stats.append((found[key], summand, op))
        return found[key]

    def walk(node, bound):
        if isinstance(node, (Indexed, Symbol)) or not node.args:
            return node
        if isinstance(node, Sum):
            return statistic(node.function, node.limits, "sum", bound)
        if isinstance(node, rowmax):
            return statistic(node.function, node.limits, "max", bound)
        if isinstance(node, (softmax, logsumexp)):
            # Leaves: NumPy's row_stats helper exponentiates each logit once; in the
            # loop, a row's max, sum and outputs would be three passes and two exps.
            return node
        if isinstance(node, argmax_share):
            best, d = node.args
            ((var, lo, hi),) = best.limits
            # The maximised values are computed again in each loop, vectorised
            # differently: only operations rounded exactly (not libm's, whose vector and
            # scalar forms may differ by an ulp) give the same values, and so the same
            # ties, in all of them.
            if not _exact(best.function):
                raise _fused.Unsupported("argmax shares of values computed with libm")
            top = walk(best, bound)
            hit = sp.Piecewise(
                (S.One, sp.Eq(best.function, top, evaluate=False)), (S.Zero, True), evaluate=False
            )
            count = statistic(hit, best.limits, "sum", bound)
            return walk(hit.xreplace({var: d}), bound) / count
        if isinstance(node, (rowgap, KroneckerDelta)):
            raise _fused.Unsupported(f"no row form for {type(node).__name__}")
        return node.func(*[walk(a, bound) for a in node.args])

    return stats, [walk(e, frozenset()) for e in exprs]


def _placer(indices: Sequence[sp.Basic], layout: Layout) -> Callable[[np.ndarray], np.ndarray]:
    """A function viewing an array whose axes are *indices* as broadcastable along
    *layout*; the axes are matched once, here, not for every block."""
    letters = [v for v, _ in layout]
    try:
        axes = [letters.index(ix) for ix in indices]
    except ValueError:
        message = f"index {indices} is not among the layout {letters}"

        def fail(arr):
            raise ValueError(message)

        return fail
    if axes == list(range(len(letters))):
        return lambda arr: arr
    order = sorted(range(len(axes)), key=lambda a: axes[a])

    def place(arr: np.ndarray) -> np.ndarray:
        arr = np.transpose(arr, order)
        shape = [1] * len(letters)
        for pos, a in enumerate(sorted(axes)):
            shape[a] = arr.shape[pos]
        return arr.reshape(shape)

    return place


Leaf = Callable[[Mapping[str, np.ndarray], Mapping[Symbol, int], dict], np.ndarray]


class Kernel:
    """A per-element expression compiled to a NumPy function of named arrays.

    Calling ``kernel(arrays, sizes)`` returns an array broadcastable to the layout's
    shape; ``arrays`` maps array names (``"y"``, ``"t"``, ``"z"``) to ndarrays whose
    axes follow the layout, and ``sizes`` maps the size symbols to integers.
    """

    def __init__(self, expr: sp.Expr | tuple[sp.Expr, ...], layout: Layout):
        self.layout = tuple(layout)
        self.expr = expr
        # A tuple: several outputs sharing subexpressions.
        exprs = expr if isinstance(expr, tuple) else (expr,)
        leaves, outputs, arrays = self._lift_all([_expand_kernel_functions(e) for e in exprs])
        self._leaves = list(leaves.values())
        body = outputs if isinstance(expr, tuple) else outputs[0]
        replacements, reduced = sp.cse(outputs)  # once, for both code generators
        # lambdify's code is compiled on first use (the fallback and the tests' reference).
        self._lambdify_input = (list(leaves), body, replacements, reduced)
        try:
            self._inplace = _fused.compile_fused(replacements, reduced, list(leaves), arrays)
        except _fused.Unsupported:
            self._inplace = None
        #: Sizes that some sum in the kernel runs over (a sum over the samples forbids
        #: evaluating the kernel block by block).
        self.sums_over = frozenset(
            hi for e in exprs for node in e.atoms(Sum) for _, _, hi in node.limits
        )

    def _lift_all(self, exprs, keep=()) -> tuple[dict[Symbol, Leaf], list, list]:
        """``(leaves, bodies, arrays)``: *exprs* lifted (:meth:`_lift`) with one memo, so
        that CSE sees the value's and the gradient's z[i] as the same symbol and shares
        exp(-|z|) and friends; *arrays* are the leaves that hold arrays, not numbers."""
        leaves: dict[Symbol, Leaf] = {}
        memo: dict[sp.Basic, Symbol] = {}
        bodies = [self._lift(e, leaves, memo, keep) for e in exprs]
        arrays = [sym for node, sym in memo.items() if not isinstance(node, Symbol)]
        return leaves, bodies, arrays

    def _lift(self, expr: sp.Basic, leaves: dict[Symbol, Leaf], memo: dict, keep) -> sp.Basic:
        """*expr* with its array-valued pieces replaced by leaf symbols (added to
        *leaves* and *memo*, each with the function that makes its array); the symbols
        in *keep* stay as they are."""
        layout = self.layout

        def leaf(node: sp.Basic, make: Leaf) -> Symbol:
            if node not in memo:
                sym = sp.Dummy(f"leaf{len(leaves)}")
                memo[node] = sym
                leaves[sym] = make
            return memo[node]

        def walk(node: sp.Basic) -> sp.Basic:
            if node in keep:
                return node
            if isinstance(node, Indexed):
                name, place = str(node.base.label), _placer(node.indices, layout)
                return leaf(node, lambda a, s, c: place(np.asarray(a[name])))
            if isinstance(node, softmax):
                base, r, c = node.args
                name, place = str(base.label), _placer((r, c), layout)
                return leaf(node, lambda a, s, cache: place(_row_softmax(a[name], cache, name)))
            if isinstance(node, logsumexp):
                base, r = node.args
                name, place = str(base.label), _placer((r,), layout)
                return leaf(node, lambda a, s, cache: place(_row_logsumexp(a[name], cache, name)))
            if isinstance(node, KroneckerDelta):
                p, q = node.args
                size, place = dict(layout)[p], _placer((p, q), layout)
                return leaf(node, lambda a, s, c: place(np.eye(s[size])))
            if isinstance(node, Sum):
                return leaf(node, self._sum_leaf(node))
            if isinstance(node, (rowmax, argmax_share, rowgap)):
                return leaf(node, self._row_reduction_leaf(node))
            if isinstance(node, Symbol) and node.is_integer and node.is_positive:
                return leaf(node, lambda a, s, c: np.float64(s[node]))
            if isinstance(node, Symbol):  # a hyperparameter, passed by name
                name = str(node)
                return leaf(node, lambda a, s, c: a[name])
            if node.args:
                return node.func(*[walk(x) for x in node.args])
            return node

        return walk(expr)

    def _sum_leaf(self, node: Sum) -> Leaf:
        (var, lo, hi), *more = node.limits
        inner = Sum(node.function, *more) if more else node.function
        if lo != 1:
            raise ValueError(f"sums must start at 1, not {lo}")
        var, inner = self._unshadow(var, inner)
        kernel = _sum_kernel(inner, (*self.layout, (var, hi)))
        key = ("sum", _statistic_id(node))

        def evaluate(a, s, cache):
            # One sum recurs in several kernels of a loss, and inside other sums, whose
            # layouts add axes after this one's (the multi-class margin's S_i in its
            # gradient's sums): computed once per block, a new array, kept.
            total = lambda: kernel.evaluate(a, s, cache, summed=(0,))  # noqa: E731
            return _statistic(cache, key, len(self.layout), total)

        return evaluate

    def _unshadow(self, var: Symbol, inner: sp.Expr) -> tuple[Symbol, sp.Expr]:
        """Rename a bound index that is also a layout letter (a kink or a summand
        evaluated over the elements ``(i, j)`` may hold a sum over ``j``)."""
        if var not in dict(self.layout):
            return var, inner
        fresh = sp.Dummy(str(var), integer=True)
        return fresh, inner.xreplace({var: fresh})

    def _row_reduction_leaf(self, node: sp.Basic) -> Leaf:
        """``rowmax`` (the maximum over its index), ``rowgap`` (top minus second) and
        ``argmax_share(R, d)`` (1/c at the c tied maxima of R's row, else 0, at ``d``)."""
        top = node if isinstance(node, rowmax) else node.args[0]
        ((var, lo, hi),) = top.limits
        if lo != 1:
            raise ValueError(f"row maxima must start at 1, not {lo}")
        var, inner = self._unshadow(var, top.function)
        kernel = Kernel(inner, (*self.layout, (var, hi)))
        ndim = len(self.layout) + 1
        key = ("rowmax", _statistic_id(top))

        def row(a, s, cache):
            # Reduced (max, partition, comparison) before anything else runs: scratch is fine.
            vals = np.asarray(kernel.evaluate(a, s, cache), dtype=np.float64)
            vals = vals.reshape((1,) * (ndim - vals.ndim) + vals.shape)
            return np.broadcast_to(vals, vals.shape[:-1] + (int(s[hi]),))

        def top_of(a, s, c):
            # The row maximum, once per block: argmax_share needs it too.  + 0.0: a
            # maximum of zero is +0.0, whatever order the ties of +0 and -0 came in
            # (the compiled loop's, NumPy's and the C helper's orders differ).
            top = lambda: _reduce_rows(np.maximum, row(a, s, c)) + 0.0  # noqa: E731
            return _statistic(c, key, ndim - 1, top)

        if isinstance(node, rowmax):
            return top_of
        if isinstance(node, rowgap):

            def gap(a, s, c):
                vals = row(a, s, c)
                if vals.shape[-1] < 2:
                    return np.full(vals.shape[:-1], np.inf)
                two = np.partition(vals, -2, axis=-1)[..., -2:]
                return two[..., 1] - two[..., 0]

            return gap
        axis = [v for v, _ in self.layout].index(node.args[1])

        def share(a, s, c):
            best = top_of(a, s, c)[..., None]  # first: row() returns scratch
            vals = row(a, s, c)
            out = _compiled_rows("row_share", vals, best)
            if out is None:
                hit = (vals == best).astype(np.float64)
                out = hit / _reduce_rows(np.add, hit, keepdims=True)
            # The share at var = d, placed on d's axis of the layout.
            if out.shape[axis] == 1:
                return np.moveaxis(np.take(out, 0, axis=axis), -1, axis)
            return np.moveaxis(np.diagonal(out, axis1=axis, axis2=ndim - 1), -1, axis)

        return share

    @cached_property
    def _fn(self):
        leaves, body, replacements, reduced = self._lambdify_input
        return sp.lambdify(
            leaves,
            body,
            modules=[_NUMPY_FUNCS, "numpy"],
            cse=lambda _: (replacements, reduced if isinstance(self.expr, tuple) else reduced[0]),
            printer=_printer(),
        )

    def __call__(self, arrays: Mapping[str, np.ndarray], sizes: Mapping[Symbol, int], cache=None):
        cache = {} if cache is None else cache
        with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
            return self._fn(*[make(arrays, sizes, cache) for make in self._leaves])

    @property
    def fused(self) -> bool:
        """Whether :meth:`evaluate` runs generated code (else ``lambdify``'s)."""
        return self._inplace is not None and _backend() != "lambdify"

    @cached_property
    def _compiled(self):
        """The same statements as one C loop (:mod:`symloss._compiled`), or None."""
        from . import _compiled

        try:
            return _compiled.CompiledKernel(*self._inplace.statements, len(self._leaves))
        except _fused.Unsupported:
            return None

    @cached_property
    def _row_program(self):
        """``(leaves, compiled)``: the kernel with its row statistics (sums, maxima,
        argmax shares) computed inside the C loop, row by row (:func:`_row_form`), so
        that a block is read once; None for a kernel with none, or with one that is
        not over a whole row."""
        from . import _compiled

        exprs = self.expr if isinstance(self.expr, tuple) else (self.expr,)
        if len(self.layout) != 2 or self._inplace is None:
            return None
        try:
            stats, outputs = _row_form([_expand_kernel_functions(e) for e in exprs], self.layout)
            if not stats:
                return None
            keep = [sym for sym, _, _ in stats]
            leaves, bodies, arrays = self._lift_all(
                [e for _, e, _ in stats] + outputs, frozenset(keep)
            )
            steps, names = _fused.statements(*sp.cse(bodies), [*leaves, *keep], [*arrays, *keep])
            loop = _compiled.CompiledKernel(
                steps,
                names[len(stats) :],
                len(leaves),
                [(name, op) for name, (_, _, op) in zip(names, stats)],
            )
        except _fused.Unsupported:
            return None
        return list(leaves.values()), loop

    def evaluate(self, arrays, sizes, cache=None, *, summed=(), into=None):
        """As calling the kernel, through generated code: the compiled C loop
        (:mod:`symloss._compiled`) or the fused in-place NumPy code (:mod:`symloss._fused`),
        as :data:`BACKEND` says.

        Outputs numbered in *summed* come summed over the layout's last axis (new
        arrays of the leading shape).  *into* maps output numbers to ``(array,
        divisor)``: that output divided by *divisor*, written into *array* (of the
        layout's shape) and returned.  The compiled loop does both as it goes.
        Other arrays returned belong to the calling thread's scratch pool: use them
        before this thread's next ``evaluate``.
        """
        multi = isinstance(self.expr, tuple)
        into = into or {}
        length = int(sizes[self.layout[-1][1]])
        outs = None
        if not self.fused:
            outs = self(arrays, sizes, cache)
            outs = list(outs) if multi else [outs]
        else:
            cache = {} if cache is None else cache
            how = {"summed": summed, "length": length, "into": into}
            with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
                # Decided on the inputs, before any leaf is made: the row program's
                # leaves are the inputs themselves, the other's include row statistics.
                program = self._row_program if _use_compiled(arrays.values()) else None
                if program is not None:
                    values = [make(arrays, sizes, cache) for make in program[0]]
                    outs = self._run_compiled(values, program[1], **how)
                if outs is None:
                    values = [make(arrays, sizes, cache) for make in self._leaves]
                    if _use_compiled(values):
                        outs = self._run_compiled(values, self._compiled, **how)
                summed = () if outs is not None else summed  # summed in the loop
                if outs is None:
                    outs = self._inplace(*values)
        ndim = len(self.layout)
        for k in summed:
            # Only the summed axis needs its true length: a value constant along it
            # counts m times.  Other axes broadcast later.
            v = np.asarray(outs[k], dtype=np.float64)
            v = v.reshape((1,) * (ndim - v.ndim) + v.shape)
            outs[k] = _reduce_rows(np.add, np.broadcast_to(v, v.shape[:-1] + (length,)))
        for k, (array, divisor) in into.items():
            if outs[k] is not array:
                np.divide(outs[k], divisor, out=array)
                outs[k] = array
        return outs if multi else outs[0]

    @staticmethod
    def _run_compiled(values, loop, **how):
        from . import _compiled

        if loop is None:
            return None  # an operation with no C form: the NumPy code runs
        # "auto" leaves inputs that would have to be expanded to NumPy's broadcasting.
        expand = BACKEND == "c"
        try:
            return loop(*values, expand=expand, **how)
        except _compiled.Unavailable as exc:
            return _fallback(exc)


def _canonical(node: sp.Basic) -> sp.Basic:
    """*node* (a Sum or a rowmax) with its bound indices renamed in a fixed way: the
    value's Σ_j t_ij y_ij and the gradient's Σ_l t_il y_il are one statistic."""
    while len(_BOUND) < len(node.limits):
        _BOUND.append(sp.Dummy(f"b{len(_BOUND)}", integer=True))  # never a user's symbol
    return node.xreplace({var: _BOUND[k] for k, (var, *_) in enumerate(node.limits)})


def _statistic_id(node: sp.Basic) -> int:
    """A small integer per row statistic (see :func:`_canonical`): per-block cache keys
    that compare without SymPy's ``==``."""
    key = _canonical(node)
    with _STATISTICS_LOCK:  # kernels may be built on several threads at once
        return _STATISTICS.setdefault(key, len(_STATISTICS))


_BOUND: list[sp.Dummy] = []
_STATISTICS: dict[sp.Basic, int] = {}
_STATISTICS_LOCK = threading.Lock()


def _statistic(cache: dict, key, axes: int, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """A row statistic (a new array from *compute*), once per block's *cache*, with
    *axes* axes.  A kernel whose layout had more or fewer trailing axes may have cached
    it (a sub-kernel's layout extends its parent's): those axes are of length 1 and
    are reshaped away or added; otherwise it is computed again."""
    if key not in cache:
        cache[key] = compute()
    done = cache[key]
    if done.ndim == axes:
        return done
    if any(d != 1 for d in done.shape[axes:]):
        return compute()
    return done.reshape(done.shape[:axes] + (1,) * (axes - done.ndim))


@lru_cache(maxsize=1024)
def _sum_kernel(expr: sp.Expr, layout: tuple) -> Kernel:
    """The kernel of a sum's summand, compiled once: the same row sum (the cosine's
    sum_k y_ik t_ik) recurs in the value, gradient and Hessian kernels of a loss."""
    return Kernel(expr, layout)


class _KernelPrinter(NumPyPrinter):
    """NumPy code printer that writes reciprocals as divisions (``x**-1.0`` is a slow pow)."""

    def _print_Pow(self, expr, rational=False):
        if expr.exp == -1:
            return f"1/({self._print(expr.base)})"
        if expr.exp == 2:
            base = self._print(expr.base)
            return f"(({base})*({base}))"
        return super()._print_Pow(expr, rational=rational)


def _printer() -> _KernelPrinter:
    # The settings lambdify itself uses, plus our kernel-only functions by name.
    return _KernelPrinter(
        {
            "fully_qualified_modules": False,
            "inline": True,
            "allow_unknown_functions": True,
            "user_functions": {name: name for name in _NUMPY_FUNCS},
        }
    )


# ---------------------------------------------------------------- blocked evaluation
#: Rows per block are chosen so that one block of one array holds about this many
#: float64 elements; None (the default) picks by backend (:func:`block_elements`).
BLOCK_ELEMENTS = int(os.environ.get("SYMLOSS_BLOCK_ELEMENTS", 0)) or None
#: How kernels are evaluated (each block by block):
#:
#: - ``"auto"``: the compiled C loop (:mod:`symloss._compiled`) on blocks of at least
#:   :data:`COMPILE_MIN_ELEMENTS` elements, where a C compiler works; else ``"fused"``;
#: - ``"c"``: the compiled C loop on every block (an error if no compiler works);
#: - ``"fused"``: generated in-place NumPy code (:mod:`symloss._fused`), no compiler;
#: - ``"lambdify"``: SymPy's lambdify, one allocation per operation (the reference).
BACKEND = os.environ.get("SYMLOSS_BACKEND", "auto")
#: Blocks smaller than this run NumPy's fused code under ``"auto"``: a small input
#: never waits for the compiler (about 0.1 s per kernel, once per machine: the
#: compiled objects are cached on disk).
COMPILE_MIN_ELEMENTS = int(os.environ.get("SYMLOSS_COMPILE_MIN_ELEMENTS", 65536))


class BackendError(RuntimeError):
    """The backend asked for (``SYMLOSS_BACKEND``) cannot run here."""


_BACKENDS = ("auto", "c", "fused", "lambdify")


def _backend() -> str:
    if BACKEND not in _BACKENDS:
        raise BackendError(f"SYMLOSS_BACKEND={BACKEND!r} is not one of {', '.join(_BACKENDS)}")
    return BACKEND


def _use_compiled(values) -> bool:
    """Whether the compiled C loop runs on a block holding these arrays: always under
    ``"c"``, under ``"auto"`` for a block of :data:`COMPILE_MIN_ELEMENTS` or more."""
    backend = _backend()
    return backend == "c" or (
        backend == "auto"
        and any(np.size(v) >= COMPILE_MIN_ELEMENTS for v in values if isinstance(v, np.ndarray))
    )


def block_elements() -> int:
    """Elements per block: :data:`BLOCK_ELEMENTS` if set, else 131,072 (1 MiB per
    array) for NumPy's code, whose temporaries must stay in the 2 MiB L2 cache of the
    development machine, and 262,144 where the compiled loop runs, which has no
    temporaries and pays Python's per-block work (under the GIL) half as often.
    Measured with two threads over 10^6 x 10 and 10^7 inputs: 10 to 30% faster for the
    compiled loop than 131,072, 5 to 20% slower for NumPy's code; 32,768 was 2x slower.
    """
    if BLOCK_ELEMENTS:
        return BLOCK_ELEMENTS
    backend = _backend()
    compiled = sys.modules.get(f"{__package__}._compiled")
    broken = compiled is not None and "unavailable" in compiled._STATE
    return 262144 if backend == "c" or (backend == "auto" and not broken) else 131072


#: Worker threads for blocked evaluation (NumPy releases the GIL inside ufuncs).
THREADS = int(os.environ.get("SYMLOSS_NUM_THREADS", os.cpu_count() or 1))
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="symloss")
    return _POOL


def map_blocks(
    run: Callable[[dict[str, np.ndarray], int, int], None],
    arrays: Mapping[str, np.ndarray],
    sample_keys: frozenset,
    n: int,
    row_size: int,
) -> None:
    """Call ``run(block_arrays, start, stop)`` over blocks of rows, on worker threads.

    Arrays named in *sample_keys* are sliced along their first (sample) axis; the
    others (hyperparameters, class weights) are passed whole.  Small inputs run in
    one block on the calling thread.  If blocks raise, the first block's error (in
    row order) is raised after every block has finished.
    """
    rows = max(1, block_elements() // max(1, row_size))
    if n <= rows or THREADS < 1:
        run(dict(arrays), 0, n)
        return

    def one(start: int) -> None:
        stop = min(start + rows, n)
        block = {k: (v[start:stop] if k in sample_keys else v) for k, v in arrays.items()}
        run(block, start, stop)

    starts = range(0, n, rows)
    if THREADS == 1:
        for start in starts:
            one(start)
    else:
        futures = [_pool().submit(one, start) for start in starts]
        # Wait for every block before raising, so that no block still writes into the
        # caller's buffers afterwards; the first failing block (in row order) wins.
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

"""Rewrites of an expression into an equal one that float64 evaluates at the extremes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy as sp
from sympy import Abs, Add, Indexed, Mul, Pow, S, Sum, Symbol, exp, log
from sympy.codegen.cfunctions import expm1, log1p

from symloss.numeric.ops import maximum, minimum, quotient, where_nonneg
from symloss.symbols import (
    logsumexp,
    relu,
    sigmoid,
    softmax,
    softplus,
    xdivy,
    xlogy,
)


def _depends_on(expr: sp.Basic, bases: frozenset) -> bool:
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Indexed) and node.base in bases:
            return True
        if isinstance(node, (softmax, logsumexp)) and node.args[0] in bases:
            return True
    return False


def stabilize(
    expr: sp.Expr, targets: frozenset = frozenset(), nonzero: frozenset = frozenset()
) -> sp.Expr:
    """An expression equal to *expr* that float64 evaluates without overflow or ``0 * inf``.

    Parameters
    ----------
    expr : sympy.Expr
        Per-element expression.
    targets : frozenset of IndexedBase
        Arrays that may hold exact zeros (targets).  A product ``a * log(b)`` or
        ``a / b`` whose ``a`` depends on them becomes ``xlogy(a, b)`` or
        ``xdivy(a, b)``, so that a zero target contributes exactly 0, as the limit does.
    nonzero : frozenset of IndexedBase
        Arrays whose domain excludes 0.  A sum of terms ``c_k / y**k`` of one of their
        elements is written over one numerator, divided by ``y`` step by step (see
        ``_over_common_power``; at ``y = 0`` that form would be ``0 / 0``).
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
        if isinstance(node, Add) and nonzero:
            node = _over_common_power(node, nonzero)
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


def _inverse_power(term: sp.Expr) -> tuple[Indexed, sp.Expr, int] | None:
    """``(b, c, k)`` for a term ``c / b**k`` (also written ``c * xdivy(w, b**k)``) of an
    array element ``b`` and an integer ``k >= 1``, else None."""
    found = []
    for f in Mul.make_args(term):
        if isinstance(f, Pow) and isinstance(f.base, Indexed):
            if f.exp.is_Integer and f.exp < 0:
                found.append((f, f.base, S.One, int(-f.exp)))
        elif isinstance(f, xdivy):
            w, d = f.args
            b, k = d.as_base_exp()
            if isinstance(b, Indexed) and k.is_Integer and k > 0:
                found.append((f, b, w, int(k)))
    if len(found) != 1:
        return None
    (f, b, w, k) = found[0]
    return b, Mul(*[g for g in Mul.make_args(term) if g is not f]) * w, k


def _over_common_power(node: Add, nonzero: frozenset) -> sp.Expr:
    """``a / y + b / y**2`` -> ``((a y + b) / y) / y``: one numerator, divided step by step.

    Each term alone leaves the float64 range before the sum does: at ``y = t = 1e-200``
    the gamma deviance's gradient ``2/y - 2t/y**2`` is ``2e200 - inf``, and at the
    smallest subnormal ``y`` it is ``inf - inf``, NaN, where the true values are 0 and
    ``-inf`` (beyond the range).  The numerator ``a y**(K-k) + ...`` (``K`` the highest
    power) is in range wherever its terms are, and near ``y = t`` it cancels exactly
    (Sterbenz) instead of subtracting two rounded quotients.  Dividing by ``y`` ``K``
    times, rather than by ``y**K``, overflows or underflows only where the quotient does.
    ``quotient`` keeps each division a node of its own (SymPy would merge ``y**-1 y**-1``
    into ``y**-2``).

    Applied only to arrays whose domain excludes 0: at ``y = t = 0`` the numerator of
    ``1/y + t/y**2`` is 0 and the quotient ``0 / 0``, where the sum of the terms gives
    the limit, inf.
    """
    groups: dict[Indexed, list[tuple[sp.Expr, sp.Expr, int]]] = {}
    for term in node.args:
        found = _inverse_power(term)
        if found is not None and found[0].base in nonzero:
            b, c, k = found
            groups.setdefault(b, []).append((term, c, k))
    for b in sorted(groups, key=str):
        parts = groups[b]
        if len(parts) < 2:
            continue
        top = max(k for _, _, k in parts)
        ratio = Add(*(c * b ** (top - k) for _, c, k in parts))
        for _ in range(top):
            ratio = quotient(ratio, b)
        used = {term for term, _, _ in parts}
        return Add(*(a for a in node.args if a not in used), ratio)
    return node


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


def expand_kernel_functions(expr: sp.Expr) -> sp.Expr:
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

r"""Symbolic calculus over indexed sums, in closed form.

SymPy differentiates ``Sum(f(y[i]), (i, 1, n))`` with respect to ``y[a]`` into
``Sum(f'(y[i]) * KroneckerDelta(a, i), (i, 1, n))``, and ``doit`` turns that into a
``Piecewise`` on ``1 <= a <= n``.  Neither is what a reader wants.  Here we
collapse every Kronecker delta against the sum that binds it (the element index
``a`` is always in range, because it names an element of the data), pull the
factors that do not depend on a summation index out of its sum, and apply the
loss's recorded constraints, such as :math:`\sum_j t_{ij} = 1`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sympy as sp
from sympy import Add, Indexed, KroneckerDelta, Mul, Pow, S, Sum, Symbol
from sympy.concrete.expr_with_limits import ExprWithLimits

from symloss.symbols import fresh_index, relu, rowgap, rowmax, step


@dataclass(frozen=True)
class Constraint:
    r"""A fact about the data that SymPy cannot know, recorded so derivations can use it.

    Parameters
    ----------
    name : str
        Short identifier, e.g. ``"one_hot"``.
    lhs, rhs : sympy.Expr
        The constraint ``lhs = rhs``.  ``lhs`` is a ``Sum`` over one index whose other
        indices are free (``Sum(t[i, j], (j, 1, m))``); it is matched in derivations up
        to renaming of every index.
    description : str
        One line for people, e.g. "each target row is one-hot (sums to 1)".
    """

    name: str
    lhs: sp.Expr
    rhs: sp.Expr
    description: str

    def apply(self, expr: sp.Expr) -> tuple[sp.Expr, bool]:
        """Replace every occurrence of ``lhs`` (up to index renaming) by ``rhs``.

        Returns the new expression and whether anything was replaced.
        """
        ((var, lo, hi),) = self.lhs.limits
        pattern = self.lhs.function
        free = sorted(pattern.free_symbols & _index_symbols(pattern) - {var}, key=str)
        hits: dict[sp.Basic, sp.Expr] = {}
        for node in expr.atoms(Sum):
            if len(node.limits) != 1:
                continue
            ((v, a, b),) = node.limits
            if (a, b) != (lo, hi):
                continue
            body = node.function.xreplace({v: var})
            others = sorted(_index_symbols(body) - {var}, key=str)
            if len(others) != len(free):
                continue
            if body.xreplace(dict(zip(others, free))) == pattern:
                hits[node] = self.rhs
        return (expr.xreplace(hits), True) if hits else (expr, False)

    def latex(self) -> str:
        from symloss.printing.printers import latex_expr

        return f"{latex_expr(self.lhs)} = {latex_expr(self.rhs)}"


def _index_symbols(expr: sp.Basic) -> set[Symbol]:
    """Symbols used as indices of some ``Indexed`` in *expr*."""
    found: set[Symbol] = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Indexed):
            for idx in node.indices:
                found |= {s for s in idx.free_symbols if s.is_integer}
        elif isinstance(node, sp.Function) and node.func.__name__ in ("softmax", "logsumexp"):
            found |= {s for s in node.args[1:] if isinstance(s, Symbol)}
    return found


def _delta_partner(factor: sp.Basic, var: Symbol) -> sp.Expr | None:
    """If *factor* is ``KroneckerDelta(var, a)`` (or a power of it), return ``a``."""
    if isinstance(factor, Pow) and factor.exp.is_positive and factor.exp.is_integer:
        factor = factor.base
    if isinstance(factor, KroneckerDelta):
        x, y = factor.args
        if x == var and var not in y.free_symbols:
            return y
        if y == var and var not in x.free_symbols:
            return x
    return None


def _sum_one(f: sp.Expr, var: Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """``Sum(f, (var, lo, hi))`` with deltas collapsed and constant factors pulled out."""
    deltas = {q for q in f.atoms(KroneckerDelta) if _delta_partner(q, var) is not None}
    if len(deltas) == 1:
        # f = delta(var, a) A + B, affine in its one delta: the sum is A[var -> a] + sum B.
        # Read A off by differentiating, without expanding f, so that a quotient rule's
        # factors stay whole (a Tversky denominator is not multiplied out).
        (delta,) = deltas
        d = sp.Dummy("delta")
        g = f.xreplace({delta: d})
        slope = sp.diff(g, d)
        if not slope.has(d):
            rest = g.xreplace({d: S.Zero})
            head = slope.xreplace({var: _delta_partner(delta, var)})
            return head + _sum_expanded(rest, var, lo, hi) if rest != 0 else head
    return _sum_expanded(f, var, lo, hi)


def _sum_expanded(f: sp.Expr, var: Symbol, lo: sp.Expr, hi: sp.Expr) -> sp.Expr:
    """:func:`_sum_one` term by term, after expanding products."""
    out = []
    for term in Add.make_args(sp.expand_mul(f)):
        factors = Mul.make_args(term)
        partner = next(
            (p for p in map(lambda q: _delta_partner(q, var), factors) if p is not None), None
        )
        if partner is not None:
            # The partner index names an element of the data, so it lies in [lo, hi].
            rest = list(factors)
            rest.remove(next(q for q in factors if _delta_partner(q, var) is not None))
            out.append(Mul(*rest).xreplace({var: partner}))
            continue
        inside = [q for q in factors if var in q.free_symbols]
        outside = [q for q in factors if var not in q.free_symbols]
        if not inside:
            out.append(Mul(*outside) * (hi - lo + 1))
        else:
            out.append(Mul(*outside) * Sum(Mul(*inside), (var, lo, hi)))
    return Add(*out)


def collapse(expr: sp.Expr) -> sp.Expr:
    """Collapse every Kronecker delta in *expr* against the sum that binds it."""
    if not expr.has(Sum):
        return expr

    def rebuild(node: sp.Basic) -> sp.Basic:
        if isinstance(node, Sum):
            body = collapse(node.function)
            if not body.has(KroneckerDelta) and all(
                var in body.free_symbols for var, _, _ in node.limits
            ):
                # Nothing to collapse (a row sum the derivative left alone, such as
                # the cosine's sum of t_ik^2): keep the authored summand whole.
                return node.func(body, *node.limits)
            for var, lo, hi in node.limits:  # innermost first
                body = _sum_one(body, var, lo, hi)
            return body
        if node.args:
            return node.func(*[rebuild(a) for a in node.args])
        return node

    return rebuild(expr)


def derivative(
    term: sp.Expr,
    limits: Sequence[tuple[Symbol, sp.Expr]],
    wrt: sp.IndexedBase,
    constraints: Iterable[Constraint] = (),
    element: Sequence[tuple[Symbol, sp.Expr]] | None = None,
) -> tuple[sp.Expr, tuple[Constraint, ...]]:
    r"""``d/d wrt[a, ...]`` of :math:`\sum_{limits} \text{term}`, in closed form.

    Parameters
    ----------
    term : sympy.Expr
        The summand, over ``Indexed`` elements whose indices are the ``limits``.
    limits : sequence of (index, size)
        The sums, outermost first; each runs from 1 to size.
    wrt : IndexedBase
        The array to differentiate by.  The result is the derivative by the
        element that carries the index letters of *element*.
    constraints : iterable of Constraint
        Facts to apply after collapsing.
    element : sequence of (index, size), optional
        Index letters of one element of *wrt*; default the letters of ``limits``.

    Returns
    -------
    expr : sympy.Expr
        Free of ``KroneckerDelta`` from the sums, index ``Piecewise`` and of sums
        that could be evaluated.
    used : tuple of Constraint
        The constraints the result relies on.
    """
    letters = [v for v, _ in (element or limits)]
    targets = [sp.Dummy(f"{v}_", integer=True) for v in letters]
    element = wrt[tuple(targets)]
    d = sp.diff(term, element)
    body = Sum(d, *[(v, 1, size) for v, size in reversed(limits)])
    result = collapse(body)
    used = []
    for c in constraints:
        result, hit = c.apply(result)
        if hit:
            used.append(c)
    return rename_indices(result, dict(zip(targets, letters))), tuple(used)


def rename_indices(expr: sp.Expr, mapping: dict[sp.Basic, Symbol]) -> sp.Expr:
    """Substitute free indices, first moving clashing bound indices to fresh letters."""
    # Bound letters count as taken too: a fresh letter must not be captured by an inner
    # sum (multi_margin's sum over j holds the authored sum over k).
    taken = {str(s) for s in expr.atoms(Symbol)} | {str(v) for v in mapping.values()}

    def fresh() -> Symbol:
        new = fresh_index(taken)
        taken.add(new.name)
        return new

    def relabel(node: sp.Basic) -> sp.Basic:
        if isinstance(node, ExprWithLimits):  # Sum, and rowmax (a maximum over an index)
            body = relabel(node.function)
            limits = []
            for var, lo, hi in node.limits:
                if var in mapping.values() or str(var) in {str(k) for k in mapping}:
                    new = fresh()
                    body = body.xreplace({var: new})
                    var = new
                limits.append((var, lo, hi))
            return node.func(body, *limits)
        if node.args:
            return node.func(*[relabel(a) for a in node.args])
        return node

    return relabel(expr).xreplace(mapping)


def _size(expr: sp.Expr) -> int:
    return sum(1 for _ in sp.preorder_traversal(expr))


def _negativity(expr: sp.Expr) -> int:
    """How many visible minus signs the printed form would start with."""
    count = 0
    for node in sp.preorder_traversal(expr):
        if (
            isinstance(node, Mul)
            and node.args
            and node.args[0].is_number
            and node.args[0].is_negative
        ):
            count += 1
        elif isinstance(node, Add):  # "... - 1": a negative constant term
            count += sum(1 for a in node.args if a.is_number and a.is_negative)
    return count


def _nested_fractions(expr: sp.Expr) -> int:
    """How many denominators sit inside a sum (``(a/b + c)/d`` has one)."""
    return sum(
        1
        for node in sp.preorder_traversal(expr)
        if isinstance(node, Add)
        for sub in sp.preorder_traversal(node)
        if isinstance(sub, Pow) and sub.exp.is_negative
    )


#: Above this many nodes, :func:`clean` tries only the cheap rewrites.
CLEAN_MAX_NODES = 400


def clean(
    expr: sp.Expr,
    *,
    sample: dict | None = None,
    fixed_sign: frozenset = frozenset(),
    candidates: Sequence[Callable[[sp.Expr], sp.Expr]] | None = None,
) -> sp.Expr:
    """The most readable of several equal forms of *expr*.

    Tries expansion, ``together``, ``cancel``, ``factor`` and ``factor_terms``, and keeps
    the form with the fewest nodes and then the fewest leading minus signs.  Then
    :func:`orient` writes each factor with the sign it has on the domain (*sample*
    is a point inside it).  Every step is a SymPy equivalence; ``tests/test_core.py``
    also checks the result numerically against the raw derivative for every loss.
    """
    # Row sums (the cosine's sum_k y_ik t_ik) are quantities, not expressions to
    # rearrange: hidden behind symbols, factor and expand cannot split sum(y (1 - t))
    # into sums of -y and -y t.
    hidden = {s: sp.Dummy("sum") for s in expr.atoms(Sum)}
    back = {v: s for s, v in hidden.items()}
    work = expr.xreplace(hidden)
    if candidates is None and _size(work) > CLEAN_MAX_NODES:
        # factor/cancel can take minutes on large expressions; keep the cheap forms.
        candidates = (lambda e: e, sp.factor_terms)
    funcs = candidates or (
        lambda e: e,
        sp.expand,
        sp.factor_terms,
        lambda e: sp.factor_terms(sp.expand(e)),
        sp.together,
        lambda e: sp.factor(sp.together(e)),
        lambda e: sp.factor(sp.cancel(sp.together(e))),
    )
    if candidates is None and any(not q.exp.is_number for q in work.atoms(Pow)):
        # y**(1 - p)/y only combines to y**(-p) by powsimp (Tweedie's symbolic power).
        funcs = (*funcs, lambda e: sp.factor(sp.expand(sp.powsimp(e))))
    if candidates is None and expr.has(sp.sinh, sp.cosh, sp.tanh):
        # sinh/cosh from d log(cosh) read as tanh; trigsimp is slow, so only here.
        funcs = (*funcs, sp.trigsimp, lambda e: sp.trigsimp(sp.together(e)))

    # Ties in size go to the form without fractions inside fractions, then to the one
    # with the fewest minus signs.
    def key(e: sp.Expr) -> tuple[int, int, int]:
        return _size(e), _nested_fractions(e), _negativity(e)

    best, best_key = expr, key(expr)
    for f in funcs:
        try:
            cand = f(work).xreplace(back)
        except (StopIteration, RecursionError, sp.PolynomialError, TypeError, ValueError):
            continue
        cand_key = key(cand)
        if cand_key < best_key:
            best, best_key = cand, cand_key
    return orient(best, sample, fixed_sign) if sample else best


def orient(expr: sp.Expr, sample: dict, free: frozenset = frozenset()) -> sp.Expr:
    """Flip the sign of sum factors so that each reads positive on the domain.

    ``(t - y)/(n (y - 1) y)`` becomes ``(y - t)/(n y (1 - y))`` for ``y`` in (0, 1):
    a factor free of the arrays in *free* is flipped when it is negative at *sample*,
    and a remaining overall minus sign is absorbed by a factor that involves *free*
    (whose sign the data decides).
    """
    if not isinstance(expr, Mul):
        return expr
    sign = 1
    factors: list[sp.Expr] = []
    for f in expr.args:
        if f == -1:
            sign = -sign
            continue
        base, power = (f.base, f.exp) if isinstance(f, Pow) else (f, S.One)
        if isinstance(base, Add) and power.is_integer and not _involves(base, free):
            value = base.xreplace(sample)
            if value.is_number and value.is_negative:
                base = -base
                sign *= -1 if power % 2 else 1
        factors.append(Pow(base, power) if power != 1 else base)
    if sign < 0:
        for pos, f in enumerate(factors):
            base, power = (f.base, f.exp) if isinstance(f, Pow) else (f, S.One)
            if isinstance(base, Add) and power.is_integer and power % 2 and _involves(base, free):
                factors[pos] = Pow(-base, power) if power != 1 else -base
                sign = 1
                break
    body = Mul(*factors)
    return -body if sign < 0 else body


def _involves(expr: sp.Expr, bases: frozenset) -> bool:
    return any(isinstance(a, Indexed) and a.base in bases for a in sp.preorder_traversal(expr))


def almost_everywhere(expr: sp.Expr) -> sp.Expr:
    """*expr* with every ``DiracDelta`` set to 0: the derivative almost everywhere.

    Differentiating ``sign`` or ``Heaviside`` (from ``Abs``, ``Max`` or a ``Piecewise``
    branch) leaves a ``DiracDelta`` at the kink.  Away from it the derivative is 0, and
    autograd (PyTorch) returns 0 at the kink too, so that is the value symloss uses.
    """
    if not expr.has(sp.DiracDelta):
        return expr
    return expr.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: S.Zero)


def kink_arguments(expr: sp.Expr) -> list[sp.Expr]:
    """Arguments whose sign switches a non-smooth piece of *expr* (zero at the kink).

    A kink inside a sum or a row maximum whose argument depends on the bound index
    (``sum_k relu(u_ik)``) is left out: it is not a function of one element, and the
    same kink appears element-wise in the summand (``relu(u_ij)``).
    """
    found: list[sp.Expr] = []

    def visit(node: sp.Basic, bound: frozenset) -> None:
        here: list[sp.Expr] = []
        if isinstance(node, (sp.Abs, sp.sign, sp.Heaviside, relu, step)):
            here.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)):
            first, *rest = node.args
            here.extend(first - other for other in rest)
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    here.append(cond.lhs - cond.rhs)
        elif isinstance(node, rowmax):
            here.append(rowgap(node))  # a tie between the two largest values
        elif (
            isinstance(node, Pow)
            and node.exp.is_Rational
            and not node.exp.is_integer
            and not node.base.is_positive
        ):
            # A root is not differentiable where its argument vanishes: the cosine's
            # sqrt(eps + sum_k y_ik^2) at a zero row (with eps = 1e-12, a point of
            # curvature 1/sqrt(eps)).  Arguments provably positive never vanish.
            here.append(node.base)
        found.extend(k for k in here if not k.free_symbols & bound)
        if isinstance(node, ExprWithLimits):
            bound = bound | {lim[0] for lim in node.limits}
        for arg in node.args:
            visit(arg, bound)

    visit(expr, frozenset())
    return found

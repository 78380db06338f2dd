r"""Equality of two summands on a loss's domain, numerically, and the hyperparameter
values that make a catalog loss equal a pasted formula.

:func:`numerically_equal` decides whether a difference of summands is 0 on the domain
by evaluating it at 50 significant digits (SymPy's ``evalf``, backed by mpmath):

* at random points of the domain: each array element drawn from its array's set (a
  label in {0, 1} or {-1, 1} from that set, a probability inside (0, 1), a real
  number in (-3, 3));
* at points on and near each kink: for every argument whose sign switches a
  non-smooth piece (:func:`symloss.symbolic.calculus.kink_arguments`: a ``Piecewise``
  boundary, the argument of ``Abs`` or ``sign``, the difference of ``Max``'s
  arguments) one element is solved for where the argument is 0, and the difference is
  evaluated there and 1e-20 to either side.  So textbook Huber (``\le\delta``) equals
  the catalog's (``<\delta``): at the boundary both branches agree; a 0-1 loss with
  ``<`` is not one with ``\le``: at 0 they differ.

:func:`fit_params` solves for a catalog loss's hyperparameters: values (``gamma = 0``)
when the formula has only numbers, expressions of the formula's own symbols
(``delta = c``, ``alpha = 1 - a``) otherwise.  Candidate values come from a
least-squares fit of the difference at random points (several starts, a few draws of
the formula's own symbols, values that are plainly rationals snapped to them, and an
affine fit in the formula's symbols); every candidate is then verified by
:func:`numerically_equal` at high precision before it is returned.

Layer 8 (``latex_in``): imports :mod:`symloss.symbolic` and :mod:`symloss.symbols`.
"""

from __future__ import annotations

import functools
import itertools
import random
import warnings
from fractions import Fraction

import numpy as np
import sympy as sp
from sympy import Indexed, IndexedBase, Sum, Symbol

from symloss.symbolic.calculus import kink_arguments
from symloss.symbols import logsumexp, m, n, sigmoid, softmax

__all__ = ["NUMERIC_DIGITS", "NUMERIC_POINTS", "NUMERIC_VALID", "fit_params", "numerically_equal"]

#: Random points at which :func:`numerically_equal` compares, the least number of them
#: where the difference is real and finite for a verdict, and the digits used.
NUMERIC_POINTS, NUMERIC_VALID, NUMERIC_DIGITS = 40, 12, 50
#: Offset from a kink, and the largest |difference| that counts as 0 at these digits.
KINK_OFFSET, ZERO = sp.Rational(1, 10**20), sp.Float("1e-30", NUMERIC_DIGITS)
#: Sample and class counts that inner sums and a written ``n`` are evaluated with.
CLASSES, SAMPLES = 3, 7


def _explicit(expr: sp.Expr) -> sp.Expr:
    """Named activations as exponentials, sums over classes expanded: a plain number
    once the elements have values."""
    expr = expr.replace(
        lambda e: isinstance(e, (softmax, logsumexp, sigmoid)), lambda e: e.rewrite(sp.exp)
    )
    expr = expr.xreplace({m: sp.Integer(CLASSES), n: sp.Integer(SAMPLES)})
    return expr.doit() if expr.has(Sum) else expr


@functools.lru_cache(maxsize=256)
def _bounds(domain) -> tuple[sp.Rational, sp.Rational]:
    """The part of *domain* (an Interval or None) in [-3, 3], as exact bounds."""
    lo, hi = -3.0, 3.0
    if isinstance(domain, sp.Interval):
        lo = max(lo, float(domain.inf)) if domain.inf.is_finite else lo
        hi = min(hi, float(domain.sup)) if domain.sup.is_finite else hi
    exact = [Fraction(x).limit_denominator(10**6) for x in (lo, hi)]
    return tuple(sp.Rational(f.numerator, f.denominator) for f in exact)


def _draw(domain, rng: random.Random) -> sp.Rational:
    """A random rational in *domain* (a SymPy set; ``None``: the reals)."""
    if isinstance(domain, sp.FiniteSet):
        return rng.choice(sorted(domain, key=float))
    lo, hi = _bounds(domain if isinstance(domain, sp.Interval) else None)
    for _ in range(20):  # strictly inside the interval; another set is checked
        x = lo + sp.Rational(rng.randint(1, 999), 1000) * (hi - lo)
        if domain is None or isinstance(domain, sp.Interval) or domain.contains(x) is sp.true:
            return x
    return (lo + hi) / 2


def _scalars(expr: sp.Expr) -> list[Symbol]:
    labels = {b.label for b in expr.atoms(IndexedBase)}
    return sorted(
        (
            s
            for s in expr.free_symbols
            if isinstance(s, Symbol) and not s.is_integer and s not in labels
        ),
        key=str,
    )


def _value(expr: sp.Expr, point: dict):
    """*expr* at *point*, at :data:`NUMERIC_DIGITS` digits, or None where not a real number."""
    try:
        value = sp.N(expr.xreplace(point), NUMERIC_DIGITS)
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
        return None
    if not (value.is_number and value.is_real and value.is_finite):
        return None
    return value


def _kink_points(expr, elements, base_point: dict, domains: dict, rng: random.Random):
    """Points on and near each kink of *expr*: one element solved for where a kink
    argument vanishes, the others at *base_point*."""
    for arg in kink_arguments(expr):
        inside = [e for e in elements if arg.has(e) and _set(domains, e) is not None]
        inside = [e for e in inside if not isinstance(_set(domains, e), sp.FiniteSet)] or inside
        if not inside:
            continue
        x = rng.choice(inside)
        rest = {e: v for e, v in base_point.items() if e != x}
        dummy = sp.Dummy("x", real=True)
        try:
            roots = sp.solve(arg.xreplace(rest).xreplace({x: dummy}), dummy)
        except (NotImplementedError, TypeError, ValueError):
            continue
        for root in roots[:4] if isinstance(roots, list) else ():
            if not (root.is_number and root.is_real):
                continue
            for offset in (0, KINK_OFFSET, -KINK_OFFSET):
                value = root + offset
                if _set(domains, x).contains(value) is sp.true:
                    yield {**rest, x: value}


def _set(domains: dict, element: Indexed):
    found = domains.get(str(element.base.label), sp.Interval(-sp.oo, sp.oo))
    return getattr(found, "set", found) if found is not None else sp.Interval(-sp.oo, sp.oo)


def numerically_equal(diff: sp.Expr, domains: dict | None = None, scalars: dict | None = None):
    r"""Whether *diff* (a difference of summands) is 0 on the domain, numerically.

    *domains* maps an array's name to its :class:`~symloss.Domain` (or a SymPy set);
    *scalars* a hyperparameter to the set it is drawn from (default (0.1, 2)).
    ``True`` when |diff| < 1e-30 at every valid point (random ones and those at kinks,
    see the module) and there are at least :data:`NUMERIC_VALID`; ``False`` at the
    first real difference; ``None`` (undecided) otherwise.
    """
    domains, scalars = domains or {}, scalars or {}
    kinks_of = diff.xreplace({m: sp.Integer(CLASSES), n: sp.Integer(SAMPLES)})
    kinks_of = kinks_of.doit() if kinks_of.has(Sum) else kinks_of
    expr = _explicit(diff)
    elements = sorted(expr.atoms(Indexed), key=str)
    names = _scalars(expr)
    if (
        expr.free_symbols
        - set(elements)
        - set(names)
        - {b.label for b in expr.atoms(IndexedBase)}
        - {e for x in elements for e in x.indices}
    ):
        return None  # a free index or size left: cannot sample it
    rng = random.Random(1)
    valid = 0
    for k in range(NUMERIC_POINTS):
        point = {e: _draw(_set(domains, e), rng) for e in elements}
        point.update({s: _draw(scalars.get(s.name, sp.Interval(0.1, 2)), rng) for s in names})
        # the random point first: most differences show there, before any kink is solved for
        candidates = itertools.chain(
            [point],
            _kink_points(kinks_of, elements, point, domains, rng)
            if k < NUMERIC_POINTS // 4
            else (),
        )
        for at in candidates:
            value = _value(expr, at)
            if value is None:
                continue
            if abs(value) > ZERO:
                return False
            valid += 1
    return True if valid >= NUMERIC_VALID else None


def _snap(x: float) -> sp.Expr:
    """*x* as a small rational where it plainly is one (0.25, 2, 1/3), else a Float."""
    frac = Fraction(x).limit_denominator(1000)
    if abs(float(frac) - x) <= 1e-9 * max(1.0, abs(x)):
        return sp.Rational(frac.numerator, frac.denominator)
    return sp.Float(x)


def _lambdified(expr: sp.Expr, args: list):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sp.lambdify(args, expr, modules="numpy")


def _least_squares(residual, x: np.ndarray, steps: int = 200):
    """Levenberg-Marquardt on a few unknowns, Jacobian by central differences (NumPy
    only: SciPy is not a dependency)."""
    damping = 1e-3
    r = residual(x)
    cost = float(r @ r)
    for _ in range(steps):
        if cost < 1e-28:
            break
        h = 1e-7 * np.maximum(1.0, np.abs(x))
        jac = np.column_stack(
            [
                (residual(x + h[k] * e) - residual(x - h[k] * e)) / (2 * h[k])
                for k, e in enumerate(np.eye(len(x)))
            ]
        )
        if not np.all(np.isfinite(jac)):
            return None
        a, g = jac.T @ jac, jac.T @ r
        try:
            step = np.linalg.solve(a + damping * np.diag(np.diag(a) + 1e-12), -g)
        except np.linalg.LinAlgError:
            return None
        trial = residual(x + step)
        trial_cost = float(trial @ trial)
        if trial_cost < cost:
            x, r, cost, damping = x + step, trial, trial_cost, max(damping / 10, 1e-12)
        else:
            damping *= 10
            if damping > 1e12:
                break
    return x


def fit_params(
    diff: sp.Expr,
    unknowns: dict[Symbol, float],
    domains: dict | None = None,
    unknown_sets: dict | None = None,
) -> dict | None:
    r"""Values of *unknowns* (symbol -> a starting value) that make *diff* 0 on the
    domain, or None.  The other free scalars of *diff* are the formula's own symbols:
    an unknown found equal to an affine function of them is returned as that
    expression.  Every answer is verified by :func:`numerically_equal`.
    """
    domains, unknown_sets = domains or {}, unknown_sets or {}
    expr = _explicit(diff)
    elements = sorted(expr.atoms(Indexed), key=str)
    order = list(unknowns)
    givens = [s for s in _scalars(expr) if s not in unknowns]
    f = _lambdified(expr, [*elements, *givens, *order])
    rng = random.Random(7)
    points = [[float(_draw(_set(domains, e), rng)) for e in elements] for _ in range(24)]
    columns = [np.array(c, dtype=float) for c in zip(*points, strict=True)]
    draws = [
        [float(_draw(sp.Interval(0.2, 0.9), rng)) for _ in givens] for _ in range(len(givens) + 2)
    ]

    def solve(given_values):
        def residual(u):
            with np.errstate(all="ignore"):
                out = np.broadcast_to(
                    np.asarray(f(*columns, *given_values, *u), dtype=float), (len(points),)
                )
            return np.where(np.isfinite(out), out, 1e6)

        starts = [[unknowns[s] for s in order], [0.0] * len(order), [1.0] * len(order)]
        starts += [[rng.uniform(0, 2) for _ in order] for _ in range(3)]
        for start in starts:
            found = _least_squares(residual, np.array(start, dtype=float))
            if found is not None and np.max(np.abs(residual(found))) < 1e-9:
                return found
        return None

    fits = []
    for given_values in draws if givens else [[]]:
        found = solve(given_values)
        if found is None:
            return None
        fits.append(found)
    values = {}
    for col, s in enumerate(order):
        ys = np.array([fit[col] for fit in fits])
        if not givens or np.ptp(ys) < 1e-9 * max(1.0, float(np.max(np.abs(ys)))):
            values[s] = _snap(float(ys[0]))
            continue
        # affine in the formula's own symbols: u = c0 + sum_k c_k g_k
        design = np.array([[1.0, *d] for d in draws])
        coef = np.linalg.lstsq(design, ys, rcond=None)[0]
        values[s] = _snap(float(coef[0])) + sum(
            _snap(float(c)) * g for c, g in zip(coef[1:], givens, strict=True)
        )
    for s, v in values.items():
        allowed = unknown_sets.get(s)
        if allowed is not None and v.is_number and allowed.contains(v) is not sp.true:
            return None
    verdict = numerically_equal(diff.xreplace(values), domains)
    return values if verdict else None

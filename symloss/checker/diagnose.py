"""Comparison and diagnosis for the gradient checker: how wrong, and why.

Every diagnosis is a hypothesis about the user's output, derived from the loss and
tested on every input of the failing family with the checker's own tolerance:
"your output equals the truth times n", "... the constrained form on targets that
break the constraint", "... the loss with m read as n", "... the truth without these
terms".  The first hypothesis that holds names the bug.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy as sp

from symloss.checker.inputs import Case, derived, describe, evaluate, on_logits, summand, where
from symloss.core.loss import Loss

OUTSIDE = "a value outside the subdifferential"


def rtol_for(dtype) -> float:
    """``max(1e-7, sqrt(eps))`` of a float dtype: 1e-7 for float64, 3.5e-4 for float32."""
    dt = np.dtype(dtype)
    dt = dt if dt.kind == "f" else np.dtype(np.float64)
    return max(1e-7, math.sqrt(float(np.finfo(dt).eps)))


def compare(u, g, scale, rtol):
    """``(ok, abs_err, rel_err)`` per component; components with a non-finite truth pass."""
    with np.errstate(all="ignore"):
        u, g = np.asarray(u, dtype=np.float64), np.asarray(g, dtype=np.float64)
        err = np.where(np.isnan(u), np.inf, np.abs(u - g))
        big = np.maximum(np.abs(u), np.abs(g))
        ok = (err <= rtol * (big + scale)) | ~np.isfinite(g) | (u == g)
        rel = np.where(err == 0, 0.0, err / np.where(big == 0, np.inf, big))
        finite = np.isfinite(g)
        return ok, np.where(finite, err, 0.0), np.where(finite, np.nan_to_num(rel, nan=np.inf), 0.0)


@dataclass
class Result:
    """One input of one check: the user's output against the truth."""

    case: Case
    user: np.ndarray
    truth: np.ndarray
    scale: np.ndarray
    rtol: float
    ok: np.ndarray
    abs_err: np.ndarray
    rel_err: np.ndarray


def subgradient(u, lo, hi, tol) -> str:
    """Name the choice *u* among the one-sided derivatives *lo*, *hi* at a kink."""
    if abs(u - lo) <= tol:
        return "the left derivative"
    if abs(u - hi) <= tol:
        return "the right derivative"
    if abs(u - (lo + hi) / 2) <= tol:
        return "the midpoint"
    if min(lo, hi) - tol <= u <= max(lo, hi) + tol:
        return "a subgradient in between"
    return OUTSIDE


class Diagnose:
    """The hypotheses, tried in order on the failing results of one check and family."""

    def __init__(self, runner, what: str, results: list[Result]):
        self.r, self.L, self.what = runner, runner.L, what
        self.results = results
        self.failing = [r for r in results if not r.ok.all()]
        self.noun = "your loss value" if what == "value" else "your gradient"

    def run(self) -> str:
        text = self.nonfinite()
        finite = [r for r in self.failing if np.all(np.isfinite(r.user) | ~np.isfinite(r.truth))]
        if text and not finite:
            return text
        if text:  # explain the finite failures too
            self.results = self.failing = finite
        rules = (
            self.scaling,
            self.constraint,
            self.sizes,
            self.coupling,
            self.branch,
            self.terms,
            self.precision,
        )
        found = next((d for d in (rule() for rule in rules) if d), "")
        if not found:
            worst = max(float(r.rel_err[~r.ok].max()) for r in self.failing)
            found = f"{self.noun} is off by up to {_num(worst)} relative; no simple pattern fits"
        return f"{text}; elsewhere {found}" if text else found

    def holds(self, alternative: Callable[[Result], np.ndarray]) -> bool:
        """Does the user's output equal *alternative* on every input?"""
        for r in self.results:
            with np.errstate(all="ignore"):
                ok, _, _ = compare(r.user, alternative(r), r.scale, r.rtol)
            if not ok.all():
                return False
        return True

    # -- non-finite output where the loss is finite
    def nonfinite(self) -> str:
        for r in self.failing:
            bad = ~np.isfinite(r.user) & np.isfinite(r.truth)
            if not bad.any():
                continue
            kind = "NaN" if np.isnan(r.user[bad]).any() else "inf"
            idx = tuple(np.argwhere(bad)[0]) if r.user.ndim else self._bad_sample(r.case)
            if idx is not None and len(idx) < r.case.pred.ndim:  # a per-sample value
                idx = (*idx, int(np.argmax(np.abs(r.case.pred[idx]))))
            x = float(r.case.pred[idx]) if idx is not None else None
            return f"returns {kind} at {describe(self.L, r.case, idx)}: {self._cause(x)}"
        return ""

    def _bad_sample(self, case: Case):
        """Locate a non-finite loss value by calling the code on one sample at a time."""
        for row in range(case.pred.shape[0]):
            one = dataclasses.replace(
                case,
                pred=case.pred[row : row + 1],
                target=case.target[row : row + 1],
                extra={k: v[row : row + 1] for k, v in case.extra.items()},
            )
            try:
                u = self.r.user("value", one)[0]
            except Exception:
                continue
            if not np.all(np.isfinite(u)):
                return (row,)
        return None

    def _cause(self, x) -> str:
        dom = self.L.domains.get(str(self.L.pred.label))
        s = dom.set if dom is not None else sp.Interval(-sp.oo, sp.oo)
        if x is not None and isinstance(s, sp.Interval) and s.inf.is_finite and s.sup.is_finite:
            if min(abs(x - float(s.inf)), abs(float(s.sup) - x)) <= 1e-6:
                return (
                    "log (or a division) without clipping? the loss takes the limit there "
                    "(0 log 0 = 0)"
                )
        if x is not None and abs(x) >= 30:
            if on_logits(self.L):
                return (
                    "exp overflows, or log(sigmoid(z)) hits log 0, at a large logit: use a "
                    "stable form (np.logaddexp, log-sum-exp, log_sigmoid)"
                )
            return "overflow at a large input?"
        return "non-finite where the loss is finite"

    # -- a constant factor: sign, n, m, 2, ½
    def scaling(self) -> str:
        for sign, f in itertools.product((1, -1), factors(self.L)):
            if (sign, f) == (1, 1):
                continue
            if self.holds(lambda r, sign=sign, f=f: sign * at_sizes(self.L, f, r.case) * r.truth):
                return self._scaling_text(sign, f)
        ratios = []
        for r in self.results:  # an unnamed constant?
            keep = np.isfinite(r.truth)
            g, u = r.truth[keep], r.user[keep]
            if not np.dot(g, g) > 0:
                return ""
            ratios.append(float(np.dot(u, g) / np.dot(g, g)))
        c = ratios[0]
        if all(abs(q - c) <= 1e-6 * abs(c) for q in ratios) and self.holds(lambda r: c * r.truth):
            return f"{self.noun} is a constant {_num(c)}× the truth"
        return ""

    def _scaling_text(self, sign: int, f: sp.Expr) -> str:
        big = max(self.results, key=lambda r: r.case.pred.shape).case
        head = f"{self.noun} is {_factor(sign * at_sizes(self.L, f, big))}× the truth"
        if f.free_symbols:
            sizes = sorted(f.free_symbols, key=str)
            at = ", ".join(f"{s} = {int(at_sizes(self.L, s, big))}" for s in sizes)
            tried = "; ".join(
                f"{s} = "
                + ", ".join(
                    map(str, sorted({int(at_sizes(self.L, s, r.case)) for r in self.results}))
                )
                for s in sizes
            )
            head += f" at {at} ({'-' if sign < 0 else ''}{f}× at every size tried: {tried})"
        hints = ["flipped sign (differentiated -E, or t - y for y - t)?"] if sign < 0 else []
        hints += [scaling_hint(self.L, f, self.what)] if f != 1 else []
        return f"{head}: {' '.join(hints)}"

    # -- the constrained closed form used on targets that break the constraint
    def constraint(self) -> str:
        L = self.L
        if self.what != "gradient" or any(r.case.truth is L for r in self.results):
            return ""

        def constrained(r):  # L's own closed form, on the relaxed loss's inputs
            return evaluate(r.case.truth, "constrained", summand(L, "gradient"), r.case, "gradient")

        if not self.holds(constrained):
            return ""
        used = "; ".join(c.description for c in L.constraints_used())
        return (
            f"{self.noun} is {sp.sstr(L.gradient())}, which assumes {used}; these targets "
            f"break that, and the gradient for any targets is {sp.sstr(L.general_gradient())}"
        )

    # -- one size read for another
    def sizes(self) -> str:
        L = self.L
        symbols = list(dict.fromkeys(s for _, s in (*L.indices, *L.input_indices)))
        for old, new in itertools.permutations(symbols[:2], 2):
            term = replace_size(L.term, old, new)
            if term == L.term:
                continue
            # Swap in the definition, then differentiate: ε/m summed over the m classes
            # gives ε, but ε/n summed over them gives ε m/n.
            V = derived(L).variant(("swap", old), term=term)
            if self.holds(lambda r, V=V: self.r.truth(self.what, _judged_by(r.case, V))):
                return (
                    f"{self.noun} matches the loss with {old} replaced by {new}: a size read "
                    f"from the wrong axis (e.g. label smoothing ε/{old} computed with the "
                    f"{new} of the other axis)?"
                )
        return ""

    # -- one sample's gradient depending on another sample
    def coupling(self) -> str:
        if self.what != "gradient":
            return ""
        for r in self.failing:
            c = r.case
            if c.pred.shape[0] < 2:
                continue
            p2, t2 = c.pred.copy(), c.target.copy()
            p2[0], t2[0] = c.pred[1], c.target[1]
            moved = dataclasses.replace(c, pred=p2, target=t2)
            try:
                u2 = self.r.user("gradient", moved)[0]
            except Exception:
                return ""
            with np.errstate(all="ignore"):
                g2 = self.r.truth("gradient", moved)
                ok, _, _ = compare(u2[1:], r.user[1:], r.scale[1:], r.rtol)
            if np.array_equal(g2[1:], r.truth[1:], equal_nan=True) and not ok.all():
                axis = "sample" if c.pred.ndim > 1 else "element"
                return (
                    f"{self.noun} for one {axis} changes when another {axis}'s inputs change, "
                    f"but the loss couples no {axis}s: a softmax, normalisation or reduction "
                    "taken over the wrong axis (axis 0 instead of axis -1)?"
                )
        return ""

    # -- wrong in one branch of a Piecewise only
    def branch(self) -> str:
        L = self.L
        if self.what != "gradient" or any(r.case.truth is not L for r in self.results):
            return ""
        pieces = list(summand(L, "gradient").atoms(sp.Piecewise))
        if len(pieces) != 1:
            return ""
        conds, before = [], sp.false
        for _, cond in pieces[0].args:  # where each branch applies
            conds.append(sp.simplify_logic(sp.And(cond, sp.Not(before))))
            before = sp.Or(before, cond)
        for k, cond in enumerate(conds):
            masks = [where(L, ("branch", k), cond, r.case) for r in self.results]
            inside = all(np.all(r.ok | m) for r, m in zip(self.results, masks))
            elsewhere = any(np.any(r.ok & ~m) for r, m in zip(self.results, masks))
            if inside and elsewhere:
                return (
                    f"{self.noun} is wrong only where {sp.sstr(cond)} (branch {k + 1} of "
                    "the Piecewise) and right elsewhere"
                )
        return ""

    # -- a term of the derivative missing, or counted twice
    def terms(self) -> str:
        T = self.results[0].case.truth
        if any(r.case.truth is not T for r in self.results):
            return ""
        terms = additive_terms(summand(T, self.what), T.pred)
        if len(terms) < 2:
            return ""
        parts = {
            id(r): [
                evaluate(T, ("term", k), term, r.case, self.what) for k, term in enumerate(terms)
            ]
            for r in self.results
        }
        for size in range(1, min(3, len(terms) - 1) + 1):
            for subset, sign in itertools.product(
                itertools.combinations(range(len(terms)), size), (-1, 1)
            ):
                if self.holds(
                    lambda r, s=subset, sg=sign: r.truth + sg * sum(parts[id(r)][k] for k in s)
                ):
                    shown = " and ".join(sp.sstr(terms[k] * T.coef / T.scale) for k in subset)
                    how = "without" if sign < 0 else "plus a second copy of"
                    why = (
                        "missing (a factor treated as a constant?)" if sign < 0 else "counted twice"
                    )
                    return (
                        f"{self.noun} equals the truth {how} the term(s) {shown}: a term of "
                        f"the product or chain rule {why}"
                    )
        return ""

    # -- right formula, lost digits
    def precision(self) -> str:
        worst = max(float(r.rel_err[~r.ok].max()) for r in self.failing)
        if worst > 1e-2:
            return ""
        return (
            f"{self.noun} loses precision (off by up to {_num(worst)} relative): a "
            "cancellation such as log(1 - p) for p near 1, or log(1 + exp(x)) for large x?"
        )


def _judged_by(case: Case, truth: Loss) -> Case:
    return dataclasses.replace(case, truth=truth)


def factors(L: Loss) -> list[sp.Expr]:
    """Constant factors a result is commonly off by, in the loss's size symbols."""
    n = L.indices[0][1]
    out = [sp.S.One, n, 1 / n]
    if len(L.input_indices) > 1:
        m = L.input_indices[-1][1]
        out += [m, 1 / m, n / m, m / n]
    return out + [sp.Integer(2), sp.Rational(1, 2)]


def at_sizes(L: Loss, f: sp.Expr, case: Case) -> float:
    """*f* at the sizes of *case* (n its first axis, m its last)."""
    sizes = {L.indices[0][1]: case.pred.shape[0], L.input_indices[-1][1]: case.pred.shape[-1]}
    return float(f.xreplace(sizes))


def scaling_hint(L: Loss, f: sp.Expr, what: str) -> str:
    """The usual cause of a result that is *f* times the truth."""
    mean = sp.fraction(sp.together(L.coef / L.scale))[1]  # what the reduction divides by
    half = sp.Rational(1, 2) in sp.Mul.make_args(L.scale)
    n = L.indices[0][1]
    if f.is_Symbol:
        if mean.has(f):
            if what == "value":
                return f"a sum instead of the mean (over {f})?"
            return f"did you forget the 1/{f} of the mean reduction?"
        return f"an extra factor {f}: a sum over {f} where the loss has none?"
    if (1 / f).is_Symbol:
        s = 1 / f
        if mean.has(s):
            return f"divided by {s} twice?"
        if s == n:
            return f"did you divide by {n}? the loss is not a mean (reduction {L.reduction!r})"
        return f"did you divide by {s}? the loss sums over {s} (a mean over every element?)"
    if f.free_symbols:
        return "divided by the size of the wrong axis?"
    if f == 2:
        if half:
            return (
                "did you drop the ½ factor? the loss is defined with ½, which cancels the "
                "2 of the derivative"
            )
        return "a factor 2 too many (a ½ dropped, or the derivative's 2 counted twice)?"
    if half:
        return "the ½ factor applied twice, or the 2 of the derivative dropped?"
    return "a ½ factor the loss does not have, or the 2 of a derivative dropped?"


def additive_terms(expr: sp.Expr, pred) -> list[sp.Expr]:
    """The terms of *expr* as the product and chain rules produced them.

    A constant factor is distributed over a sum (``-(a + b)/n`` gives two terms), but
    a factor of a product is not split (``(1 - y) log y`` stays one term).
    """
    if isinstance(expr, sp.Add):
        return [t for a in expr.args for t in additive_terms(a, pred)]
    if isinstance(expr, sp.Mul):
        varying = [f for f in expr.args if f.has(pred)]
        if len(varying) == 1 and isinstance(varying[0], sp.Add):
            rest = sp.Mul(*[f for f in expr.args if f is not varying[0]])
            return [rest * t for t in additive_terms(varying[0], pred)]
    return [expr]


def replace_size(expr: sp.Basic, old, new) -> sp.Basic:
    """*expr* with the size *old* replaced by *new*, except in the limits of sums."""
    if isinstance(expr, sp.Sum):
        return sp.Sum(replace_size(expr.function, old, new), *expr.limits)
    if expr == old:
        return new
    if not expr.args:
        return expr
    return expr.func(*[replace_size(a, old, new) for a in expr.args])


def _num(v: float) -> str:
    return f"{v:.3g}" if math.isfinite(v) else str(v)


def _factor(c: float) -> str:
    return f"{c:.1f}" if c == round(c) else f"{c:.3g}"

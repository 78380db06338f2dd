"""Inputs for the gradient checker, drawn from a loss's own domains, constraints and kinks.

Each family is a generator of ``Case`` objects: a prediction, a target, any extra
inputs, and the loss that is the truth for them.  That loss is the checked one, except
for a family that breaks one of its constraints (``unnormalised`` targets break
``one_hot``): there the truth is the same loss without its constraints, whose gradient is
:meth:`Loss.general_gradient`.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from symloss.core.loss import Loss
from symloss.numeric import evaluate as numeric
from symloss.numeric.kernel import Kernel
from symloss.numeric.stabilize import stabilize
from symloss.symbolic import derivatives
from symloss.symbols import logsumexp, sigmoid, softmax

SMOOTHING = 0.1  # label smoothing of the "smoothed" targets
REALS = sp.Interval(-sp.oo, sp.oo)


@dataclass
class Case:
    family: str
    pred: np.ndarray
    target: np.ndarray
    extra: dict[str, np.ndarray]
    truth: Loss  # the loss, or the loss without the constraints this family breaks
    kink: np.ndarray | None = None  # elements placed on a kink
    kink_at: np.ndarray | None = None  # which kink each of them is on
    memo: dict = field(default_factory=dict, init=False, repr=False)  # truths, scales


@dataclass
class Family:
    name: str
    make: Callable[[np.random.Generator], Case]
    optional: bool = False  # code may refuse these inputs (raise) without failing


def draw(dom, rng, shape) -> np.ndarray:
    """Points inside a Domain (the reals when *dom* is None)."""
    s = dom.set if dom is not None else REALS
    if isinstance(s, sp.FiniteSet):
        return rng.choice([float(v) for v in s], size=shape)
    lo, hi = s.inf, s.sup
    if lo.is_finite and hi.is_finite:
        lo, hi = float(lo), float(hi)
        return rng.uniform(lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo), size=shape)
    if lo.is_finite:
        return float(lo) + 1e-3 + rng.exponential(2.0, size=shape)
    if hi.is_finite:
        return float(hi) - 1e-3 - rng.exponential(2.0, size=shape)
    return rng.normal(0.0, 3.0, size=shape)


def edges(dom, rng, shape, logits: bool) -> np.ndarray:
    """Half the elements at the extremes of a Domain, half inside it."""
    s = dom.accepted if dom is not None else REALS
    if isinstance(s, sp.Interval) and s.inf.is_finite and s.sup.is_finite:
        lo, hi = float(s.inf), float(s.sup)
        w = hi - lo
        pool = [lo + 1e-12 * w, lo + 1e-6 * w, hi - 1e-6 * w, hi - 1e-12 * w]
        pool += [v for v in (lo, hi) if sp.Float(v) in s]  # the closure's endpoints
    elif s == REALS or s == sp.Interval.open(-sp.oo, sp.oo):
        pool = [-1e4, -30.0, 30.0, 1e4] if logits else [-1e6, -1e3, 1e-8, 1e3, 1e6]
    elif isinstance(s, sp.Interval) and (s.inf.is_finite or s.sup.is_finite):  # a half-line
        end, sign = (float(s.inf), 1.0) if s.inf.is_finite else (float(s.sup), -1.0)
        pool = [end + sign * d for d in (1e-12, 1e-6, 1e3, 1e6)]
        pool += [end] if sp.Float(end) in s else []
    else:
        return draw(dom, rng, shape)
    out = draw(dom, rng, shape)
    pick = rng.random(shape) < 0.5
    out[pick] = rng.choice(pool, size=int(pick.sum()))
    return out


def on_logits(L: Loss) -> bool:
    """Is the input a logit (fed through a sigmoid or softmax)?"""
    return L.composition is not None or L.term.has(sigmoid, softmax, logsumexp)


def families(L: Loss) -> list[Family]:
    """The input families for *L*, in report order."""
    pdom = L.domains.get(str(L.pred.label))
    tdom = L.domains.get(str(L.target.label))
    tset = tdom.set if tdom is not None else REALS
    two_d = len(L.input_indices) == 2
    one_hot = two_d and any(c.name == "one_hot" for c in L.constraints)
    # Probability predictions of a categorical loss come in rows that sum to 1.
    rows = two_d and pdom is not None and pdom.set == sp.Interval.open(0, 1)
    logits = on_logits(L)
    extra_doms = {str(b.label): L.domains.get(str(b.label)) for b in L.extra_inputs}

    def shape(rng):  # n and m never equal, and never 2: factors n, m and 2 stay distinct
        n = int(rng.choice([3, 5, 7]))
        return (n, int(rng.choice([4, 6]))) if two_d else (n,)

    targets: dict[str, Callable] = {}
    if one_hot:
        targets["one-hot"] = lambda rng, s: np.eye(s[1])[rng.integers(0, s[1], s[0])]
        targets["smoothed"] = lambda rng, s: (
            targets["one-hot"](rng, s) * (1 - SMOOTHING) + SMOOTHING / s[1]
        )
        targets["soft"] = lambda rng, s: rng.dirichlet(np.ones(s[1]), size=s[0])
    elif isinstance(tset, sp.FiniteSet):
        targets["hard"] = lambda rng, s: draw(tdom, rng, s)
    elif tset.is_subset(sp.Interval(0, 1)):
        targets["hard"] = lambda rng, s: rng.integers(0, 2, s).astype(float)
        targets["smoothed"] = lambda rng, s: (
            targets["hard"](rng, s) * (1 - SMOOTHING) + SMOOTHING / 2
        )
        targets["soft"] = lambda rng, s: rng.uniform(0, 1, s)
    else:
        targets["real"] = lambda rng, s: draw(tdom, rng, s)
    usual = list(targets)

    def any_target(rng, s):
        return targets[usual[rng.integers(len(usual))]](rng, s)

    def interior(rng, s):
        p = draw(pdom, rng, s)
        return p / p.sum(axis=-1, keepdims=True) if rows else p

    def family(name, pred_of, target_of, truth=L):
        def make(rng):
            s = shape(rng)
            pred, target = pred_of(rng, s), target_of(rng, s)
            extra = {k: draw(d, rng, s) for k, d in extra_doms.items()}
            return finite_truth(Case(name, pred, target, extra, truth))

        return make

    out = [
        Family("interior", family("interior", interior, any_target)),
        Family("edges", family("edges", lambda rng, s: edges(pdom, rng, s, logits), any_target)),
    ]
    if derived(L).kinks:
        out.append(Family("kinks", lambda rng: kink_case(L, rng, shape(rng), any_target)))
    if len(usual) > 1:
        out += [Family(k, family(k, interior, targets[k])) for k in usual]
    if one_hot:

        def unnormalised(rng, s):  # elements in [0, 1], rows summing to anything but 1
            return rng.uniform(0.05, 1.0, s) * rng.choice([0.3, 1.0], size=(s[0], 1))

        relaxed = derived(L).relaxed
        out.append(
            Family("unnormalised", family("unnormalised", interior, unnormalised, relaxed), True)
        )
        labels = family("labels", interior, lambda rng, s: rng.integers(0, s[1], s[0]))
        out.append(Family("labels", labels, True))
    return out


def finite_truth(case: Case) -> Case:
    """Move exact endpoints inward where the truth is infinite (y = 0 with t = 1)."""
    T = case.truth
    with np.errstate(all="ignore"):
        value = np.asarray(T(case.pred, case.target, **case.extra), dtype=np.float64)
        grad = T.grad(case.pred, case.target, **case.extra)
    dom = T.domains.get(str(T.pred.label))
    if np.all(np.isfinite(value)) and np.all(np.isfinite(grad)) or dom is None:
        case.memo.update(value=value, gradient=grad)
        return case
    lo, hi = float(dom.accepted.inf), float(dom.accepted.sup)
    pred = np.where(case.pred == lo, lo + 1e-12, np.where(case.pred == hi, hi - 1e-12, case.pred))
    return dataclasses.replace(case, pred=pred)


def describe(L: Loss, case: Case, idx=None) -> str:
    """One input element (or the whole input when *idx* is None), for people."""
    p, t = str(L.pred.label), str(L.target.label)
    dims = ", ".join(f"{s} = {d}" for (_, s), d in zip(L.input_indices, case.pred.shape))
    if idx is None:
        shown = np.array2string(case.pred, precision=4, threshold=12, separator=", ")
        return f"{p} = {' '.join(shown.split())} ({dims}, {case.family})"
    idx = tuple(int(q) for q in idx)
    ti = idx if case.target.shape == case.pred.shape else idx[: case.target.ndim]
    return (
        f"{p}[{', '.join(map(str, idx))}] = {case.pred[idx]:.6g} "
        f"({t}[{', '.join(map(str, ti))}] = {case.target[ti]:.6g}; {dims}, {case.family})"
    )


def as_dict(case: Case) -> dict:
    """The input as JSON-able lists, to reproduce a failure."""
    arrays = {"pred": case.pred, "target": case.target, **case.extra}
    return {"family": case.family, **{k: v.tolist() for k, v in arrays.items()}}


# ------------------------------------------------------------------ derived pieces
class Derived:
    """What the checker compiles once per loss: the relaxed loss, kinks, kernels."""

    def __init__(self, L: Loss):
        self.L = L
        self.relaxed = dataclasses.replace(L, constraints=()) if L.constraints else L
        self.kinks = kink_solutions(L)
        self._cache: dict = {}

    def variant(self, key, **changes) -> Loss:
        """The loss without constraints, with some fields changed (a swapped size)."""
        if key not in self._cache:
            self._cache[key] = dataclasses.replace(self.relaxed, **changes)
        return self._cache[key]

    def kernel(self, key, expr: sp.Expr, layout) -> Kernel:
        """A stable kernel of *expr* (a term, a magnitude, a condition), compiled once."""
        if key not in self._cache:
            stable = stabilize(expr, frozenset({self.L.target}))
            self._cache[key] = Kernel(stable, layout)
        return self._cache[key]


_DERIVED: dict[int, tuple[weakref.ref, Derived]] = {}


def derived(L: Loss) -> Derived:
    # Keyed by identity: a Loss holds dicts, so it is not hashable.
    hit = _DERIVED.get(id(L))
    if hit is None or hit[0]() is not L:
        hit = (weakref.ref(L), Derived(L))
        _DERIVED[id(L)] = hit
    return hit[1]


def evaluate(T: Loss, key, expr: sp.Expr, case: Case, what: str, finite=False) -> np.ndarray:
    """*expr*, per element of *T*'s sum-reduced loss, reduced as T reduces its *what*.

    The one place the checker uses the evaluation layer (:func:`numeric.evaluate.prepare`, the
    batch's ``scale_rows``/``unflatten``, :func:`numeric.evaluate.reduce`), to evaluate
    expressions that are not the loss itself: term magnitudes, single terms, the
    constrained gradient.
    """
    b = numeric.prepare(T, case.pred, case.target, None, dict(case.extra))
    layout = T.indices if what == "value" else T.input_indices
    per = derived(T).kernel((key, what), expr, layout)(b.arrays, b.sizes)
    per = np.array(np.broadcast_to(per, b.value_shape if what == "value" else b.shape), float)
    if finite:
        per = np.nan_to_num(per, nan=0.0, posinf=0.0, neginf=0.0)
    if what == "value":
        rows = per.reshape(per.shape[0], -1).sum(axis=1) if per.ndim > 1 else per
        return np.asarray(numeric.reduce(T, b, rows), dtype=np.float64)
    return b.unflatten(b.scale_rows(per))


def where(T: Loss, key, cond, case: Case) -> np.ndarray:
    """The elements of *case*'s input where the condition *cond* holds."""
    b = numeric.prepare(T, case.pred, case.target, None, dict(case.extra))
    if cond == sp.true:
        return np.ones(case.pred.shape, bool)
    mask = derived(T).kernel(key, cond, T.input_indices)(b.arrays, b.sizes)
    return b.unflatten(np.array(np.broadcast_to(mask, b.shape), bool))


def summand(T: Loss, what: str) -> sp.Expr:
    """The per-element expression of T's sum-reduced value or (raw) gradient."""
    d = derivatives.of(T)
    return d.kernel_summand if what == "value" else d.kernel_gradient[0]


def magnitude(expr: sp.Expr) -> sp.Expr:
    """*expr* with every term of every sum and product made positive."""
    if isinstance(expr, (sp.Add, sp.Mul)):
        return expr.func(*map(magnitude, expr.args))
    if isinstance(expr, sp.Pow) and expr.exp.is_integer and expr.exp.is_positive:
        return magnitude(expr.base) ** expr.exp
    if isinstance(expr, sp.Sum):
        return sp.Sum(magnitude(expr.function), *expr.limits)
    return sp.Abs(expr)


def kink_solutions(L: Loss) -> list[tuple[str, Callable]]:
    """``(description, x(target))`` for each kink of a separable loss.

    The zeros of :attr:`Loss.kinks` are solved for the prediction element in terms of
    the target element; kinks that depend on anything else are not placed.
    """
    if not L.separable:
        return []
    x, tau = sp.Dummy("x", real=True), sp.Dummy("tau", real=True)
    elem, telem = L.element, L.target[L.element.indices]
    values = {
        p.symbol: sp.nsimplify(L.param_values[p.name])
        for p in L.params
        if isinstance(p.symbol, sp.Symbol) and isinstance(L.param_values[p.name], (int, float))
    }
    found = []
    for k in getattr(L, "kinks", ()):
        expr = k.xreplace({elem: x, telem: tau, **values})
        if expr.free_symbols - {x, tau}:
            continue
        try:
            solutions = sp.solve(expr, x)
        except (NotImplementedError, ValueError, TypeError):
            continue
        for sol in solutions:
            shown = f"{elem} = {sol.xreplace({tau: telem})} (from {k} = 0)"
            found.append((shown, sp.lambdify(tau, sol, "numpy")))
    return found


def kink_case(L: Loss, rng, shape, target_of) -> Case:
    """Half the elements on a kink (chosen at random among the loss's kinks)."""
    kinks = derived(L).kinks
    pdom = L.domains.get(str(L.pred.label))
    target = target_of(rng, shape)
    pred = draw(pdom, rng, shape)
    at = rng.integers(0, len(kinks), shape)
    place = rng.random(shape) < 0.5
    with np.errstate(all="ignore"):
        for k, (_, where) in enumerate(kinks):
            pred = np.where(place & (at == k), np.broadcast_to(where(target), shape), pred)
    inside = ~pdom.violations(pred) if pdom is not None else np.isfinite(pred)
    pred = np.where(inside, pred, draw(pdom, rng, shape))
    return Case("kinks", pred, target, {}, L, place & inside, at)

"""Inputs for the framework tests: random ones inside each loss's domains and away from
its kinks, and ones at the edges of its domains.

The edges are those of tests/integration/test_edges_mpmath.py (logits of ±1e4 and ±30,
probabilities of 0, 1, 1e-12 and 1 - 1e-12, residuals of ±1e8, half-lines at 1e-12 and
1e12), where symloss's NumPy path is checked against mpmath; here the frameworks are
checked against that NumPy path.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from conftest import Case, kink_values
from shared import _same

LOGIT_EDGES = [1e4, -1e4, 30.0, -30.0, 0.5]
P_EDGES = [0.0, 1.0, 1e-12, 1 - 1e-12, 0.5]
RESIDUAL_EDGES = [1e8, -1e8, 0.5]
HALFLINE_EDGES = [1e-12, 1e12, 1.0]


def _set(loss, key):
    dom = loss.domains.get(key)
    return dom.accepted if dom is not None else sp.Interval(-sp.oo, sp.oo)


def _draw(rng, s, shape):
    if isinstance(s, sp.FiniteSet):
        return rng.choice([float(v) for v in s], size=shape)
    lo = float(s.inf) if s.inf.is_finite else -3.0
    hi = float(s.sup) if s.sup.is_finite else 3.0
    if s.inf.is_finite and not s.sup.is_finite:
        lo, hi = float(s.inf) + 0.1, float(s.inf) + 3.0
    return rng.uniform(lo + 0.02, hi - 0.02, size=shape)


def one_hot(loss) -> bool:
    return any(c.name == "one_hot" for c in loss.constraints)


def random_case(loss, seed: int = 0, n: int = 5, m: int = 4, margin: float = 1e-3) -> Case:
    """A case inside the domains, every kink at least *margin* away (finite differences
    with steps of 1e-6 see a smooth function)."""
    rng = np.random.default_rng(seed)
    shape = (n,) if len(loss.input_indices) == 1 else (n, m)
    for _ in range(200):
        pred = _draw(rng, _set(loss, str(loss.pred.label)), shape)
        if one_hot(loss):
            w = rng.uniform(0.05, 1.0, size=shape)
            target = w / w.sum(axis=1, keepdims=True)
        else:
            target = _draw(rng, _set(loss, str(loss.target.label)), shape)
        kw = {str(b.label): _draw(rng, _set(loss, str(b.label)), shape) for b in loss.extra_inputs}
        case = Case(pred, target, kw)
        if all(np.all(np.abs(kink_values(loss, k, case)) > margin) for k in loss.kinks):
            return case
    raise AssertionError(f"no input away from the kinks of {loss.name}")


def _edge_values(loss, key, is_pred):
    s = _set(loss, key)
    if isinstance(s, sp.FiniteSet):
        return [float(v) for v in s]
    if s.inf == 0 and s.sup == 1:
        return P_EDGES
    if s.inf.is_infinite and s.sup.is_infinite:
        return LOGIT_EDGES if key == "z" else RESIDUAL_EDGES
    if s.inf == -1:
        return [-1 + 1e-12, 1e12, 1.0]
    values = HALFLINE_EDGES if is_pred or s.left_open else [0.0, *HALFLINE_EDGES]
    return [v for v in values if v in s or (v == float(s.inf) and not s.left_open)]


def edge_cases(loss) -> list[tuple[str, Case]]:
    """Every pairing of a prediction edge and a target edge, as one batch per target."""
    preds = _edge_values(loss, str(loss.pred.label), True)
    targets = _edge_values(loss, str(loss.target.label), False)
    out = []
    if len(loss.input_indices) == 1:
        for t in targets:
            pred = np.array(preds)
            target = np.full(len(preds), t)
            kw = {str(b.label): np.full(len(preds), 1.0) for b in loss.extra_inputs}
            out.append((f"t={t:g}", Case(pred, target, kw)))
            for v in HALFLINE_EDGES if loss.extra_inputs else ():  # a variance of 1e-12, 1e12
                kw = {str(b.label): np.full(len(preds), v) for b in loss.extra_inputs}
                out.append((f"t={t:g},extra={v:g}", Case(pred, target, kw)))
        return out
    m = 3
    rows = np.array([preds[i : i + m] for i in range(0, len(preds) - m + 1)])
    for c in range(m):
        if one_hot(loss):
            target = np.zeros_like(rows)
            target[:, c] = 1.0
        else:
            target = np.full_like(rows, targets[c % len(targets)])
        out.append((f"class{c}", Case(rows, target, {})))
    return out


def same(a, b) -> bool:
    """Equal to 1e-12 relative (or 1e-12 of the largest entry), NaN and inf where the
    other is (shared._same, the comparison the kernel backends are held to)."""
    return _same(a, b)


def close32(a, b, rtol: float = 2e-4) -> bool:
    """float32 results against float64 ones: float32's precision, relative to the
    largest entry (a value that cancels to near 0 keeps float32's absolute error)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    return bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale))

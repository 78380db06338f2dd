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


def hessian_entries(loss, pred, full) -> np.ndarray:
    """The entries ``loss.hess`` returns, taken from a framework's full Hessian *full*
    (shape pred.shape * 2): its diagonal, or the per-sample (m, m) blocks of a loss
    whose rows are not separable."""
    if pred.ndim == 1:
        return np.diagonal(full)
    if loss.separable:
        return np.einsum("ijij->ij", full)
    return np.einsum("ijik->ijk", full)


def close32(a, b, rtol: float = 2e-4) -> bool:
    """float32 results against float64 ones: float32's precision, relative to the
    largest entry (a value that cancels to near 0 keeps float32's absolute error)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    return bool(np.allclose(a, b, rtol=rtol, atol=rtol * scale))


def option_cases() -> list[tuple[str, str, dict, dict]]:
    """The options of the issue, each on inputs that exercise it: ``(id, loss name,
    options, inputs)``, the inputs ``pred``, ``target``, ``weight`` and extra keywords.

    Integer labels hold PyTorch's ignore_index (-100) twice, so that the weighted mean
    divides by the summed class weights of the kept labels only."""
    rng = np.random.default_rng(21)
    z = rng.normal(scale=3.0, size=(9, 4))
    labels = rng.integers(0, 4, 9)
    labels[[2, 6]] = -100
    soft = rng.uniform(0.1, 1.0, (9, 4))
    soft /= soft.sum(axis=1, keepdims=True)
    x, y = rng.normal(scale=3.0, size=12), rng.normal(size=12)
    b = (rng.random(12) < 0.5).astype(float)
    w12, w9 = rng.uniform(0.0, 2.0, 12), rng.uniform(0.0, 2.0, 9)
    cw = [0.5, 2.0, 1.0, 3.0]
    return [
        ("pos_weight", "bce_logits", {"pos_weight": 2.5}, dict(pred=x, target=b, weight=w12)),
        ("focal_alpha_gamma", "sigmoid_focal", {"alpha": 0.6, "gamma": 3.0},
         dict(pred=x, target=b, weight=w12)),
        ("huber_delta", "huber", {"delta": 0.3}, dict(pred=x, target=y, weight=None)),
        ("var", "gaussian_nll", {}, dict(pred=x, target=y, weight=w12, var=np.exp(y))),
        ("labels_ignore_index", "cce_logits", {}, dict(pred=z, target=labels, weight=None)),
        ("labels_class_weight_smoothing", "cce_logits",
         {"class_weight": cw, "label_smoothing": 0.1}, dict(pred=z, target=labels, weight=w9)),
        ("one_hot_rows_class_weight", "cce_logits", {"class_weight": cw},
         dict(pred=z, target=soft, weight=w9)),
        ("poly1_labels", "poly1", {"epsilon": 2.0},  # no ignore_index: every label kept
         dict(pred=z, target=np.abs(labels) % 4, weight=None)),
    ]  # fmt: skip

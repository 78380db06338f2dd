"""Property tests over every loss with hyperparameters, weights and reductions drawn, and
inputs near the kinks (issue 20).

``tests/test_properties.py`` draws inputs for the default hyperparameters only, keeps
1e-3 away from every kink and compares with finite differences of the loss's own value,
which a wrong weight, divisor or reduction passes.  Here, for every registered loss:

* the hyperparameters are drawn from each one's declared domain, ends included;
* the reductions and sample weights must agree with each other exactly as the README
  says (``weight=`` multiplies each sample's loss, ``mean`` divides the weighted sum by
  the count, ``none`` returns the weighted per-sample values), for value, gradient,
  Hessian and ``value_and_grad``;
* the gradient of the sum matches central differences with a step smaller than the
  distance to the nearest kink, for inputs drawn as close as 1e-6 to a kink.

The references that do not come from symloss at all are in test_options_reference.py,
test_edges_reference.py, test_torch_*.py and test_jax_properties.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import LOSSES, _data_switches, inputs, kink_values
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import symloss

SCALAR_PARAMS = [
    L for L in LOSSES if any(not isinstance(p.symbol, sp.IndexedBase) for p in L.params)
]


def _param_strategy(domain: sp.Set, moderate: bool) -> list[float]:
    """Low end, middle, high end of *domain*: a closed end itself, just inside an open
    one (1e-9, or 0.05 when *moderate*, for finite differences), 1e3 (5) for infinity."""
    if isinstance(domain, sp.Union):  # tweedie's (1, 2) U (2, oo): both parts' ends
        low, high = (_param_strategy(part, moderate) for part in domain.args)
        return [low[0], low[-1], high[-1]]
    lo, hi = float(domain.inf), float(domain.sup)
    inner_lo = lo if not domain.left_open else lo + (0.05 if moderate else 1e-9 * max(1, abs(lo)))
    inner_hi = hi if not domain.right_open else hi - (0.05 if moderate else 1e-9 * max(1, abs(hi)))
    if np.isinf(lo):
        inner_lo = -5.0
    if np.isinf(hi):
        inner_hi = inner_lo + (5.0 if moderate else 1e3)
    if moderate:
        inner_lo = max(inner_lo, -5.0)
    # A grid, not st.floats: each distinct value binds a new Loss whose kernels are
    # built once (symloss caches them per bound loss), so a few values keep this fast.
    return [float(v) for v in np.unique([inner_lo, (inner_lo + inner_hi) / 2, inner_hi])]


@st.composite
def bound_loss(draw, base, moderate=False):
    """Hyperparameters: each at a low end, the middle or a high end of its domain, in
    five patterns (all low, all middle, all high, and low/high alternating both ways),
    so that a loss with three of them binds at most five (each compiles its kernels)."""
    scalar = [
        p for p in base.params if not isinstance(p.symbol, sp.IndexedBase) and p.domain is not None
    ]
    grids = [_param_strategy(p.domain, moderate) for p in scalar]
    pattern = draw(st.sampled_from(["low", "middle", "high", "low-high", "high-low"]))
    params = {}
    for k, (p, grid) in enumerate(zip(scalar, grids)):
        pick = {"low": 0, "middle": 1, "high": 2}.get(pattern)
        if pick is None:
            pick = 2 * ((k + (pattern == "high-low")) % 2)
        params[p.name] = grid[min(pick, len(grid) - 1)]
    return params


def _count(L, pred) -> int:
    """The mean's divisor, by the README and each loss's conventions."""
    if len(L.input_indices) == 1:
        return pred.size  # element-wise: every element is a sample
    if L.name == "kl_divergence":
        return pred.size  # PyTorch's kl_div 'mean': over all n m elements
    return pred.shape[0]


def _scaled(a, w):
    return a * w.reshape((-1,) + (1,) * (a.ndim - 1))


@pytest.mark.slow  # 32 losses x 15 drawn cases x 12 calls
@pytest.mark.parametrize("base", LOSSES, ids=lambda L: L.name)
@settings(max_examples=15)
@given(data=st.data())
def test_weights_and_reductions_agree(base, data):
    params = data.draw(bound_loss(base), label="params")
    case = data.draw(inputs(base, kink_margin=1e-6), label="case")
    pred, target, kw = case.pred, case.target, case.kw
    flat = len(base.input_indices) == 1
    n = pred.size if flat else pred.shape[0]
    w = np.array(data.draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=n, max_size=n)))
    get = lambda r: symloss.get(base.name, reduction=r, **params)  # noqa: E731
    none, total, mean = get("none"), get("sum"), get("mean")
    with np.errstate(all="ignore"):
        per = np.asarray(none(pred, target, **kw)).reshape(-1)
        assume(np.all(np.isfinite(per)))
        g = total.grad(pred, target, **kw)
        h = total.hess(pred, target, **kw)
        assume(np.all(np.isfinite(g)) and np.all(np.isfinite(h)))
    tol = {"rtol": 1e-10, "atol": 1e-12 * max(1.0, np.abs(per).max())}
    np.testing.assert_allclose(
        np.asarray(none(pred, target, weight=w, **kw)).reshape(-1), per * w, **tol
    )
    np.testing.assert_allclose(total(pred, target, weight=w, **kw), np.sum(per * w), **tol)
    count = _count(base, pred)
    np.testing.assert_allclose(mean(pred, target, weight=w, **kw), np.sum(per * w) / count, **tol)
    gw = _scaled(g.reshape(n, -1), w).reshape(pred.shape)
    hw = _scaled(h.reshape(n, -1), w).reshape(h.shape)
    gtol = {"rtol": 1e-10, "atol": 1e-12 * max(1.0, np.abs(g).max())}
    htol = {"rtol": 1e-10, "atol": 1e-12 * max(1.0, np.abs(h).max())}
    np.testing.assert_allclose(total.grad(pred, target, weight=w, **kw), gw, **gtol)
    np.testing.assert_allclose(mean.grad(pred, target, weight=w, **kw), gw / count, **gtol)
    np.testing.assert_allclose(none.grad(pred, target, weight=w, **kw), gw, **gtol)
    np.testing.assert_allclose(mean.hess(pred, target, weight=w, **kw), hw / count, **htol)
    v, vg = mean.value_and_grad(pred, target, weight=w, **kw)
    np.testing.assert_allclose(v, np.sum(per * w) / count, **tol)
    np.testing.assert_allclose(vg, gw / count, **gtol)


def _kink_distance(loss, case) -> float:
    d = np.inf
    for kink in (*loss.kinks, *_data_switches(loss)):
        d = min(d, float(np.min(np.abs(kink_values(loss, kink, case)))))
    return d


@pytest.mark.slow
@pytest.mark.parametrize("base", SCALAR_PARAMS, ids=lambda L: L.name)
@settings(max_examples=15)
@given(data=st.data())
def test_gradient_near_kinks_with_drawn_hyperparameters(base, data):
    params = data.draw(bound_loss(base, moderate=True), label="params")
    L = symloss.get(base.name, reduction="sum", **params)
    case = data.draw(inputs(L, kink_margin=1e-6), label="case")
    pred, target, kw = case.pred, case.target, case.kw
    # A step well inside the distance to the nearest kink (in the kink's own units; the
    # kinks here are linear in the prediction with slopes of order 1).
    h = min(1e-6, 0.05 * _kink_distance(L, case))
    assume(h > 1e-9)
    with np.errstate(all="ignore"):
        g = L.grad(pred, target, **kw)
        assume(np.all(np.isfinite(g)))

        def central(h):
            fd = np.zeros_like(pred)
            for idx in np.ndindex(pred.shape):
                step = h * max(1.0, abs(pred[idx]))
                up, down = pred.copy(), pred.copy()
                up[idx] += step
                down[idx] -= step
                fd[idx] = (L(up, target, **kw) - L(down, target, **kw)) / (2 * step)
            return fd

        fd, coarse = central(h), central(2 * h)
    # Central differences lose ~eps |E| / h: widen the floor for small steps.  Where the
    # value is a small difference of large terms (Tweedie at high powers, next to its
    # minimum) they lose more: the disagreement between steps h and 2h measures it.
    floor = 1e-7 + 1e-15 * max(1.0, abs(L(pred, target, **kw))) / h
    floor += 2 * float(np.max(np.abs(fd - coarse)))
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=floor)

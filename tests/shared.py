"""Helpers shared by several test modules: mpmath references, the naive forms the
stable ones are proven equal to, central differences, the kernel comparison against
lambdify, and the article's formulas."""

from __future__ import annotations

from pathlib import Path

import mpmath
import numpy as np
import sympy as sp

from symloss.numeric import evaluate
from symloss.symbols import logsumexp, softplus, xdivy, xlogy

#: The repository's root (tests/ is one level down, each test folder two).
ROOT = Path(__file__).resolve().parent.parent


def _naive(expr):
    return expr.rewrite(sp.exp)


def _unstabilize(expr):
    """Undo every kernel-only function, back to exp/log."""
    expr = expr.replace(lambda e: isinstance(e, (xlogy, xdivy)), lambda e: e.rewrite(sp.log))
    expr = expr.replace(lambda e: isinstance(e, (softplus, logsumexp)), lambda e: e.rewrite(sp.exp))
    return expr.rewrite(sp.exp)


def reference(f, *args):
    """*f* evaluated by mpmath at 50 digits, checked stable against 100 digits.

    A high-precision reference can still cancel (log(sigmoid(400)) needs ~175 digits
    as written), so the value is recomputed at twice the precision and must agree.
    """
    values = []
    for dps in (50, 100):
        with mpmath.workdps(dps):
            values.append(f(*[mpmath.mpf(a) for a in args]))
    a, b = values
    assert abs(a - b) <= mpmath.mpf(10) ** -30 * abs(b), "reference not stable"
    return float(b)


def numeric_grad(loss, pred, target, h=1e-6, **kw):
    """Central differences of ``loss(pred, target)``, one element at a time."""
    g = np.zeros_like(pred)
    for idx in np.ndindex(pred.shape):
        step = h * max(1.0, abs(pred[idx]))
        up, down = pred.copy(), pred.copy()
        up[idx] += step
        down[idx] -= step
        g[idx] = (loss(up, target, **kw) - loss(down, target, **kw)) / (2 * step)
    return g


SPECIALS = np.array([-np.inf, -1e300, -2.5, -1.0, -0.0, 0.0, 1e-310, 0.5, 1.0, 3.0, np.inf, np.nan])


def _kernels(loss):
    kernels = {
        "value": evaluate.of(loss).value,
        "gradient": evaluate.of(loss).gradient,
        "Hessian": evaluate.of(loss).hessian,
    }
    if evaluate.of(loss).fused is not None:
        kernels["value and gradient"] = evaluate.of(loss).fused
    return kernels


def _same(a, b) -> bool:
    """Equal to 1e-12 relative, or to 1e-12 absolute of max(1, the largest entry).

    Two orders of the same operations round differently where terms cancel (a
    cosine distance of 6e-14 between identical rows is 1 - 0.99999999999994 and
    differs in its 3rd digit); the drawn inputs keep every term O(1), as in
    tests/test_properties.py, so this absolute floor is rounding, not a wrong formula.
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    both_nan = np.isnan(a) & np.isnan(b)
    finite = np.isfinite(a) & np.isfinite(b)
    scale = np.max(np.abs(np.where(finite, a, 0.0)), initial=0.0)
    close = np.isclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, scale)) | (a == b)
    return bool(np.all(both_nan | close))


def check_against_lambdify(loss, case, backend: str) -> None:
    """Every kernel of *loss* through Kernel.evaluate (the backend the test set) on
    *case*, against the same kernel's lambdify code; also used by test_compiled.py."""
    batch = evaluate.prepare(loss, case.pred, case.target, None, dict(case.kw))
    for what, kernel in _kernels(loss).items():
        expected = kernel(batch.arrays, batch.sizes)
        got = kernel.evaluate(batch.arrays, batch.sizes)
        pairs = zip(expected, got) if isinstance(kernel.expr, tuple) else [(expected, got)]
        for e, g in pairs:
            assert _same(e, g), f"{loss.name} {what}: {backend} {g} != lambdify {e}"


ARTICLE_FORMULAS = {
    "sse": r"E = \frac{1}{2}\sum_{k=1}^{n}{(y_k-t_k)^2}",
    "bce": r"E = -\frac{1}{n}\sum_{i\,=\,1}^{n}{(t_i\,log\,y_i + (1-t_i)\,log(1-y_i))}",
    "cce": r"E = -\frac{1}{n}\sum_{i\,=\,1}^{n}{\sum_{j\,=\,1}^{m}{(t_{ij}\,log\,y_{ij})}}",
}

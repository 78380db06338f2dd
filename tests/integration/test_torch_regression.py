"""Regression and probabilistic losses against PyTorch, when it is installed (optional).

Value, gradient and Hessian diagonal on random inputs, for every reduction, and the
subgradients at the kinks.  Core CI does not need torch: the module is skipped without it.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

import symloss

torch = require("torch")
F = torch.nn.functional
from torch.func import grad as tgrad  # noqa: E402
from torch.func import jacrev  # noqa: E402

RNG = np.random.default_rng(2024)
N = 7


def _t(a):
    return torch.tensor(a, dtype=torch.float64)


def _check(loss, torch_fn, pred, target, **extra):
    """Value, gradient and Hessian diagonal of ``loss`` equal torch's, in float64."""
    tt = _t(target)
    kw = {k: _t(v) for k, v in extra.items()}

    def f(p):
        return torch_fn(p, tt, **kw)

    p = _t(pred)
    if loss.reduction == "none":
        np.testing.assert_allclose(loss(pred, target, **extra), f(p).numpy(), rtol=1e-13)

        def f(p):  # the gradient of "none" is the gradient of the sum (symloss's convention)
            return torch_fn(p, tt, **kw).sum()

    else:
        assert loss(pred, target, **extra) == pytest.approx(f(p).item(), rel=1e-13)
    np.testing.assert_allclose(
        loss.grad(pred, target, **extra), tgrad(f)(p).numpy(), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        loss.hess(pred, target, **extra),
        # Reverse over reverse: torch.func.hessian's forward mode warns (torch.jit.script).
        torch.diagonal(jacrev(tgrad(f))(p)).numpy(force=True),
        rtol=1e-12,
        atol=1e-15,
    )


REDUCTIONS = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    ("name", "options", "torch_fn"),
    [
        ("mse", {}, lambda p, t, r: F.mse_loss(p, t, reduction=r)),
        ("l1", {}, lambda p, t, r: F.l1_loss(p, t, reduction=r)),
        ("huber", {"delta": 0.7}, lambda p, t, r: F.huber_loss(p, t, reduction=r, delta=0.7)),
        (
            "smooth_l1",
            {"beta": 1.3},
            lambda p, t, r: F.smooth_l1_loss(p, t, reduction=r, beta=1.3),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_regression_matches_torch_on_random_inputs(name, options, torch_fn, reduction):
    pred, target = RNG.normal(size=N) * 2, RNG.normal(size=N) * 2
    L = symloss.get(name, reduction=reduction, **options)
    _check(L, lambda p, t: torch_fn(p, t, reduction), pred, target)


def _torch_reduce(x, reduction):
    return {"mean": x.mean(), "sum": x.sum(), "none": x}[reduction]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_log_cosh_and_pinball_match_their_torch_formulas(reduction):
    # No torch built-ins: Keras's log_cosh formula and tfa's max-form pinball, in torch.
    pred, target = RNG.normal(size=N) * 3, RNG.normal(size=N) * 3

    def log_cosh(p, t):
        e = p - t
        return _torch_reduce(e + F.softplus(-2 * e) - np.log(2.0), reduction)

    def pinball(p, t):
        e = t - p
        return _torch_reduce(torch.maximum(0.3 * e, (0.3 - 1) * e), reduction)

    _check(symloss.get("log_cosh", reduction=reduction), log_cosh, pred, target)
    _check(symloss.get("pinball", quantile=0.3, reduction=reduction), pinball, pred, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input", [True, False])
@pytest.mark.parametrize("full", [False, True])
def test_poisson_nll_matches_torch(log_input, full, reduction):
    pred = RNG.normal(size=N) if log_input else RNG.uniform(0.0, 4.0, N)
    target = RNG.poisson(3.0, N).astype(float)
    target[0], target[1] = 0.0, 1.0  # both sides of the Stirling mask
    L = symloss.get("poisson_nll", log_input=log_input, full=full, reduction=reduction)

    def fn(p, t):
        return F.poisson_nll_loss(p, t, log_input=log_input, full=full, reduction=reduction)

    _check(L, fn, pred, target)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_matches_torch(full, reduction):
    pred, target = RNG.normal(size=N), RNG.normal(size=N)
    var = RNG.uniform(0.0, 2.0, N)
    var[0] = 1e-9  # clamped to eps
    L = symloss.get("gaussian_nll", full=full, reduction=reduction)

    def fn(p, t, var):
        return F.gaussian_nll_loss(p, t, var, full=full, reduction=reduction)

    _check(L, fn, pred, target, var=var)


# ------------------------------------------------------------------ kinks
def test_subgradients_at_kinks_match_torch_autograd():
    target = np.zeros(5)
    pred = np.array([0.0, 1.0, -1.0, 0.5, 2.0])  # e = 0, e = +-delta, inside, outside
    for name, options, fn in [
        ("l1", {}, lambda p, t: F.l1_loss(p, t, reduction="sum")),
        ("huber", {"delta": 1.0}, lambda p, t: F.huber_loss(p, t, reduction="sum", delta=1.0)),
        (
            "smooth_l1",
            {"beta": 1.0},
            lambda p, t: F.smooth_l1_loss(p, t, reduction="sum", beta=1.0),
        ),
        (
            "pinball",
            {"quantile": 0.3},
            lambda p, t: torch.maximum(0.3 * (t - p), -0.7 * (t - p)).sum(),
        ),
    ]:
        _check(symloss.get(name, reduction="sum", **options), fn, pred, target)

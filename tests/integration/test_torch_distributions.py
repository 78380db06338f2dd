"""Optional: value, gradient and Hessian against PyTorch on random inputs.

KL divergence and the cosine distance are compared with PyTorch's own losses
(``F.kl_div``, ``F.cosine_embedding_loss``); the generalised KL, Dice and Tversky losses,
which PyTorch does not ship, with autograd through the same formula written in torch,
which checks symloss's symbolic derivatives against an independent differentiation.
These losses are smooth, so there is no subgradient convention to compare.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

import symloss

torch = require("torch")
F = torch.nn.functional

#: PyTorch's cosine_embedding_loss adds EPSILON = 1e-12, a C++ float, to each squared norm.
TORCH_EPS = float(np.float32(1e-12))


def _grad(f, x: np.ndarray, *args):
    """(value, gradient) of torch function *f* at *x* by autograd, float64."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = f(xt, *[torch.tensor(a, dtype=torch.float64) for a in args])
    out.backward()
    return out.item(), xt.grad.numpy()


def _hessian(f, x: np.ndarray, *args) -> np.ndarray:
    """Per-row blocks ``H[i, j, l]`` of the Hessian of *f* (rows do not interact)."""
    rest = [torch.tensor(a, dtype=torch.float64) for a in args]
    full = torch.autograd.functional.hessian(
        lambda xt: f(xt, *rest), torch.tensor(x, dtype=torch.float64)
    ).numpy()
    n = x.shape[0]
    return np.stack([full[i, :, i, :] for i in range(n)])


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


def _distributions(rng, n, m):
    w = rng.random((n, m)) + 0.05
    return w / w.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_divergence_matches_torch(rng, reduction, log_target):
    q, p = _distributions(rng, 7, 5), _distributions(rng, 7, 5)
    p[0, 1] = 0.0  # a zero target: 0 log 0 = 0 in both
    target = np.log(p[1:]) if log_target else p
    log_q = np.log(q[: len(target)])

    def f(x, t):
        return F.kl_div(x, t, reduction=reduction, log_target=log_target)

    if reduction == "mean":  # PyTorch warns that "mean" is not the KL divergence
        with pytest.warns(UserWarning, match="batchmean"):
            value, grad = _grad(f, log_q, target)
    else:
        value, grad = _grad(f, log_q, target)
    L = symloss.get("kl_div", reduction=reduction, log_target=log_target)
    assert L(log_q, target) == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(L.grad(log_q, target), grad, rtol=1e-13, atol=1e-300)


def test_kl_divergence_none_sums_torch_elements_per_row(rng):
    q, p = _distributions(rng, 4, 6), _distributions(rng, 4, 6)
    elements = F.kl_div(torch.tensor(np.log(q)), torch.tensor(p), reduction="none").numpy()
    per_row = symloss.get("kl_div", reduction="none")(np.log(q), p)
    np.testing.assert_allclose(per_row, elements.sum(axis=1), rtol=1e-13)


def test_cosine_distance_matches_torch_cosine_embedding_loss(rng):
    y, t = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    y[2] = 0.0  # a zero row: 1 and a finite gradient in both

    def f(x, t):
        return F.cosine_embedding_loss(x, t, torch.ones(len(t), dtype=torch.float64))

    value, grad = _grad(f, y, t)
    L = symloss.get("cosine_distance", eps=TORCH_EPS)
    assert L(y, t) == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(L.grad(y, t), grad, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(L.hess(y[:2], t[:2]), _hessian(f, y[:2], t[:2]), rtol=1e-10)


def test_generalized_kl_matches_torch_autograd(rng):
    y, t = rng.uniform(0.1, 4, 12), rng.uniform(0, 4, 12)
    t[:3] = 0.0

    def f(x, t):
        return (torch.xlogy(t, t) - torch.xlogy(t, x) - t + x).sum()

    value, grad = _grad(f, y, t)
    L = symloss.get("generalized_kl")
    assert L(y, t) == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(L.grad(y, t), grad, rtol=1e-13)
    # Written as xlogy(t, t / y), autograd gives NaN at t = 0 (0/0 in xlogy's backward);
    # symloss gives the limit, 1.
    _, naive = _grad(lambda x, t: (torch.xlogy(t, t / x) - t + x).sum(), y, t)
    assert np.isnan(naive[:3]).all() and (L.grad(y, t)[:3] == 1).all()


def _tversky_torch(alpha, beta, smooth):
    def f(x, t):
        tp = (x * t).sum(1)
        fp = (x * (1 - t)).sum(1)
        fn = ((1 - x) * t).sum(1)
        return (1 - (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)).mean()

    return f


def _dice_torch(smooth):
    def f(x, t):
        return (1 - (2 * (x * t).sum(1) + smooth) / (x.sum(1) + t.sum(1) + smooth)).mean()

    return f


@pytest.mark.parametrize(
    ("name", "options", "f"),
    [
        ("dice", {}, _dice_torch(1.0)),
        ("dice", {"smooth": 0.0}, _dice_torch(0.0)),
        ("tversky", {}, _tversky_torch(0.5, 0.5, 1.0)),
        ("tversky", {"alpha": 0.3, "beta": 0.7, "smooth": 1e-5}, _tversky_torch(0.3, 0.7, 1e-5)),
    ],
    ids=["dice", "dice-s0", "tversky", "tversky-0.3-0.7"],
)
def test_overlap_losses_match_torch_autograd(rng, name, options, f):
    y = rng.random((5, 8))
    t = (rng.random((5, 8)) < 0.4).astype(float)
    value, grad = _grad(f, y, t)
    L = symloss.get(name, **options)
    assert L(y, t) == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(L.grad(y, t), grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(L.hess(y, t), _hessian(f, y, t), rtol=1e-11, atol=1e-14)

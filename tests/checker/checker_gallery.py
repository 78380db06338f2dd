"""User implementations for the gradient checker's tests: correct ones and classic bugs.

Every function takes NumPy arrays ``(pred, target)`` and returns what a user's own
code would: a float (the loss) or an array shaped like ``pred`` (its gradient).  The
CLI tests import them as ``checker_gallery:NAME``.  The losses that are not in the
catalog yet (mean absolute error, Huber, focal, label-smoothed cross-entropy) are built
here with :class:`symloss.Loss`, exactly as the catalog would build them.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

import symloss
from symloss.losses.article import LOGIT, ONE_HOT, ONE_HOT_TARGET, PROBABILITY

y, t, z = symloss.array("y"), symloss.array("t"), symloss.array("z")
i, j = symloss.index("i"), symloss.index("j")
n, m = symloss.n, symloss.m
REAL = symloss.Domain(sp.Interval(-sp.oo, sp.oo), None, "real")
DELTA, GAMMA, EPS = 1.0, 2, 0.1


def _loss(name, term, scale, indices, pred=y, domains=None, constraints=()):
    return symloss.Loss(
        name=name,
        title=name,
        term=term,
        scale=scale,
        indices=indices,
        pred=pred,
        target=t,
        domains=domains or {"y": REAL, "t": REAL},
        constraints=constraints,
    )


r = y[i] - t[i]
MAE = _loss("mean_absolute_error", sp.Abs(r), 1, ((i, n),))
HUBER = _loss(
    "huber",
    sp.Piecewise((r**2 / 2, sp.Abs(r) <= DELTA), (DELTA * (sp.Abs(r) - DELTA / 2), True)),
    1,
    ((i, n),),
)
FOCAL = _loss(
    "binary_focal",
    t[i] * (1 - y[i]) ** GAMMA * sp.log(y[i]) + (1 - t[i]) * y[i] ** GAMMA * sp.log(1 - y[i]),
    -1,
    ((i, n),),
    domains={"y": PROBABILITY, "t": symloss.Domain(sp.Interval(0, 1))},
)
# C¹ but not C²: max(0, r)²/2 has a kink in its gradient's derivative only.
SQUARED_RELU = _loss("squared_relu", sp.Max(0, r) ** 2 / 2, 1, ((i, n),))
SMOOTHED_CE = _loss(
    "label_smoothed_cross_entropy",
    ((1 - sp.Rational(EPS)) * t[i, j] + sp.Rational(EPS) / m) * sp.log(symloss.softmax(z, i, j)),
    -1,
    ((i, n), (j, m)),
    pred=z,
    domains={"z": LOGIT, "t": ONE_HOT_TARGET},
    constraints=(ONE_HOT,),
)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x):
    top = x.max(axis=-1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def _xlogy(a, b):
    return np.where(a == 0, 0.0, a * np.log(np.where(a == 0, 1.0, b)))


# ------------------------------------------------------------------ correct code
def bce_value(p, t):
    return -np.mean(_xlogy(t, p) + _xlogy(1 - t, 1 - p))


def _xdivy(a, b):
    return np.where(a == 0, 0.0, a / np.where(a == 0, 1.0, b))


def bce_grad(p, t):
    # -t/p + (1 - t)/(1 - p), with 0/0 = 0: the limit at y = t = 0 or 1 is ∓1/n.
    return (_xdivy(1 - t, 1 - p) - _xdivy(t, p)) / len(p)


def bce_logits_value(z, t):
    return np.mean(np.logaddexp(0, z) - t * z)


def bce_logits_grad(z, t):
    return (_sigmoid(z) - t) / len(z)


def cce_value(p, t):
    return -np.sum(_xlogy(t, p)) / len(p)


def cce_grad(p, t):
    return -np.where(t == 0, 0.0, t / p) / len(p)


def cce_logits_value(z, t):
    return -np.sum(t * _log_softmax(z)) / len(z)


def cce_logits_grad(z, t):
    # The general gradient: right for targets that do not sum to 1, too.
    return (_softmax(z) * t.sum(axis=-1, keepdims=True) - t) / len(z)


def sse_value(p, t):
    return 0.5 * np.sum((p - t) ** 2)


def sse_grad(p, t):
    return p - t


def mae_value(p, t):
    return np.mean(np.abs(p - t))


def mae_grad(p, t):  # sign(0) = 0: the midpoint of [-1/n, 1/n]
    return np.sign(p - t) / len(p)


def mae_grad_right(p, t):  # the right derivative at the kink
    return np.where(p >= t, 1.0, -1.0) / len(p)


def mae_grad_outside(p, t):  # 5/n at the kink: not a subgradient
    return np.where(p == t, 5.0, np.sign(p - t)) / len(p)


def huber_value(p, t):
    a = np.abs(p - t)
    return np.mean(np.where(a <= DELTA, 0.5 * a**2, DELTA * (a - DELTA / 2)))


def huber_grad(p, t):
    return np.clip(p - t, -DELTA, DELTA) / len(p)


def squared_relu_grad(p, t):
    return np.maximum(p - t, 0.0) / len(p)


def focal_value(p, t):
    return -np.mean(_xlogy(t * (1 - p) ** GAMMA, p) + _xlogy((1 - t) * p**GAMMA, 1 - p))


def focal_grad(p, t):
    pos = _xdivy(t * (1 - p) ** GAMMA, p) - _xlogy(GAMMA * t * (1 - p) ** (GAMMA - 1), p)
    neg = _xlogy(GAMMA * (1 - t) * p ** (GAMMA - 1), 1 - p) - _xdivy((1 - t) * p**GAMMA, 1 - p)
    return -(pos + neg) / len(p)


def smoothed_ce_value(z, t):
    ts = t * (1 - EPS) + EPS / t.shape[1]
    return -np.sum(ts * _log_softmax(z)) / len(z)


def smoothed_ce_grad(z, t):
    ts = t * (1 - EPS) + EPS / t.shape[1]
    return (_softmax(z) * ts.sum(axis=-1, keepdims=True) - ts) / len(z)


# ------------------------------------------------------------------ the bugs
def cce_logits_grad_shortcut(z, t):
    """softmax(z) - t: right only when every target row sums to 1."""
    return (_softmax(z) - t) / len(z)


def bce_logits_grad_no_mean(z, t):
    """The 1/n of the mean reduction forgotten."""
    return _sigmoid(z) - t


def bce_grad_flipped(p, t):
    """Gradient of -E: the sign flipped."""
    return -bce_grad(p, t)


def bce_value_unclipped(p, t):
    """log(0) unguarded: 0 * log 0 gives NaN where the loss is 0."""
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


def bce_logits_value_naive(z, t):
    """BCE through 1/(1 + exp(-z)): exp overflows at logit -1e4 and log(1 - 1) is -inf."""
    s = 1 / (1 + np.exp(-z))
    return -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))


def sse_value_no_half(p, t):
    """The ½ of the definition dropped."""
    return np.sum((p - t) ** 2)


def sse_grad_no_half(p, t):
    """The derivative of Σ(y - t)² instead of ½Σ(y - t)²."""
    return 2 * (p - t)


def bce_logits_value_sum(z, t):
    """A sum where the loss is a mean."""
    return np.sum(np.logaddexp(0, z) - t * z)


def cce_logits_grad_axis0(z, t):
    """Softmax over the samples (axis 0) instead of the classes."""
    return (_softmax(z, axis=0) - t) / len(z)


def smoothed_ce_value_wrong_axis(z, t):
    """Label smoothing ε/K with K read from axis 0 (the samples) instead of axis 1."""
    ts = t * (1 - EPS) + EPS / t.shape[0]
    return -np.sum(ts * _log_softmax(z)) / len(z)


def smoothed_ce_grad_wrong_axis(z, t):
    ts = t * (1 - EPS) + EPS / t.shape[0]
    return (_softmax(z) * ts.sum(axis=-1, keepdims=True) - ts) / len(z)


def huber_grad_wrong_outside(p, t):
    """The residual everywhere: the clip to ±δ outside δ forgotten."""
    return (p - t) / len(p)


def focal_grad_no_gamma_term(p, t):
    """The modulating factor (1 - p)^γ treated as a constant: γ's derivative terms missing."""
    pos = _xdivy(t * (1 - p) ** GAMMA, p)
    neg = -_xdivy((1 - t) * p**GAMMA, 1 - p)
    return -(pos + neg) / len(p)


def cce_logits_grad_mean_all(z, t):
    """np.mean over every element: divides by n·m instead of n."""
    return (_softmax(z) * t.sum(axis=-1, keepdims=True) - t) / z.size


def cce_logits_value_raises(z, t):
    raise RuntimeError("boom")


NOT_CALLABLE = 42


# ------------------------------------------------------------------ torch code
def torch_cce_logits_value(z, t):
    import torch

    return -(t * torch.log_softmax(z, dim=-1)).sum() / z.shape[0]


def torch_cce_logits_grad_shortcut(z, t):
    import torch

    return (torch.softmax(z, dim=-1) - t) / z.shape[0]


def torch_bce_logits_value(z, t):
    import torch

    return torch.nn.functional.binary_cross_entropy_with_logits(z, t)


def torch_bce_logits_value_naive(z, t):
    import torch

    s = torch.sigmoid(z)
    return -(t * torch.log(s) + (1 - t) * torch.log(1 - s)).mean()


def torch_cross_entropy(z, t):
    """PyTorch's own: class labels (long) and probability targets (float) alike."""
    import torch

    return torch.nn.functional.cross_entropy(z, t)

"""Classification and margin losses against PyTorch, when it is installed (optional).

Value, gradient and Hessian (its diagonal, or the per-sample blocks of a loss coupled
across classes) on random inputs, and the subgradients at the kinks, in float64.  PyTorch
has no focal, poly-1, hinge or categorical hinge function: those are written here with
torch operations as their anchors (torchvision, Keras, optax) define them, so that
autograd differentiates them.  Core CI does not need torch: the module is skipped without it.
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

RNG = np.random.default_rng(7)
N, M = 6, 4
LOGITS = RNG.normal(size=(N, M)) * 3
LABELS = RNG.integers(0, M, size=N)
ONE_HOT = np.eye(M)[LABELS]
SOFT = RNG.random((N, M))
SOFT /= SOFT.sum(axis=1, keepdims=True)
Z = RNG.normal(size=12) * 3
BINARY = (RNG.random(12) < 0.5).astype(float)
SIGNS = 2 * BINARY - 1
WEIGHTS = [1.0, 2.0, 0.5, 3.0]


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


def _check(loss, torch_fn, pred, target, hessian=True):
    """Value, gradient and Hessian of ``loss`` equal torch's."""
    p = _t(pred)
    if loss.reduction == "none":
        np.testing.assert_allclose(loss(pred, target), torch_fn(p).numpy(), rtol=1e-12)

        def f(q):  # the gradient of "none" is the gradient of the sum (symloss's convention)
            return torch_fn(q).sum()

    else:
        f = torch_fn
        assert loss(pred, target) == pytest.approx(f(p).item(), rel=1e-12)
    np.testing.assert_allclose(loss.grad(pred, target), tgrad(f)(p).numpy(), rtol=1e-11, atol=1e-15)
    if not hessian:
        return
    full = jacrev(tgrad(f))(p).numpy(force=True)
    if p.ndim == 1:
        expected = np.diagonal(full)
    elif loss.separable:
        expected = np.einsum("ijij->ij", full)
    else:
        expected = np.einsum("ijik->ijk", full)
    np.testing.assert_allclose(loss.hess(pred, target), expected, rtol=1e-10, atol=1e-14)


REDUCTIONS = ["mean", "sum", "none"]


# ------------------------------------------------------------------ cross-entropies
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pos_weight": 2.5},
        {"label_smoothing": 0.2},
        {"pos_weight": 0.3, "label_smoothing": 0.1},
    ],
    ids=["plain", "pos_weight", "smoothing", "both"],
)
def test_bce_logits_matches_torch(options, reduction):
    L = symloss.get("bce_logits", reduction=reduction, **options)
    eps = options.get("label_smoothing", 0.0)
    target = _t(SOFT.ravel()[:12] * (1 - eps) + eps / 2)  # Keras's smoothing, by hand
    pos = _t(options["pos_weight"]) if "pos_weight" in options else None
    _check(
        L,
        lambda p: F.binary_cross_entropy_with_logits(
            p, target, pos_weight=pos, reduction=reduction
        ),
        Z,
        SOFT.ravel()[:12],
    )


@pytest.mark.parametrize(
    ("targets", "reduction"),
    [
        ("labels", "mean"),
        ("one_hot", "mean"),
        ("soft", "mean"),
        ("labels", "sum"),
        ("soft", "none"),
    ],
)
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"label_smoothing": 0.15},
        {"class_weight": WEIGHTS},
        {"class_weight": WEIGHTS, "label_smoothing": 0.3},
    ],
    ids=["plain", "smoothing", "weights", "weights+smoothing"],
)
def test_cross_entropy_matches_torch(options, targets, reduction):
    # Class labels divide the weighted mean by sum_i w_{y_i}; one-hot and soft rows are
    # probability targets for PyTorch, and divide by n: both are what symloss does.
    L = symloss.get("cce_logits", reduction=reduction, **options)
    target = {"labels": LABELS, "one_hot": ONE_HOT, "soft": SOFT}[targets]
    tt = torch.tensor(target) if targets == "labels" else _t(target)
    w = _t(options["class_weight"]) if "class_weight" in options else None
    ls = options.get("label_smoothing", 0.0)
    _check(
        L,
        lambda p: F.cross_entropy(p, tt, weight=w, label_smoothing=ls, reduction=reduction),
        LOGITS,
        target,
    )


@pytest.mark.parametrize(
    "options", [{}, {"class_weight": WEIGHTS, "label_smoothing": 0.3}], ids=["plain", "weighted"]
)
def test_cross_entropy_ignore_index_matches_torch(options):
    labels = LABELS.copy()
    labels[[1, 4]] = -100
    L = symloss.get("cce_logits", **options)
    w = _t(options["class_weight"]) if "class_weight" in options else None
    ls = options.get("label_smoothing", 0.0)
    _check(
        L,
        lambda p: F.cross_entropy(p, torch.tensor(labels), weight=w, label_smoothing=ls),
        LOGITS,
        labels,
    )


# ------------------------------------------------------------------ focal, poly-1
def _torch_sigmoid_focal(p, target, alpha, gamma, reduction):
    # torchvision.ops.sigmoid_focal_loss's definition (alpha < 0: no alpha_t).
    prob = torch.sigmoid(p)
    ce = F.binary_cross_entropy_with_logits(p, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()


@pytest.mark.parametrize(
    ("alpha", "gamma", "soft", "reduction"),
    [
        (0.25, 2.0, False, "mean"),
        (0.7, 1.5, True, "sum"),
        (None, 3.0, False, "none"),
        (None, 2.0, True, "mean"),
        (0.25, 0.5, True, "mean"),
    ],
)
def test_sigmoid_focal_matches_torch(alpha, gamma, soft, reduction):
    L = symloss.get("sigmoid_focal", alpha=alpha, gamma=gamma, reduction=reduction)
    target = SOFT.ravel()[:12] if soft else BINARY
    a = -1.0 if alpha is None else alpha
    _check(L, lambda p: _torch_sigmoid_focal(p, _t(target), a, gamma, reduction), Z, target)


def _torch_softmax_focal(p, target, alpha, gamma):
    # keras.losses.categorical_focal_crossentropy(from_logits=True), without its clipping.
    prob = torch.softmax(p, dim=-1)
    return (-alpha * (1 - prob) ** gamma * target * torch.log_softmax(p, dim=-1)).sum(-1).mean()


def _torch_poly1(p, target, epsilon):
    # optax.losses.poly_loss_cross_entropy, averaged over the samples.
    prob = torch.softmax(p, dim=-1)
    ce = -(target * torch.log_softmax(p, dim=-1)).sum(-1)
    return (ce + epsilon * (target * (1 - prob)).sum(-1)).mean()


@pytest.mark.parametrize("targets", ["labels", "soft"])
def test_softmax_focal_and_poly1_match_torch(targets):
    target = LABELS if targets == "labels" else SOFT
    rows = _t(ONE_HOT if targets == "labels" else SOFT)
    for alpha, gamma in [(0.25, 2.0), (0.6, 0.5)]:
        L = symloss.get("softmax_focal", alpha=alpha, gamma=gamma)
        _check(L, lambda p, a=alpha, g=gamma: _torch_softmax_focal(p, rows, a, g), LOGITS, target)
    for eps in [2.0, -1.0]:
        L = symloss.get("poly1_cross_entropy", epsilon=eps)
        _check(L, lambda p, e=eps: _torch_poly1(p, rows, e), LOGITS, target)


# ------------------------------------------------------------------ soft margins
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margins_match_torch(reduction):
    _check(
        symloss.get("soft_margin", reduction=reduction),
        lambda p: F.soft_margin_loss(p, _t(SIGNS), reduction=reduction),
        Z,
        SIGNS,
    )
    multi = (RNG.random((N, M)) < 0.5).astype(float)
    for w in (None, WEIGHTS):
        options = {} if w is None else {"class_weight": w}
        _check(
            symloss.get("multilabel_soft_margin", reduction=reduction, **options),
            lambda p, w=w: F.multilabel_soft_margin_loss(
                p, _t(multi), weight=None if w is None else _t(w), reduction=reduction
            ),
            LOGITS,
            multi,
        )


# ------------------------------------------------------------------ margins
def _torch_multi_margin(q, labels, p, margin, weight):
    # F.multi_margin_loss's definition (it has no double backward, so the Hessian is
    # taken from this): sum over j != y of w_y max(0, margin - x_y + x_j)^p / m.
    x_y = q.gather(1, labels[:, None])
    h = F.relu(margin - x_y + q) ** p
    h = h.masked_fill(F.one_hot(labels, q.shape[1]).bool(), 0.0)
    w = 1.0 if weight is None else weight[labels][:, None]
    return (w * h).sum(-1) / q.shape[1]


@pytest.mark.parametrize(
    ("p", "margin", "weighted", "reduction"),
    [
        (1, 1.0, False, "mean"),
        (2, 0.4, True, "sum"),
        (1, 0.4, True, "none"),
        (2, 1.0, False, "mean"),
    ],
)
def test_multi_margin_matches_torch(p, margin, weighted, reduction):
    options = {"class_weight": WEIGHTS} if weighted else {}
    L = symloss.get("multi_margin", p=p, margin=margin, reduction=reduction, **options)
    w = _t(WEIGHTS) if weighted else None
    labels = torch.tensor(LABELS)
    reduce = {"mean": torch.mean, "sum": torch.sum, "none": lambda v: v}[reduction]
    for target in (LABELS, ONE_HOT):
        _check(
            L,
            lambda q: F.multi_margin_loss(
                q, labels, p=p, margin=margin, weight=w, reduction=reduction
            ),
            LOGITS,
            target,
            hessian=False,  # PyTorch has no double backward for multi_margin_loss
        )
        _check(L, lambda q: reduce(_torch_multi_margin(q, labels, p, margin, w)), LOGITS, target)


def _torch_hinge(p, target, power=1):
    return (F.relu(1 - target * p) ** power).mean()


def _torch_categorical_hinge(p, target):
    # keras.losses.categorical_hinge; amax splits its gradient equally between ties,
    # as tf.reduce_max does.
    pos = (target * p).sum(-1)
    neg = torch.amax((1 - target) * p, dim=-1)
    return F.relu(neg - pos + 1).mean()


def test_hinges_match_torch_including_the_kinks():
    scores = Z.copy()
    scores[:3] = SIGNS[:3]  # t y = 1 exactly: the hinge point
    for name, power in (("hinge", 1), ("squared_hinge", 2)):
        _check(symloss.get(name), lambda p, k=power: _torch_hinge(p, _t(SIGNS), k), scores, SIGNS)


def test_categorical_hinge_matches_torch_including_ties_and_kinks():
    scores = np.round(LOGITS, 0)  # integer scores: ties between classes
    scores[0] = [0.5, 0.5, 0.2, 0.1]  # a tie for neg ...
    scores[1] = [0.0, 0.0, 0.0, 0.0]  # ... a tie with the true class's 0 ...
    labels = LABELS.copy()
    labels[2] = 0
    scores[2] = [1.5, 0.5, 0.2, 0.1]  # ... and neg - pos + 1 = 0 exactly
    L = symloss.get("categorical_hinge")
    for target in (labels, np.eye(M)[labels]):
        _check(L, lambda p: _torch_categorical_hinge(p, _t(np.eye(M)[labels])), scores, target)


def test_multi_margin_kink_matches_torch():
    scores = np.array([[0.0, 1.0, 0.5, 0.0], [2.0, 1.0, 0.3, 1.0]])
    labels = np.array([1, 3])  # margin - x_y + x_j = 0 for (0, 0), (0, 3) and (1, 1)
    L = symloss.get("multi_margin")
    _check(L, lambda q: F.multi_margin_loss(q, torch.tensor(labels)), scores, labels, hessian=False)

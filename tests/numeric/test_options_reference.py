"""The option layer against hand-worked values: sample weights, reductions, integer labels.

Issue 20: ``weight=`` was dropped from ``grad`` and ``hess`` (the value kept it) and the
whole suite passed, because the weighted gradients were only compared between two
backends that share the scaling code; integer-label gradients n times too small passed
too.  Here every expected number comes from a hand derivation written out below in
plain NumPy (no symloss code), for several losses, every reduction, on batches of
several rows, on each kernel backend (``symloss.numeric.kernel.BACKEND``: the generated NumPy
code ``"fused"``, SymPy's ``"lambdify"``, and the compiled C loop ``"c"``), and over
several blocks of rows on worker threads.

Hand derivations used (per sample, before weights and the reduction; sigma the logistic
function, p = softmax(z) per row, s_i = sum_j w_j t_ij):

========================  ===================================  ==========================  ===========================
loss                      value l_i                            dl_i/dx                     second derivative
========================  ===================================  ==========================  ===========================
mse                       (y - t)^2                            2 (y - t)                   2
sum_squared_error         (y - t)^2 / 2                        y - t                       1
huber(delta)              r^2/2 if |r| <= delta,               r, or delta sign(r)         1, or 0
                          else delta (|r| - delta/2)
bce                       -(t log y + (1-t) log(1-y))          (y - t) / (y (1 - y))       t/y^2 + (1-t)/(1-y)^2
bce_logits                softplus(z) - t z                    sigma - t                   sigma (1 - sigma)
 pos_weight=p             p t softplus(-z) + (1-t) softplus(z) (1-t) sigma - p t (1-sigma)  (p t + 1 - t) sigma (1-sigma)
 label_smoothing=e        t -> t (1 - e) + e/2 (Keras)
cce_logits(class_weight)  -sum_j w_j t_ij log p_ij             s_i p_ik - w_k t_ik         s_i (p_ik delta_kl - p_ik p_il)
 label_smoothing=e        t -> (1 - e) t + e/m (PyTorch)
multilabel_soft_margin    (1/m) sum_j softplus(z) - t z        (sigma - t)/m               sigma (1 - sigma)/m
kl_divergence             sum_j t (log t - x)                  -t                          0
========================  ===================================  ==========================  ===========================

The reductions (README, "Use"; each loss's conventions): ``mean`` divides the weighted sum
by the number of samples (elements for an element-wise loss; rows for a row-wise one;
``n m`` for ``kl_divergence``), ``batchmean`` by the rows, ``sum`` by nothing, and
``none`` returns the weighted per-sample values, whose gradient is that of their sum.
"""

from __future__ import annotations

import numpy as np
import pytest

import symloss
from symloss.numeric.kernel import SMALL_ELEMENTS

BACKENDS = ["fused", "lambdify", "c"]
W_CLASSES = np.array([1.0, 2.0, 0.5, 3.0])
N_ROWS, M = 5, 4


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softplus(x):
    return np.logaddexp(0.0, x)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _rows(rng, n, m):
    w = rng.uniform(0.05, 1.0, size=(n, m))
    rows = w / w.sum(axis=1, keepdims=True)
    rows[0] = np.eye(m)[1]  # one one-hot row among the probability rows
    return rows


# ---------------------------------------------------------------- hand-derived losses
# Each entry: (name, options) -> inputs(rng) and hand(pred, target) giving per-sample
# values (n,), the gradient of the per-sample sum and its Hessian (diagonal or blocks),
# and the mean's count for that input.
def _mse(y, t):
    return (y - t) ** 2, 2 * (y - t), np.full_like(y, 2.0)


def _sse(y, t):
    return (y - t) ** 2 / 2, y - t, np.ones_like(y)


def _huber(delta):
    def hand(y, t):
        r = y - t
        inside = np.abs(r) <= delta
        value = np.where(inside, r**2 / 2, delta * (np.abs(r) - delta / 2))
        grad = np.where(inside, r, delta * np.sign(r))
        return value, grad, inside.astype(float)

    return hand


def _bce(y, t):
    value = -(t * np.log(y) + (1 - t) * np.log(1 - y))
    return value, (y - t) / (y * (1 - y)), t / y**2 + (1 - t) / (1 - y) ** 2


def _bce_logits(pos_weight=1.0, smoothing=0.0):
    def hand(z, t):
        t = t * (1 - smoothing) + smoothing / 2
        s = sigmoid(z)
        value = pos_weight * t * softplus(-z) + (1 - t) * softplus(z)
        grad = (1 - t) * s - pos_weight * t * (1 - s)
        return value, grad, (pos_weight * t + 1 - t) * s * (1 - s)

    return hand


def _cce_logits(class_weight=None, smoothing=0.0):
    def hand(z, t):
        m = z.shape[1]
        w = np.ones(m) if class_weight is None else np.asarray(class_weight)
        t = (1 - smoothing) * t + smoothing / m
        p = softmax(z)
        s = (w * t).sum(axis=1, keepdims=True)
        value = -(w * t * np.log(p)).sum(axis=1)
        grad = s * p - w * t
        hess = s[:, :, None] * (np.einsum("ik,kl->ikl", p, np.eye(m)) - p[:, :, None] * p[:, None])
        return value, grad, hess

    return hand


def _multilabel(z, t):
    m = z.shape[1]
    s = sigmoid(z)
    return (softplus(z) - t * z).sum(axis=1) / m, (s - t) / m, s * (1 - s) / m


def _kl(x, t):
    safe = np.where(t > 0, t, 1.0)
    return (np.where(t > 0, t * np.log(safe), 0.0) - t * x).sum(axis=1), -t, np.zeros_like(x)


def _inputs_1d(kind):
    def make(rng, n=7):
        if kind == "prob":
            return rng.uniform(0.05, 0.95, n), rng.choice([0.0, 1.0, 0.3], n)
        if kind == "logit":
            return rng.normal(scale=3.0, size=n), rng.choice([0.0, 1.0, 0.3], n)
        if kind == "huber":  # residuals on both sides of delta = 0.7, none near it
            t = rng.normal(size=n)
            r = rng.choice([-1.0, 1.0], n) * rng.choice([0.2, 0.5, 1.3, 2.5], n)
            return t + r, t
        return rng.normal(scale=2.0, size=n), rng.normal(scale=2.0, size=n)

    return make


def _inputs_rows(kind):
    def make(rng, n=N_ROWS):
        z = rng.normal(scale=2.0, size=(n, M))
        if kind == "multilabel":
            return z, rng.choice([0.0, 1.0, 0.25], size=(n, M))
        t = _rows(rng, n, M)
        if kind == "log_prob":
            return np.log(softmax(z)), t
        return z, t

    return make


CASES = {
    "mse": ("mean_squared_error", {}, _inputs_1d("real"), _mse, "elements"),
    "sse": ("sum_squared_error", {}, _inputs_1d("real"), _sse, "elements"),
    "huber": ("huber", {"delta": 0.7}, _inputs_1d("huber"), _huber(0.7), "elements"),
    "bce": ("bce", {}, _inputs_1d("prob"), _bce, "elements"),
    "bce_logits": ("bce_logits", {}, _inputs_1d("logit"), _bce_logits(), "elements"),
    "bce_logits-pos_weight": (
        "bce_logits", {"pos_weight": 2.5}, _inputs_1d("logit"), _bce_logits(2.5), "elements",
    ),
    "bce_logits-smoothing": (
        "bce_logits", {"label_smoothing": 0.2}, _inputs_1d("logit"),
        _bce_logits(smoothing=0.2), "elements",
    ),
    "cce_logits": ("cce_logits", {}, _inputs_rows("logit"), _cce_logits(), "rows"),
    "cce_logits-weighted-smoothed": (
        "cce_logits", {"class_weight": W_CLASSES, "label_smoothing": 0.1},
        _inputs_rows("logit"), _cce_logits(W_CLASSES, 0.1), "rows",
    ),
    "multilabel_soft_margin": (
        "multilabel_soft_margin", {}, _inputs_rows("multilabel"), _multilabel, "rows",
    ),
    "kl_divergence": ("kl_divergence", {}, _inputs_rows("log_prob"), _kl, "elements"),
}  # fmt: skip


def _reductions(name):
    return symloss.get(name).reductions


def _expected(case, reduction, pred, target, weight):
    _, _, _, hand, mean_over = CASES[case]
    value, grad, hess = hand(pred, target)
    n = pred.shape[0]
    # "elements": every element (KL's mean divides by n m, its "none" gives row sums)
    count = pred.size if mean_over == "elements" else n
    w = np.ones(n) if weight is None else weight
    per = value * w
    grad = grad * w.reshape((-1,) + (1,) * (grad.ndim - 1))
    hess = hess * w.reshape((-1,) + (1,) * (hess.ndim - 1))
    divisor = {"mean": count, "batchmean": n, "sum": 1, "none": 1}[reduction]
    total = per if reduction == "none" else per.sum() / divisor
    return total, grad / divisor, hess / divisor


def _use_backend(backend, monkeypatch, request):
    if backend == "c":
        request.getfixturevalue("backend_c")  # fails in CI without a compiler
    symloss.configure(backend=backend)


def _assert_close(got, want, what):
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(float(np.abs(want).max()), 1e-300)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14 * scale, err_msg=what)


PARAMS = [
    pytest.param(case, reduction, id=f"{case}-{reduction}")
    for case, (name, *_) in CASES.items()
    for reduction in _reductions(name)
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weight="])
@pytest.mark.parametrize("case, reduction", PARAMS)
def test_value_grad_hess_match_the_hand_derivation(
    case, reduction, weighted, backend, monkeypatch, request
):
    _use_backend(backend, monkeypatch, request)
    name, options, make, _, _ = CASES[case]
    rng = np.random.default_rng(20)
    pred, target = make(rng)
    # Sample weights: one of them exactly 0 (the sample counts for nothing, but still
    # counts in the mean's divisor, as PyTorch's weight).
    weight = rng.uniform(0.2, 3.0, pred.shape[0]) if weighted else None
    if weighted:
        weight[2] = 0.0
    kw = {} if weight is None else {"weight": weight}
    L = symloss.get(name, reduction=reduction, **options)
    value, grad, hess = _expected(case, reduction, pred, target, weight)
    _assert_close(L(pred, target, **kw), value, "value")
    _assert_close(L.grad(pred, target, **kw), grad, "grad")
    _assert_close(L.hess(pred, target, **kw), hess, "hess")
    v, g = L.value_and_grad(pred, target, **kw)
    _assert_close(v, value, "value_and_grad's value")
    _assert_close(g, grad, "value_and_grad's gradient")
    out = np.empty_like(pred)
    assert L.grad(pred, target, out=out, **kw) is out
    _assert_close(out, grad, "grad(out=)")


@pytest.mark.parametrize("backend", ["fused", "c"])
@pytest.mark.parametrize(
    "case", ["bce_logits-pos_weight", "huber", "cce_logits-weighted-smoothed", "kl_divergence"]
)
def test_weights_over_several_blocks_on_worker_threads(case, backend, monkeypatch, request):
    """Each block of rows takes its own slice of the weights (blocks of 512 elements).
    More than SMALL_ELEMENTS elements: smaller inputs skip the blocks altogether."""
    _use_backend(backend, monkeypatch, request)
    symloss.configure(block_elements=512)
    name, options, make, _, _ = CASES[case]
    rng = np.random.default_rng(21)
    pred, target = make(rng, SMALL_ELEMENTS + 301)
    assert pred.size > SMALL_ELEMENTS
    weight = rng.uniform(0.0, 3.0, pred.shape[0])
    weight[::7] = 0.0
    L = symloss.get(name, **options)
    value, grad, hess = _expected(case, L.reduction, pred, target, weight)
    v, g = L.value_and_grad(pred, target, weight=weight)
    _assert_close(v, value, "value")
    _assert_close(g, grad, "grad")
    _assert_close(L.hess(pred, target, weight=weight), hess, "hess")


def test_element_wise_weights_follow_the_flattened_elements():
    """An element-wise loss on a matrix treats each element as a sample: weight has one
    entry per element (hand: 2 w (y - t) / (n m))."""
    rng = np.random.default_rng(3)
    y, t = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    w = rng.uniform(0.5, 2.0, size=12)
    L = symloss.get("mse")
    _assert_close(L.grad(y, t, weight=w), 2 * (y - t) * w.reshape(3, 4) / 12, "grad")
    _assert_close(L.hess(y, t, weight=w), 2 * w.reshape(3, 4) / 12, "hess")
    _assert_close(L(y, t, weight=w), ((y - t) ** 2 * w.reshape(3, 4)).sum() / 12, "value")


# ---------------------------------------------------------------- integer labels
X = np.array(
    [
        [1.5, -0.3, 0.2, 2.0],
        [0.1, 0.4, -1.2, 0.3],
        [-0.5, 2.2, 0.9, -1.0],
        [0.7, 0.7, -2.0, 1.1],
        [-1.3, 0.0, 0.4, 2.6],
        [2.0, -2.0, 1.0, -1.0],
    ]
)
LABELS = np.array([3, 1, 2, 0, 3, 1])


def _hand_labels(labels, class_weight=None, smoothing=0.0, ignore=None, weight=None):
    """cce_logits on integer labels, by hand: the one-hot (smoothed) rows' per-sample
    gradient, times w_{y_i} through s_i, divided by PyTorch's count sum_{kept} w_{y_i}
    (the number of kept rows without class weights)."""
    kept = labels != ignore if ignore is not None else np.ones(len(labels), bool)
    rows = np.zeros_like(X)
    rows[kept] = np.eye(X.shape[1])[labels[kept]]
    value, grad, hess = _cce_logits(class_weight, smoothing)(X, rows)
    cw = np.ones(X.shape[1]) if class_weight is None else np.asarray(class_weight)
    count = cw[labels[kept]].sum() if class_weight is not None else kept.sum()
    factor = kept * (np.ones(len(labels)) if weight is None else weight)
    return (
        (value * factor).sum() / count,
        grad * factor[:, None] / count,
        hess * factor[:, None, None] / count,
    )


LABEL_OPTIONS = [
    ({}, None),
    ({"class_weight": W_CLASSES}, None),
    ({"label_smoothing": 0.2}, None),
    ({"class_weight": W_CLASSES, "label_smoothing": 0.1}, None),
    ({"ignore_index": 2}, 2),
    ({"class_weight": W_CLASSES, "ignore_index": 0}, 0),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weight="])
@pytest.mark.parametrize(
    "options, ignore", LABEL_OPTIONS, ids=lambda v: str(v) if isinstance(v, dict) else ""
)
def test_integer_label_cross_entropy_matches_the_hand_derivation(
    options, ignore, weighted, backend, monkeypatch, request
):
    _use_backend(backend, monkeypatch, request)
    weight = np.linspace(0.5, 2.0, len(LABELS)) if weighted else None
    kw = {} if weight is None else {"weight": weight}
    L = symloss.get("cce_logits", **options)
    value, grad, hess = _hand_labels(
        LABELS, options.get("class_weight"), options.get("label_smoothing", 0.0), ignore, weight
    )
    _assert_close(L(X, LABELS, **kw), value, "value")
    _assert_close(L.grad(X, LABELS, **kw), grad, "grad")
    _assert_close(L.hess(X, LABELS, **kw), hess, "hess")
    v, g = L.value_and_grad(X, LABELS, **kw)
    _assert_close(v, value, "value_and_grad's value")
    _assert_close(g, grad, "value_and_grad's gradient")
    if ignore is not None:  # an ignored row: no gradient, no Hessian
        rows = LABELS == ignore
        assert rows.any() and not np.any(L.grad(X, LABELS, **kw)[rows])
        assert not np.any(L.hess(X, LABELS, **kw)[rows])


ONE_HOT_LOSSES = [
    ("cce_logits", {}),
    ("cce_logits", {"class_weight": W_CLASSES, "label_smoothing": 0.1}),
    ("categorical_cross_entropy", {}),
    ("softmax_focal", {"gamma": 1.5}),
    ("poly1_cross_entropy", {}),
    ("multi_margin", {}),
    ("categorical_hinge", {}),
]


def _pred_for(name):
    if name == "categorical_cross_entropy":
        return softmax(X)
    return X


@pytest.mark.parametrize("backend", ["fused", "c"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name, options", ONE_HOT_LOSSES, ids=lambda v: str(v))
def test_integer_labels_equal_their_one_hot_rows(name, options, reduction, backend, monkeypatch, request):  # fmt: skip
    """Labels and their one-hot rows give the same per-sample values and derivatives;
    only the mean's count differs, and only with class weights (sum_i w_{y_i} for
    labels, n for rows: PyTorch's convention).  Some rows are ignored (-100)."""
    _use_backend(backend, monkeypatch, request)
    labels = LABELS.copy()
    if name == "cce_logits":
        labels[[1, 4]] = -100  # PyTorch's ignore_index
    kept = labels >= 0
    rows = np.zeros_like(X)
    rows[kept] = np.eye(X.shape[1])[labels[kept]]
    pred = _pred_for(name)
    weight = np.linspace(0.5, 2.0, len(labels))
    by_label = symloss.get(name, reduction=reduction, **options)
    by_row = symloss.get(name, reduction="sum", **options)  # sum: no count at all
    if reduction == "mean":
        cw = options.get("class_weight")
        count = np.asarray(cw)[labels[kept]].sum() if cw is not None else kept.sum()
    else:
        count = 1.0
    sub = (pred[kept], rows[kept])
    grad = np.zeros_like(pred)
    grad[kept] = by_row.grad(*sub, weight=weight[kept]) / count
    h_kept = by_row.hess(*sub, weight=weight[kept])  # diagonal, or blocks (n, m, m)
    hess = np.zeros((len(labels), *h_kept.shape[1:]))
    hess[kept] = h_kept / count
    _assert_close(by_label.grad(pred, labels, weight=weight), grad, "grad")
    _assert_close(by_label.hess(pred, labels, weight=weight), hess, "hess")
    value, g = by_label.value_and_grad(pred, labels, weight=weight)
    _assert_close(g, grad, "value_and_grad's gradient")
    if reduction == "none":
        per = np.zeros(len(labels))
        per[kept] = symloss.get(name, reduction="none", **options)(*sub, weight=weight[kept])
        _assert_close(value, per, "per-sample values")
    else:
        _assert_close(value, by_row(*sub, weight=weight[kept]) / count, "value")


def test_weight_is_validated():
    L = symloss.get("mse")
    y = np.zeros(3)
    with pytest.raises(ValueError, match="weight shape"):
        L.grad(y, y, weight=np.ones(2))
    for bad in (-1e-300, np.inf, np.nan):
        with pytest.raises(ValueError, match="finite and non-negative"):
            L.hess(y, y, weight=np.array([1.0, bad, 1.0]))
    # 0 is accepted (a sample that counts for nothing).
    assert not np.any(L.grad(np.ones(3), y, weight=np.zeros(3)))

"""Options against PyTorch 2.13 (float64 autograd): sample weights with pos_weight and
label smoothing, on each kernel backend (issue 20).

References, all computed here by torch at run time:

* BCE on logits: ``F.binary_cross_entropy_with_logits(z, t', weight=w,
  pos_weight=p, reduction=...)``.  torch's ``weight`` rescales each element's loss and
  its mean still divides by n, which is symloss's ``weight=``.  Label smoothing is
  Keras's (``BinaryCrossentropy(label_smoothing=e)``: ``t' = t (1 - e) + e/2``), applied
  to the target by hand because torch has no such option for BCE.
* Cross-entropy: ``F.cross_entropy(z, labels, weight=class_weight,
  label_smoothing=e, ignore_index=-100, reduction="none")`` per sample, times the sample
  weights, summed and divided by torch's own count for ``reduction="mean"`` (the value
  of ``F.cross_entropy(..., reduction="mean")`` times the same sum without sample
  weights, so the count is torch's, not written here).

Gradients are ``torch.func.grad`` and Hessians ``torch.func.jacrev`` of it (their
diagonal, or the per-row blocks for the cross-entropy).
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

RNG = np.random.default_rng(2013)
Z = np.concatenate([RNG.normal(scale=3.0, size=10), [35.0, -35.0]])
T = RNG.choice([0.0, 1.0, 0.3], size=12)
SAMPLE_W = RNG.uniform(0.0, 3.0, size=12)
LOGITS = RNG.normal(scale=2.0, size=(7, 4))
LABELS = np.array([0, 3, -100, 1, 2, 3, -100])
CLASS_W = [1.0, 2.0, 0.5, 3.0]


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


@pytest.fixture(params=["fused", "c"])
def backend(request, monkeypatch):
    if request.param == "c":
        request.getfixturevalue("backend_c")
    symloss.configure(backend=request.param)
    return request.param


def _compare(L, f, pred, target, weight):
    """symloss's value, grad, hess, value_and_grad vs torch's f(p) (a scalar or per-sample)."""
    p = _t(pred)
    total = (lambda q: f(q).sum()) if L.reduction == "none" else f
    value = f(p).detach().numpy()
    grad = tgrad(total)(p).numpy()
    full = jacrev(tgrad(total))(p).numpy()
    hess = np.diagonal(full) if p.ndim == 1 else np.einsum("ijik->ijk", full)
    kw = {"weight": weight}
    # atol: torch writes BCE-with-logits as (1 - t) z + (1 + (p - 1) t) softplus(-z), which
    # cancels at z = -35 to |z| eps ~ 1e-14 (times a weight <= 3); symloss's softplus
    # form keeps the true ~1e-15 there.
    np.testing.assert_allclose(L(pred, target, **kw), value, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(L.grad(pred, target, **kw), grad, rtol=1e-11, atol=1e-15)
    np.testing.assert_allclose(L.hess(pred, target, **kw), hess, rtol=1e-10, atol=1e-15)
    v, g = L.value_and_grad(pred, target, **kw)
    np.testing.assert_allclose(v, value, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(g, grad, rtol=1e-11, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options",
    [{"pos_weight": 0.0}, {"pos_weight": 4.0}, {"label_smoothing": 0.3},
     {"pos_weight": 0.5, "label_smoothing": 1.0}],
    ids=["pos_weight=0", "pos_weight=4", "smoothing", "both"],
)  # fmt: skip
def test_bce_logits_with_sample_weights_matches_torch(options, reduction, backend):
    L = symloss.get("bce_logits", reduction=reduction, **options)
    eps = options.get("label_smoothing", 0.0)
    smoothed = _t(T * (1 - eps) + eps / 2)  # Keras's binary label smoothing, by hand
    pos = _t(options["pos_weight"]) if "pos_weight" in options else None
    w = _t(SAMPLE_W)

    def f(p):
        return F.binary_cross_entropy_with_logits(
            p, smoothed, weight=w, pos_weight=pos, reduction=reduction
        )

    _compare(L, f, Z, T, SAMPLE_W)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(
    "options",
    [{}, {"class_weight": CLASS_W}, {"label_smoothing": 0.2},
     {"class_weight": CLASS_W, "label_smoothing": 0.2}],
    ids=["plain", "class_weight", "smoothing", "both"],
)  # fmt: skip
def test_cross_entropy_labels_with_sample_weights_matches_torch(options, reduction, backend):
    L = symloss.get("cce_logits", reduction=reduction, **options)
    cw = _t(options["class_weight"]) if "class_weight" in options else None
    eps = options.get("label_smoothing", 0.0)
    labels = torch.tensor(LABELS)
    w = _t(np.linspace(0.25, 2.0, len(LABELS)))

    def per_sample(p):
        return F.cross_entropy(p, labels, weight=cw, label_smoothing=eps, reduction="none")

    # torch's count for the mean: its own mean times the sum it averaged.
    base = per_sample(_t(LOGITS))
    count = (
        base.sum() / F.cross_entropy(_t(LOGITS), labels, weight=cw, label_smoothing=eps)
    ).item()

    def f(p):
        weighted = per_sample(p) * w
        if reduction == "none":
            return weighted
        return weighted.sum() / (count if reduction == "mean" else 1.0)

    _compare(L, f, LOGITS, LABELS, w.numpy())


def test_cross_entropy_count_from_torch_is_the_summed_class_weight():
    """The count the test above takes from torch is sum_{kept} w_{y_i} (PyTorch's docs,
    CrossEntropyLoss: 'mean' divides by the summed weights of the targets)."""
    labels = torch.tensor(LABELS)
    cw = _t(CLASS_W)
    per = F.cross_entropy(_t(LOGITS), labels, weight=cw, reduction="none")
    mean = F.cross_entropy(_t(LOGITS), labels, weight=cw)
    kept = LABELS[LABELS != -100]
    assert (per.sum() / mean).item() == pytest.approx(np.asarray(CLASS_W)[kept].sum(), rel=1e-13)

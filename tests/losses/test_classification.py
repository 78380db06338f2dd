"""Classification losses: options, references from the anchor libraries, stable kernels."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from shared import reference

import symloss
from symloss import m, n, softmax
from symloss.losses.article import class_weight_symbol, pos_weight_symbol, smoothing

z, t = symloss.array("z"), symloss.array("t")
i, j = symloss.index("i"), symloss.index("j")

# One batch used for the PyTorch 2.13.0 reference values below (float64).
X = np.array([[1.5, -0.3, 0.2, 2.0], [0.1, 0.4, -1.2, 0.3], [-0.5, 2.2, 0.9, -1.0]])
W = [1.0, 2.0, 0.5, 3.0]
ZS = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
BINARY = np.array([1.0, 0.0, 1.0, 0.0, 1.0])


# ------------------------------------------------------------------ options as structure
def test_options_enter_the_expression_only_when_given():
    bce, cce = symloss.get("bce_logits"), symloss.get("cce_logits")
    assert not bce.term.has(pos_weight_symbol, smoothing) and bce.params == ()
    assert not cce.term.has(smoothing, class_weight_symbol) and cce.params == ()
    assert cce.ignore_index == -100 and not cce.label_reduction

    B = symloss.get("bce_logits", pos_weight=2.0, label_smoothing=0.1)
    assert B.term.has(pos_weight_symbol, smoothing)
    assert B.param_values == {"pos_weight": 2.0, "label_smoothing": 0.1}
    C = symloss.get("cce_logits", class_weight=[1, 2, 3], label_smoothing=0.2)
    assert C.term.has(smoothing, class_weight_symbol[j]) and C.label_reduction
    assert C.param_values == {"class_weight": (1.0, 2.0, 3.0), "label_smoothing": 0.2}
    assert r"\epsilon" in C.latex() and "w_{j}" in C.latex()


def test_unknown_option_names_the_valid_ones():
    with pytest.raises(TypeError, match="label_smoothing, pos_weight, reduction"):
        symloss.get("bce_logits", weight=2.0)
    with pytest.raises(TypeError, match="class_weight, ignore_index, label_smoothing"):
        symloss.get("cce_logits", smoothing=0.1)
    with pytest.raises(ValueError, match=r"label_smoothing = 1\.5 is outside \[0, 1\]"):
        symloss.get("cce_logits", label_smoothing=1.5)


def test_label_smoothing_keeps_the_gradient_softmax_minus_target():
    # Hand derivation: the smoothed rows (1 - eps) t + eps/m still sum to 1, so the
    # one-hot constraint gives softmax - t' exactly as for the plain cross-entropy.
    C = symloss.get("cce_logits", label_smoothing=0.1)
    smoothed = (1 - smoothing) * t[i, j] + smoothing / m
    assert sp.expand(C.gradient() - (softmax(z, i, j) - smoothed) / n) == 0
    assert [c.name for c in C.constraints_used()] == ["one_hot"]
    # Keras's binary smoothing, towards 1/2.
    B = symloss.get("bce_logits", label_smoothing=0.1)
    half = t[i] * (1 - smoothing) + smoothing / 2
    assert sp.expand(B.gradient() - (symloss.sigmoid(z[i]) - half) / n) == 0


def test_default_cross_entropies_are_unchanged():
    assert symloss.get("cce_logits").gradient() == (softmax(z, i, j) - t[i, j]) / n
    assert symloss.get("bce_logits").gradient() == (symloss.sigmoid(z[i]) - t[i]) / n


# ------------------------------------------------------------------ PyTorch 2.13.0 values
def test_cross_entropy_matches_pytorch_with_weight_smoothing_and_ignore_index():
    # Values from PyTorch 2.13.0 F.cross_entropy(X, [3, 1, -100], weight=W,
    # label_smoothing=0.1), float64: the ignored row counts for nothing and the mean
    # divides by w_3 + w_1 = 5, the smoothing term included.
    L = symloss.get("cce_logits", class_weight=W, label_smoothing=0.1)
    labels = np.array([3, 1, -100])
    assert L(X, labels) == pytest.approx(0.8067242006088016, rel=1e-13)
    per = symloss.get("cce_logits", class_weight=W, label_smoothing=0.1, reduction="none")
    np.testing.assert_allclose(
        per(X, labels), [1.944943777346443, 2.0886772256975643, 0.0], rtol=1e-13
    )
    np.testing.assert_allclose(L.grad(X, labels)[2], 0.0)


def test_cross_entropy_pytorch_values_without_ignored_rows():
    labels = np.array([3, 1, 2])
    # PyTorch 2.13.0 F.cross_entropy(X, [3, 1, 2]), with label_smoothing=0.2, with weight=W.
    assert symloss.get("cce_logits")(X, labels) == pytest.approx(1.0986532416034336, rel=1e-13)
    smooth = symloss.get("cce_logits", label_smoothing=0.2)
    assert smooth(X, labels) == pytest.approx(1.241986574936767, rel=1e-13)
    weighted = symloss.get("cce_logits", class_weight=W)
    assert weighted(X, labels) == pytest.approx(0.8700556269872523, rel=1e-13)
    # Integer labels and their one-hot rows: the same per-sample values; the weighted
    # mean divides by sum w_y for labels but by n for rows, as PyTorch does.
    rows = np.eye(4)[labels]
    per = symloss.get("cce_logits", class_weight=W, reduction="none")
    np.testing.assert_allclose(per(X, labels), per(X, rows), rtol=1e-15)
    assert weighted(X, rows) == pytest.approx(per(X, rows).sum() / 3, rel=1e-15)


def test_cross_entropy_probability_targets_match_pytorch():
    # PyTorch 2.13.0 F.cross_entropy(X, P, weight=W, label_smoothing=0.1) with
    # probability rows P: smoothing applies to P, and the mean divides by n.
    P = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]])
    L = symloss.get("cce_logits", class_weight=W, label_smoothing=0.1)
    assert L(X, P) == pytest.approx(2.75403108935936, rel=1e-13)


def test_custom_ignore_index_and_all_ignored():
    L = symloss.get("cce_logits", ignore_index=3)
    labels = np.array([3, 1, 2])
    assert L(X, labels) == pytest.approx(symloss.get("cce_logits")(X[1:], labels[1:]), rel=1e-15)
    with pytest.raises(ValueError, match="every row is ignored"):
        L(X[:1], labels[:1])
    with pytest.raises(ValueError, match=r"label 7 at row 0 is not a class index in \[0, 4\)"):
        symloss.get("cce_logits")(X[:1], np.array([7]))


def test_class_weight_length_must_match_the_classes():
    with pytest.raises(ValueError, match="class_weight has 3 entries but there are 4 classes"):
        symloss.get("cce_logits", class_weight=[1, 2, 3])(X, np.array([0, 1, 2]))


def test_bce_pos_weight_matches_pytorch():
    # PyTorch 2.13.0 F.binary_cross_entropy_with_logits(ZS, BINARY, pos_weight=3.0).
    L = symloss.get("bce_logits", pos_weight=3.0)
    assert L(ZS, BINARY) == pytest.approx(2.5713832826440113, rel=1e-13)


def test_softmax_ce_matches_optax_reference_values():
    # optax's test suite: softmax_cross_entropy per sample (float32 literals).
    logits = np.array([[10.0, 1.0, -2.0], [1.0, 4.0, 0.2]])
    L = symloss.get("cce_logits", reduction="none")
    expected = [9.00013, 3.0696733]
    np.testing.assert_allclose(L(logits, np.array([[0, 1, 0], [1, 0, 0]])), expected, rtol=1e-6)
    np.testing.assert_allclose(L(logits, np.array([1, 0])), expected, rtol=1e-6)


# ------------------------------------------------------------------ focal, poly-1
def test_sigmoid_focal_matches_torchvision():
    # torchvision 0.29 ops.sigmoid_focal_loss on PyTorch 2.13.0, float64: defaults
    # (alpha=0.25, gamma=2, reduction="none"), then alpha=-1 (no alpha_t), gamma=1.5,
    # reduction="mean" with soft targets.
    L = symloss.get("sigmoid_focal", reduction="none")
    expected = [
        0.6915701102563155,
        0.05068011788812772,
        0.04332169878499658,
        0.3694086597123815,
        1.4678924304673092e-06,
    ]
    np.testing.assert_allclose(L(ZS, BINARY), expected, rtol=1e-13)
    soft = np.array([1.0, 0.0, 0.3, 0.8, 0.0])
    U = symloss.get("sigmoid_focal", alpha=None, gamma=1.5)
    assert U(ZS, soft) == pytest.approx(1.447304895611998, rel=1e-13)
    assert "alpha" not in U.param_values and not U.term.has(sp.Symbol("alpha", nonnegative=True))


def test_softmax_focal_matches_keras_docs():
    # keras.losses.categorical_focal_crossentropy docstring example (float32 output):
    # y_true [[0, 1, 0], [0, 0, 1]], y_pred [[.05, .9, .05], [.1, .85, .05]] ->
    # [2.63401289e-04, 6.75912094e-01].  Probabilities are given as their logs here.
    probs = np.array([[0.05, 0.9, 0.05], [0.1, 0.85, 0.05]])
    L = symloss.get("softmax_focal", reduction="none")
    np.testing.assert_allclose(
        L(np.log(probs), np.array([1, 2])), [2.63401289e-04, 6.75912094e-01], rtol=1e-6
    )
    # alpha = 1, gamma = 0 is the plain cross-entropy.
    plain = symloss.get("softmax_focal", alpha=1.0, gamma=0.0)
    assert plain(X, np.array([3, 1, 2])) == pytest.approx(1.0986532416034336, rel=1e-13)


@pytest.mark.parametrize("eps", [1e-6, 0.5, 2.0, -1.0])
def test_poly1_gradient_vanishes_where_the_right_class_has_all_the_mass(eps):
    # p_t rounds to 1: the true gradient, (p - t)(1 + eps p) + eps p (p_t - p), is
    # ~e^-1e4 in every entry.  Collected as eps p p_t + (-eps p - 1) t + p, it was one
    # rounding error of 1 + eps (1.1e-16 at eps = 1e-6).
    L = symloss.get("poly1_cross_entropy", epsilon=eps)
    logits = np.array([[1e4, -1e4, 0.0], [30.0, -30.0, 1e4]])
    g = L.grad(logits, np.array([0, 2]))
    assert np.all(np.abs(g) < 1e-300), g


def test_poly1_is_cross_entropy_plus_epsilon_one_minus_pt():
    # optax's poly_loss_cross_entropy: CE + epsilon (1 - p_t), computed here from the
    # cross-entropy (PyTorch 2.13.0 value) and p_t by hand.
    labels = np.array([3, 1, 2])
    e = np.exp(X - X.max(axis=1, keepdims=True))
    p_t = (e / e.sum(axis=1, keepdims=True))[np.arange(3), labels]
    for eps in (2.0, -1.0, 0.5):
        L = symloss.get("poly1_cross_entropy", epsilon=eps)
        expected = 1.0986532416034336 + eps * np.mean(1 - p_t)
        assert L(X, labels) == pytest.approx(expected, rel=1e-13)
    with pytest.raises(ValueError, match=r"epsilon = -2\.0 is outside \[-1, oo\)"):
        symloss.get("poly1_cross_entropy", epsilon=-2.0)


# ------------------------------------------------------------------ soft margins
def test_soft_margins_match_pytorch():
    signs = np.array([1.0, -1.0, 1.0, -1.0, -1.0])
    # PyTorch 2.13.0 F.soft_margin_loss(ZS, signs).
    assert symloss.get("soft_margin")(ZS, signs) == pytest.approx(1.8674294986234123, rel=1e-13)
    with pytest.raises(ValueError, match=r"target t\[1\] = 0\.0 is outside the domain \{-1, 1\}"):
        symloss.get("soft_margin")(ZS, BINARY)
    # PyTorch 2.13.0 F.multilabel_soft_margin_loss(X, T), with weight=W, reduction="none".
    T = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0]], dtype=float)
    L = symloss.get("multilabel_soft_margin")
    assert L(X, T) == pytest.approx(0.6741217411129199, rel=1e-13)
    weighted = symloss.get("multilabel_soft_margin", class_weight=W)
    assert weighted(X, T) == pytest.approx(0.883309749193817, rel=1e-13)
    per = symloss.get("multilabel_soft_margin", reduction="none")
    np.testing.assert_allclose(
        per(X, T), [0.370208850718961, 0.9937624060700205, 0.6583939665497783], rtol=1e-13
    )


# ------------------------------------------------------------------ extremes vs mpmath
ALPHA = mpmath.mpf("0.25")  # the focal losses' default alpha


def _sp(x):  # softplus, cancellation-free in mpmath
    return mpmath.log1p(mpmath.exp(x))


def _sig(x):
    return 1 / (1 + mpmath.exp(-x))


def _focal(zv, tv, a=ALPHA, g=2):
    # alpha_t (1 - p_t)^gamma ce, with 1 - p_t = (1 - t) sigma(z) + t sigma(-z): all terms >= 0.
    at = a * tv + (1 - a) * (1 - tv)
    return at * ((1 - tv) * _sig(zv) + tv * _sig(-zv)) ** g * (tv * _sp(-zv) + (1 - tv) * _sp(zv))


def _focal_grad(zv, tv, a=ALPHA, g=2):
    # alpha_t (g x^(g-1) x' c + x^g c'), x = 1 - p_t, c the cross-entropy; for t in {0, 1}
    # both terms have one sign, and for soft t the stability check guards the reference.
    at = a * tv + (1 - a) * (1 - tv)
    x = (1 - tv) * _sig(zv) + tv * _sig(-zv)
    dx = _sig(zv) * _sig(-zv) * (1 - 2 * tv)
    c = tv * _sp(-zv) + (1 - tv) * _sp(zv)
    dc = (1 - tv) * _sig(zv) - tv * _sig(-zv)
    return at * (g * x ** (g - 1) * dx * c + x**g * dc)


@pytest.mark.parametrize("logit", [-1e4, -740.0, -40.0, -1.0, 0.0, 2.5, 40.0, 740.0, 1e4])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
@pytest.mark.parametrize("gamma", [2.0, 0.5])
def test_sigmoid_focal_at_extreme_logits_matches_mpmath(logit, target, gamma):
    # gamma < 1: (1 - p_t)^(gamma - 1) is inf where 1 - p_t underflows (|z| > 745), times
    # a derivative that underflows with it; the gradient is then 0, not NaN.
    L = symloss.get("sigmoid_focal", gamma=gamma)
    value = reference(lambda zv, tv: _focal(zv, tv, g=gamma), logit, target)
    grad = reference(lambda zv, tv: _focal_grad(zv, tv, g=gamma), logit, target)
    v, g = L(np.array([logit]), np.array([target])), L.grad(np.array([logit]), np.array([target]))
    assert np.isfinite(v) and np.isfinite(g).all()
    assert v == pytest.approx(value, rel=1e-12, abs=1e-300)
    assert g[0] == pytest.approx(grad, rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("logit", [-1e4, -800.0, -30.0, 0.0, 30.0, 800.0, 1e4])
def test_soft_margins_at_extreme_logits_match_mpmath(logit):
    zz = np.array([logit, logit])
    signs = np.array([1.0, -1.0])
    L = symloss.get("soft_margin", reduction="none")
    np.testing.assert_allclose(
        L(zz, signs), [reference(lambda x: _sp(-x), logit), reference(_sp, logit)], rtol=1e-13
    )
    g = symloss.get("soft_margin", reduction="sum").grad(zz, signs)
    np.testing.assert_allclose(
        g, [reference(lambda x: -_sig(-x), logit), reference(_sig, logit)], rtol=1e-13
    )
    M = symloss.get("multilabel_soft_margin", reduction="sum")
    rows = np.array([[logit, logit]])
    assert M(rows, np.array([[1.0, 0.0]])) == pytest.approx(
        reference(lambda x: (_sp(-x) + _sp(x)) / 2, logit), rel=1e-13
    )


def _softmax_parts(zs):
    """p_j, 1 - p_j (summed from the other classes: no cancellation) and log p_j."""
    top = max(zs)
    e = [mpmath.exp(x - top) for x in zs]
    total = mpmath.fsum(e)
    q = [mpmath.fsum(e[:c] + e[c + 1 :]) / total for c in range(len(zs))]
    return [x / total for x in e], q, [x - top - mpmath.log(total) for x in zs]


def _focal_parts(g):
    return (
        lambda tj, p, q, lp: -ALPHA * q**g * tj * lp,
        lambda tj, p, q, lp: tj * q ** (g - 1) * (q - g * p * lp),
        -ALPHA,
    )


def _poly1_parts(eps):
    return (
        lambda tj, p, q, lp: tj * (eps * q - lp),
        lambda tj, p, q, lp: tj * (1 + eps * p),
        -1,
    )


# Per class: the loss term f(t, p, 1 - p, log p), and h(t, p, 1 - p, log p) such that
# d(row)/dz_k = sign (h_k (1 - p_k) - p_k sum_{j != k} h_j), by the softmax Jacobian
# p_j (delta_jk - p_k); both parts are >= 0, so mpmath's difference is exact enough.
# gamma < 1 and a small epsilon are where float64 met 0 * inf (focal) and a collected
# p - t (poly-1) at the confidently right class.
SOFTMAX_LOSSES = {
    "softmax_focal": ({}, _focal_parts(2)),
    "softmax_focal|gamma=0.5": ({"gamma": 0.5}, _focal_parts(mpmath.mpf("0.5"))),
    "poly1_cross_entropy": ({}, _poly1_parts(2)),
    "poly1_cross_entropy|epsilon=1e-6": ({"epsilon": 1e-6}, _poly1_parts(mpmath.mpf(1e-6))),
}


@pytest.mark.parametrize("case", sorted(SOFTMAX_LOSSES))
@pytest.mark.parametrize("scale", [1.0, 30.0, 400.0, 1e4])
def test_softmax_losses_at_extreme_logits_match_mpmath(case, scale):
    params, (f, h, sign) = SOFTMAX_LOSSES[case]
    L = symloss.get(case.split("|")[0], reduction="sum", **params)
    logits = np.array([[1.0, -1.0, 0.5], [-0.3, 0.2, 1.0]]) * scale
    target = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])

    def value(*a):
        parts = zip(a[3:], *_softmax_parts(a[:3]))
        return mpmath.fsum(f(*x) for x in parts)

    def grad(c, *a):
        p, q, lp = _softmax_parts(a[:3])
        hs = [h(*x) for x in zip(a[3:], p, q, lp)]
        return sign * (hs[c] * q[c] - p[c] * mpmath.fsum(hs[:c] + hs[c + 1 :]))

    total = sum(reference(value, *r, *tr) for r, tr in zip(logits, target))
    assert L(logits, target) == pytest.approx(total, rel=1e-12)
    expected = np.array(
        [
            [reference(lambda *a, c=c: grad(c, *a), *r, *tr) for c in range(3)]
            for r, tr in zip(logits, target)
        ]
    )
    g = L.grad(logits, target)
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, expected, rtol=1e-12, atol=1e-14 * np.abs(expected).max())

"""Kullback-Leibler and generalised KL: reference values, options, edges and extremes."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from shared import reference

import symloss
from symloss.numeric.stabilize import stabilize
from symloss.symbolic import derivatives
from symloss.symbols import xlogy

# A batch of two rows of three outcomes: log-probabilities q (rows need not be normalised
# for the formula) and target probabilities p, one of them 0.
LOG_Q = np.array([[-1.2, -0.4, -2.3], [-0.1, -3.0, -2.5]])
P = np.array([[0.2, 0.5, 0.3], [0.0, 0.6, 0.4]])


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        # Values from PyTorch 2.13.0 (CPU, float64): F.kl_div(LOG_Q, P, reduction=...).
        ("batchmean", 1.113667659463085),
        ("mean", 0.37122255315436165),
        ("sum", 2.22733531892617),
    ],
)
def test_kl_divergence_matches_pytorch(reduction, expected):
    L = symloss.get("kl_div", reduction=reduction)
    assert L(LOG_Q, P) == pytest.approx(expected, rel=1e-14)


def test_kl_divergence_none_is_one_value_per_row():
    # PyTorch 2.13.0 F.kl_div(..., reduction="none") gives the elements; their row sums:
    elements = np.array(
        [
            [-0.0818875824868201, -0.14657359027997263, 0.32880815870221913],
            [0.0, 1.4935046257404054, 0.633483707250338],
        ]
    )
    per_row = symloss.get("kl_div", reduction="none")(LOG_Q, P)
    np.testing.assert_allclose(per_row, elements.sum(axis=1), rtol=1e-14)


def test_kl_divergence_defaults_to_batchmean_and_its_gradient_matches_pytorch():
    L = symloss.get("kl_divergence")
    assert L.reduction == "batchmean" and L is symloss.get("kl_div") is symloss.get("kld")
    # PyTorch 2.13.0 autograd of F.kl_div(x, P, reduction="batchmean"): -P / n.
    np.testing.assert_allclose(L.grad(LOG_Q, P), -P / 2, rtol=0, atol=0)
    assert sp.simplify(L.gradient() + L.target[L.element.indices] / symloss.n) == 0
    assert L.hessian() == 0


def test_kl_divergence_with_log_target_matches_pytorch():
    L = symloss.get("kl_div", log_target=True)
    log_p = np.log(np.array([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]))
    # PyTorch 2.13.0: F.kl_div(LOG_Q, log_p, reduction="batchmean", log_target=True).
    assert L(LOG_Q, log_p) == pytest.approx(0.8812006305393234, rel=1e-14)
    np.testing.assert_allclose(L.grad(LOG_Q, log_p), -np.exp(log_p) / 2, rtol=1e-15)
    # The same divergence as with probabilities.
    assert L(LOG_Q, log_p) == pytest.approx(symloss.get("kl_div")(LOG_Q, np.exp(log_p)))


def test_kl_divergence_options_are_checked():
    with pytest.raises(TypeError, match="log_target"):
        symloss.get("kl_div", log_input=True)
    with pytest.raises(ValueError, match="batchmean"):
        symloss.get("kl_div", reduction="avg")


def test_kl_zero_target_contributes_nothing_whatever_the_prediction():
    L = symloss.get("kl_div", reduction="sum")
    # 0 log 0 = 0 and 0 * y = 0: PyTorch's xlogy convention; finite even at y = -1e300.
    assert L(np.array([[-1e300, 0.0]]), np.array([[0.0, 1.0]])) == 0.0
    g = L.grad(np.array([[-1e300, 0.0]]), np.array([[0.0, 1.0]]))
    np.testing.assert_array_equal(g, [[0.0, -1.0]])


def test_kl_stable_form_uses_xlogy_for_the_entropy_term():
    L = symloss.get("kl_div")
    stable = stabilize(derivatives.of(L).kernel_summand, frozenset({L.target}))
    t = L.target[L.element.indices]
    assert stable.has(xlogy(t, t))


def test_kl_refuses_targets_outside_the_probability_range():
    L = symloss.get("kl_div")
    with pytest.raises(ValueError, match=r"target t\[0, 1\] = -0\.5"):
        L(np.zeros((1, 2)), np.array([[1.0, -0.5]]))
    with pytest.raises(ValueError, match="outside the domain"):
        L(np.array([[-np.inf, 0.0]]), np.array([[0.0, 1.0]]))


@pytest.mark.parametrize(
    ("y", "t"),
    [(-1e4, 1e-300), (-700.0, 0.5), (-1e-12, 1.0), (3.0, 1e-8), (-50.0, 1e-20)],
)
def test_kl_at_extremes_matches_mpmath(y, t):
    L = symloss.get("kl_div", reduction="sum")
    expected = reference(lambda y, t: t * mpmath.log(t) - t * y, y, t)
    assert L(np.array([[y]]), np.array([[t]])) == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------------- generalised KL
def test_generalized_kl_matches_scipy_kl_div():
    t = np.array([0.0, 0.5, 2.0, 3.0, 1e-3])
    y = np.array([0.7, 0.5, 1.0, 7.5, 2.0])
    # SciPy 1.17.1: scipy.special.kl_div(t, y), element-wise.
    expected = [0.7, 0.0, 0.3862943611198906, 1.7511278043775356, 1.9913990975404579]
    L = symloss.get("generalized_kl", reduction="none")
    np.testing.assert_allclose(L(y, t), expected, rtol=1e-15, atol=0)
    assert symloss.get("i_divergence")(y, t) == pytest.approx(sum(expected), rel=1e-15)


def test_generalized_kl_defaults_to_the_sum_and_keeps_the_shape_with_none():
    L = symloss.get("generalized_kl")
    assert L.reduction == "sum"
    y, t = np.full((2, 3), 0.5), np.full((2, 3), 0.25)
    assert symloss.get("generalized_kl", reduction="none")(y, t).shape == (2, 3)
    assert symloss.get("generalized_kl", reduction="mean")(y, t) == pytest.approx(L(y, t) / 6)


def test_generalized_kl_of_distributions_is_the_kl_divergence():
    p = np.array([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]])
    q = np.array([[0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])
    kl = symloss.get("kl_div", reduction="sum")(np.log(q), p)
    assert symloss.get("generalized_kl")(q, p) == pytest.approx(kl, rel=1e-13)


def test_generalized_kl_gradient_and_hessian():
    L = symloss.get("generalized_kl")
    y, t = L.element, L.target[L.element.indices]
    assert sp.simplify(L.gradient() - (1 - t / y)) == 0
    assert sp.simplify(L.hessian() - t / y**2) == 0


def test_generalized_kl_edges_follow_scipy():
    L = symloss.get("generalized_kl", reduction="none")
    # scipy.special.kl_div: (0, 0) -> 0, (t > 0, 0) -> inf, (0, y) -> y.
    np.testing.assert_array_equal(
        L(np.array([0.0, 0.0, 2.5]), np.array([0.0, 1.0, 0.0])), [0.0, np.inf, 2.5]
    )
    np.testing.assert_array_equal(
        symloss.get("generalized_kl").grad(np.array([0.0, 2.5]), np.array([0.0, 0.0])),
        [1.0, 1.0],
    )
    with pytest.raises(ValueError, match="outside the domain"):
        L(np.array([-1.0]), np.array([1.0]))


@pytest.mark.parametrize(
    ("y", "t"),
    [(1e-5, 1e5), (1e5, 1e-5), (1e-300, 1e-300 * 3), (1e200, 1.0), (2.0, 1e-200)],
)
def test_generalized_kl_at_extremes_matches_mpmath(y, t):
    L = symloss.get("generalized_kl")
    value = reference(lambda y, t: t * mpmath.log(t / y) - t + y, y, t)
    grad = reference(lambda y, t: 1 - t / y, y, t)
    assert L(np.array([y]), np.array([t])) == pytest.approx(value, rel=1e-13)
    assert L.grad(np.array([y]), np.array([t]))[0] == pytest.approx(grad, rel=1e-13)

"""Margin losses: references, subgradients at the kinks, and the row maximum behind them."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symloss
from symloss import m, n
from symloss.numeric.kernel import Kernel
from symloss.printing.printers import latex_expr
from symloss.symbols import argmax_share, relu, rowgap, rowmax, step

y, t = symloss.array("y"), symloss.array("t")
i, j, k = (symloss.index(c) for c in "ijk")

# Keras's hinge tests: y_true (as -1/1) and y_pred, two samples of four elements.
KERAS_T = np.array([[-1, 1, -1, 1], [-1, -1, 1, 1]], dtype=float)
KERAS_Y = np.array([[-0.3, 0.2, -0.1, 1.6], [-0.25, -1.0, 0.5, 0.6]])

X = np.array([[1.5, -0.3, 0.2, 2.0], [0.1, 0.4, -1.2, 0.3], [-0.5, 2.2, 0.9, -1.0]])
LABELS = np.array([3, 1, 2])


# ------------------------------------------------------------------ relu and step
def test_relu_differentiates_to_a_step_that_is_zero_at_the_kink():
    x = sp.Symbol("x", real=True)
    assert relu(x).diff(x) == step(x) and step(x).diff(x) == 0
    assert step(sp.S.Zero) == 0 and step(sp.Rational(1, 3)) == 1 and relu(sp.Integer(-2)) == 0
    assert step(x) ** 2 == step(x)  # what makes the squared hinge's Hessian read cleanly
    assert latex_expr(relu(x) ** 2) == r"\max\left(0, x\right)^{2}"
    assert latex_expr(step(x)) == r"\mathbf{1}\left[x > 0\right]"


# ------------------------------------------------------------------ hinge, squared hinge
def test_hinge_and_squared_hinge_match_keras():
    # Keras's HingeTest / SquaredHingeTest (unweighted): 0.506 and 0.364 (atol 1e-3 there);
    # by hand, (0.6 + 0.4125)/2 and (0.485 + 0.243125)/2 exactly.
    assert symloss.get("hinge")(KERAS_Y, KERAS_T) == pytest.approx(0.50625, rel=1e-15)
    assert symloss.get("squared_hinge")(KERAS_Y, KERAS_T) == pytest.approx(0.3640625, rel=1e-15)


def test_hinge_subgradient_at_the_kink_is_zero():
    # t y = 1 exactly: relu'(0) = 0, as PyTorch's autograd for F.relu(1 - t y).
    L = symloss.get("hinge", reduction="sum")
    np.testing.assert_array_equal(L.grad([1.0, -2.0, 0.5], [1, -1, 1]), [0.0, 0.0, -1.0])
    assert symloss.get("hinge").hessian() == 0
    S = symloss.get("squared_hinge", reduction="sum")
    np.testing.assert_array_equal(S.hess([1.0, 0.5], [1, 1]), [0.0, 2.0])
    assert S.hessian() == 2 * t[i] ** 2 * step(1 - t[i] * y[i])


def test_hinge_refuses_zero_one_labels():
    with pytest.raises(ValueError, match=r"target t\[0\] = 0\.0 is outside the domain \{-1, 1\}"):
        symloss.get("hinge")(np.array([0.3, 0.2]), np.array([0.0, 1.0]))


# ------------------------------------------------------------------ categorical hinge
def test_categorical_hinge_matches_keras():
    # Keras's CategoricalHingeTest: y_true [0, 1], y_pred [0.6, 0.4] -> 1.2 (per sample).
    L = symloss.get("categorical_hinge", reduction="none")
    np.testing.assert_allclose(L(np.array([[0.6, 0.4]]), np.array([[0.0, 1.0]])), [1.2])
    # Keras's neg includes the true class with the value 0: with every other score
    # negative, neg is 0, not the largest wrong score.
    np.testing.assert_allclose(L(np.array([[-2.0, -3.0, 0.5]]), np.array([2])), [0.5])
    np.testing.assert_allclose(L(np.array([[-2.0, -3.0, 1.5]]), np.array([2])), [0.0])


def test_categorical_hinge_gradient_splits_ties_and_labels_equal_one_hot():
    L = symloss.get("categorical_hinge", reduction="sum")
    scores = np.array([[0.5, 0.5, 0.1], [0.2, 0.9, -0.4], [-2.0, -3.0, 0.5]])
    labels = np.array([2, 0, 2])
    g = L.grad(scores, labels)
    # Row 0: classes 0 and 1 tie for neg and share its gradient; row 1: class 1 is neg;
    # row 2: neg is the true class's 0, whose derivative (1 - t) y is 0.
    np.testing.assert_allclose(g, [[0.5, 0.5, -1.0], [-1.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    np.testing.assert_array_equal(g, L.grad(scores, np.eye(3)[labels]))
    assert L(scores, labels) == L(scores, np.eye(3)[labels])
    # At the hinge point (neg - pos + 1 = 0) the gradient is 0.
    np.testing.assert_array_equal(L.grad(np.array([[0.5, 1.5]]), np.array([1])), [[0.0, 0.0]])


def test_categorical_hinge_symbolic_forms():
    L = symloss.get("categorical_hinge")
    assert L.hessian() == 0
    assert {type(k) for k in L.kinks} >= {rowgap, sp.Add}
    tex = L.latex(part="gradient")
    assert r"\operatorname*{arg\,max}" in tex and r"\mathbf{1}\left[" in tex
    assert r"\max_{j}" in L.latex()


# ------------------------------------------------------------------ multi margin
def test_multi_margin_matches_pytorch():
    # PyTorch's MultiMarginLoss docs example: 0.3250.
    assert symloss.get("multi_margin")([[0.1, 0.2, 0.4, 0.8]], [3]) == pytest.approx(0.325)
    # PyTorch 2.13.0 F.multi_margin_loss on X, LABELS (float64): defaults; p=2, margin=0.7;
    # weight=[1, 2, 0.5, 3]; reduction="none".
    assert symloss.get("multi_margin")(X, LABELS) == pytest.approx(0.3666666666666667, rel=1e-14)
    L2 = symloss.get("multi_margin", p=2, margin=0.7)
    assert L2(X, LABELS) == pytest.approx(0.37999999999999995, rel=1e-14)
    weighted = symloss.get("multi_margin", class_weight=[1.0, 2.0, 0.5, 3.0])
    assert weighted(X, LABELS) == pytest.approx(0.4875, rel=1e-14)
    per = symloss.get("multi_margin", reduction="none")
    np.testing.assert_allclose(per(X, LABELS), [0.125, 0.4, 0.575], rtol=1e-14)
    np.testing.assert_allclose(per(X, np.eye(4)[LABELS]), [0.125, 0.4, 0.575], rtol=1e-14)


def test_multi_margin_power_is_structural():
    assert not symloss.get("multi_margin").term.has(sp.Pow)
    squared = symloss.get("multi_margin", p=2).term.atoms(sp.Pow)
    assert any(isinstance(q.base, relu) and q.exp == 2 for q in squared)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        symloss.get("multi_margin", p=3)
    with pytest.raises(TypeError, match="valid options: class_weight, margin, p, reduction"):
        symloss.get("multi_margin", power=2)


def test_multi_margin_subgradient_at_the_margin():
    # margin - x_y + x_j = 0 exactly for j = 0: that class contributes 0 (PyTorch's
    # backward tests z > 0); class 2 violates the margin.
    L = symloss.get("multi_margin", reduction="sum")
    g = L.grad(np.array([[0.0, 1.0, 0.5]]), np.array([1]))
    np.testing.assert_allclose(g, [[0.0, -1 / 3, 1 / 3]])


# ------------------------------------------------------------------ the row maximum
def test_rowmax_derivative_is_the_argmax_share():
    R = rowmax((1 - t[i, j]) * y[i, j], (j, 1, m))
    a, b = sp.symbols("a b", integer=True)
    d = R.diff(y[a, b])
    assert isinstance(d, sp.Sum) and d.has(argmax_share(R, d.variables[0]))
    assert i in R.free_symbols and j not in R.free_symbols  # j is bound, as in a Sum


def test_row_reduction_kernels():
    R = rowmax(y[i, k], (k, 1, m))
    arrays = {"y": np.array([[1.0, 3.0, 3.0, -1.0], [0.5, -2.0, 0.1, 0.4]])}
    sizes = {n: 2, m: 4}
    layout = ((i, n), (j, m))
    np.testing.assert_array_equal(Kernel(R, layout)(arrays, sizes).ravel(), [3.0, 0.5])
    share = np.broadcast_to(Kernel(argmax_share(R, j), layout)(arrays, sizes), (2, 4))
    np.testing.assert_array_equal(share, [[0, 0.5, 0.5, 0], [1, 0, 0, 0]])
    gap = Kernel(rowgap(R), layout)(arrays, sizes)
    np.testing.assert_allclose(np.ravel(gap), [0.0, 0.1])
    # A bound index that is also a layout letter is renamed, not confused with it.
    same = rowmax(y[i, j], (j, 1, m))
    np.testing.assert_array_equal(np.ravel(Kernel(same, layout)(arrays, sizes)), [3.0, 0.5])

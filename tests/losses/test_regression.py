"""Regression losses: references from the anchor libraries, kink conventions, stable kernels."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from shared import reference

import symloss
from symloss.numeric.stabilize import expand_kernel_functions
from symloss.symbols import array, i, n

y, t = array("y"), array("t")

# The anchors' inputs from optax's Huber test (optax/losses/_regression_test.py, carried
# as facts in issue #4); PyTorch values below use the same ys and ts.
YS = np.array([-2.0, 0.5, 0.0, 0.5, 2.0, 4.0, 132.0])
TS = np.array([0.0, -0.5, 0.0, 1.0, 1.0, 2.0, 0.3])


def test_huber_matches_optax_reference_values():
    L = symloss.get("huber", delta=1.0, reduction="none")
    np.testing.assert_allclose(L(YS, TS), [1.5, 0.5, 0.0, 0.125, 0.5, 1.5, 131.2], rtol=1e-12)


def test_log_cosh_matches_optax_reference_values():
    # optax's log_cosh test values (issue #4), computed there in float32: 1e-6 relative.
    L = symloss.get("log_cosh", reduction="none")
    got = L(np.array([500.0, -2.0, -1.0, 0.5, 1.0]), np.array([-200.0, -1.5, 0.0, -1.0, 1.0]))
    np.testing.assert_allclose(got, [699.3068, 0.12011445, 0.4337809, 0.85544014, 0.0], rtol=1e-6)


# PyTorch 2.13.0+cpu, float64, computed once with torch.nn.functional on YS[3] = 1.5
# (not 0.5) so that huber(delta=1.5) sits on its kink |e| = delta.
YS_TORCH = np.array([-2.0, 0.5, 0.0, 1.5, 2.0, 4.0, 132.0])
TORCH_2_13 = {
    ("mse", ()): (
        2479.3057142857137,
        [-0.5714285714285714, 0.2857142857142857, 0.0, 0.14285714285714285]
        + [0.2857142857142857, 0.5714285714285714, 37.628571428571426],
    ),
    ("l1", ()): (19.74285714285714, [-1 / 7, 1 / 7, 0.0, 1 / 7, 1 / 7, 1 / 7, 1 / 7]),
    ("huber", (("delta", 1.5),)): (
        28.757142857142856,
        [-0.21428571428571427, 0.14285714285714285, 0.0, 0.07142857142857142]
        + [0.14285714285714285, 0.21428571428571427, 0.21428571428571427],
    ),
    ("smooth_l1", (("beta", 0.5),)): (
        19.52857142857143,
        [-1 / 7, 1 / 7, 0.0, 1 / 7, 1 / 7, 1 / 7, 1 / 7],
    ),
}


@pytest.mark.parametrize("key", TORCH_2_13, ids=lambda k: k[0])
def test_values_and_gradients_recorded_from_pytorch_2_13(key):
    name, options = key
    value, grad = TORCH_2_13[key]
    L = symloss.get(name, **dict(options))
    assert L(YS_TORCH, TS) == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(L.grad(YS_TORCH, TS), grad, rtol=1e-14, atol=1e-300)


def test_pinball_matches_scikit_learn_docstring_examples():
    # sklearn.metrics.mean_pinball_loss docstring: 0.03..., 0.3..., 0.3..., 0.03..., 0.0.
    t3 = np.array([1.0, 2.0, 3.0])
    low, high = np.array([0.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])
    assert symloss.get("pinball", quantile=0.1)(low, t3) == pytest.approx(0.1 / 3)
    assert symloss.get("pinball", quantile=0.1)(high, t3) == pytest.approx(0.9 / 3)
    assert symloss.get("pinball", quantile=0.9)(low, t3) == pytest.approx(0.9 / 3)
    assert symloss.get("pinball", quantile=0.9)(high, t3) == pytest.approx(0.1 / 3)
    assert symloss.get("quantile", quantile=0.9)(t3, t3) == 0.0


def test_pinball_at_half_is_half_the_absolute_error():
    rng = np.random.default_rng(0)
    yy, tt = rng.normal(size=50), rng.normal(size=50)
    assert symloss.get("pinball")(yy, tt) == pytest.approx(symloss.get("mae")(yy, tt) / 2)


def test_msle_and_mape_match_scikit_learn_docstring_examples():
    tt, yy = np.array([3.0, 5.0, 2.5, 7.0]), np.array([2.5, 5.0, 4.0, 8.0])
    # sklearn.metrics.mean_squared_log_error docstring: 0.039...; hand value with math.log1p.
    assert symloss.get("msle")(yy, tt) == pytest.approx(0.03973012298459379, rel=1e-12)
    # sklearn.metrics.mean_absolute_percentage_error docstring: 0.3273... (a fraction);
    # Keras's percentage is 100 times that.
    tt, yy = np.array([3.0, -0.5, 2.0, 7.0]), np.array([2.5, 0.0, 2.0, 8.0])
    mape = symloss.get("mape", eps=float(np.finfo(float).eps))
    assert mape(yy, tt) / 100 == pytest.approx((0.5 / 3 + 1 + 0 + 1 / 7) / 4, rel=1e-14)
    assert 0.3273 <= mape(yy, tt) / 100 < 0.3274


def test_mape_clamps_the_denominator_at_eps_as_keras():
    L = symloss.get("mape", reduction="none")
    assert L(np.array([1.0]), np.array([0.0]))[0] == pytest.approx(100 / 1e-7)
    assert symloss.get("mape", eps=0.5)(np.array([1.0]), np.array([0.25])) == pytest.approx(150)


# ------------------------------------------------------------------ kinks (PyTorch's choices)
def test_absolute_error_gradient_at_zero_residual_is_zero():
    for name in ("mae", "mape"):
        L = symloss.get(name)
        assert L.grad(np.array([1.0, 2.0]), np.array([1.0, 3.0]))[0] == 0.0
        assert np.all(L.hess(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == 0.0)


@pytest.mark.parametrize(("name", "param"), [("huber", "delta"), ("smooth_l1", "beta")])
def test_huber_and_smooth_l1_at_the_switch_take_the_linear_branch(name, param):
    # PyTorch 2.13 double backward: the quadratic branch holds for |e| < delta only, so
    # the Hessian at |e| = delta is 0 (torch.func.hessian of huber_loss there gives 0).
    L = symloss.get(name, reduction="sum", **{param: 1.5})
    yy, tt = np.array([1.5, -1.5, 1.0]), np.zeros(3)
    slope = 1.5 if name == "huber" else 1.0
    np.testing.assert_allclose(L.grad(yy, tt), [slope, -slope, slope / 1.5])
    np.testing.assert_allclose(L.hess(yy, tt), [0.0, 0.0, slope / 1.5])


def test_pinball_gradient_at_the_kink_splits_like_torch_maximum():
    L = symloss.get("pinball", quantile=0.3, reduction="sum")
    yy, tt = np.array([0.0, 1.0, -1.0]), np.zeros(3)
    np.testing.assert_allclose(L.grad(yy, tt), [0.5 - 0.3, 0.7, -0.3])
    assert np.all(L.hess(yy, tt) == 0.0)


# ------------------------------------------------------------------ symbolic forms
def test_gradients_are_the_textbook_forms():
    e = y[i] - t[i]
    assert sp.simplify(symloss.get("mse").gradient() - 2 * e / n) == 0
    assert sp.simplify(symloss.get("mae").gradient() - sp.sign(e) / n) == 0
    assert sp.simplify(symloss.get("log_cosh").gradient() - sp.tanh(e) / n) == 0
    assert sp.simplify(symloss.get("log_cosh").hessian() - 1 / (n * sp.cosh(e) ** 2)) == 0
    delta = symloss.get("huber").params[0].symbol
    clip = sp.Piecewise((e, sp.Abs(e) < delta), (delta * sp.sign(e), True))
    assert sp.simplify(symloss.get("huber").gradient() - clip / n) == 0


def test_log_cosh_latex_reads_as_tanh_and_cosh():
    L = symloss.get("log_cosh")
    assert r"\tanh" in L.latex(part="gradient") and r"\sinh" not in L.latex(part="gradient")
    assert r"\cosh^{2}" in L.latex(part="hessian")


def _log1p_as_log(expr):
    return expr.replace(
        lambda e: isinstance(e, sp.codegen.cfunctions.log1p), lambda e: sp.log(1 + e.args[0])
    )


def test_log_cosh_kernel_branches_are_log_cosh():
    """Symbolic proof of both branches the kernel evaluates log cosh x with."""
    x = sp.Symbol("x", real=True)
    kernel = expand_kernel_functions(sp.log(sp.cosh(x)))
    assert isinstance(kernel, sp.Piecewise) and len(kernel.args) == 2
    near, far = (_log1p_as_log(branch) for branch, _ in kernel.args)
    # Near 0: 1 + 2 sinh^2(x/2) is cosh x.
    assert sp.simplify((sp.exp(near) - sp.cosh(x)).rewrite(sp.exp)) == 0
    # Far: e^{|x|} (1 + e^{-2|x|})/2 is cosh |x| = cosh x; check each sign of x.
    for s in (sp.Symbol("s", positive=True), -sp.Symbol("s", positive=True)):
        assert sp.simplify((sp.exp(far.subs(x, s)) - sp.cosh(s)).rewrite(sp.exp)) == 0


def test_log1p_kernel_rule_is_log_of_one_plus():
    x = sp.Symbol("x", real=True)
    kernel = expand_kernel_functions(sp.log(1 + x))
    assert isinstance(kernel, sp.codegen.cfunctions.log1p)
    assert _log1p_as_log(kernel) == sp.log(1 + x)


# ------------------------------------------------------------------ extremes vs mpmath
@pytest.mark.parametrize(
    "e", [0.0, 1e-300, 1e-8, -1e-3, 0.5, 0.999, 1.0, -1.001, 30.0, 700.0, -800.0, 1e5, 1e300]
)
def test_log_cosh_at_extremes_matches_mpmath(e):
    L = symloss.get("log_cosh", reduction="sum")
    # log cosh |e| = |e| - log 2 + log1p(exp(-2|e|)) cancels near 0; log1p(2 sinh^2) does not.
    value = reference(
        lambda x: (
            mpmath.log1p(2 * mpmath.sinh(x / 2) ** 2)
            if abs(x) < 1
            else abs(x) - mpmath.log(2) + mpmath.log1p(mpmath.exp(-2 * abs(x)))
        ),
        e,
    )
    grad = reference(mpmath.tanh, e)
    hess = reference(lambda x: 1 / mpmath.cosh(x) ** 2, e)
    yy, tt = np.array([e]), np.zeros(1)
    v, g, h = L(yy, tt), L.grad(yy, tt)[0], L.hess(yy, tt)[0]
    assert np.isfinite(v) and np.isfinite(g) and np.isfinite(h)
    assert v == pytest.approx(value, rel=4e-16, abs=1e-300)
    assert g == pytest.approx(grad, rel=4e-16, abs=1e-300)
    assert h == pytest.approx(hess, rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("yy", [1e-12, -1e-9, 0.5, -0.999, 1e15, 1e300])
def test_msle_at_extremes_matches_mpmath(yy):
    L = symloss.get("msle", reduction="sum")
    value = reference(lambda a: (mpmath.log1p(a) - mpmath.log1p(0.25)) ** 2, yy)
    grad = reference(lambda a: 2 * (mpmath.log1p(a) - mpmath.log1p(0.25)) / (1 + a), yy)
    assert L(np.array([yy]), np.array([0.25])) == pytest.approx(value, rel=1e-14)
    assert L.grad(np.array([yy]), np.array([0.25]))[0] == pytest.approx(grad, rel=1e-14)
    # A tiny prediction against a zero target: log1p keeps all digits (log(1 + y) keeps 7).
    tiny = L(np.array([1e-10]), np.array([0.0]))
    assert tiny == pytest.approx(reference(lambda a: mpmath.log1p(a) ** 2, 1e-10), rel=1e-14)


@pytest.mark.parametrize("name", ["huber", "smooth_l1", "mae", "mse", "pinball"])
def test_piecewise_losses_are_finite_at_huge_residuals(name):
    L = symloss.get(name, reduction="none")
    yy, tt = np.array([1e300, -1e300, 1e150]), np.array([-1e300, 1e300, 0.0])
    v, g = L(yy, tt), L.grad(yy, tt)
    if name == "mse":
        np.testing.assert_allclose(v, [np.inf, np.inf, 1e300], rtol=1e-15)  # (2e300)^2 overflows
        return
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    assert v[0] == pytest.approx(
        {"huber": 2e300, "smooth_l1": 2e300, "mae": 2e300}.get(name, 1e300)
    )


# ------------------------------------------------------------------ options and errors
def test_aliases_resolve_to_the_canonical_losses():
    for alias, name in {
        "mse": "mean_squared_error",
        "mse_loss": "mean_squared_error",
        "l1": "mean_absolute_error",
        "mae": "mean_absolute_error",
        "huber_loss": "huber",
        "smooth_l1_loss": "smooth_l1",
        "logcosh": "log_cosh",
        "quantile": "pinball",
        "mean_pinball_loss": "pinball",
        "msle": "mean_squared_log_error",
        "mape": "mean_absolute_percentage_error",
    }.items():
        assert symloss.get(alias) is symloss.get(name)


def test_hyperparameters_bind_and_are_validated():
    L = symloss.get("huber", delta=2.0)
    assert L.param_values["delta"] == 2.0
    assert L(np.array([3.0]), np.array([0.0])) == pytest.approx(2.0 * (3.0 - 1.0))
    with pytest.raises(ValueError, match="delta = -1.0 is outside"):
        symloss.get("huber", delta=-1.0)
    with pytest.raises(ValueError, match="quantile = 1.5 is outside"):
        symloss.get("pinball", quantile=1.5)
    with pytest.raises(TypeError, match="valid options: delta, reduction"):
        symloss.get("huber", beta=1.0)


def test_reductions_and_weights():
    yy, tt = np.array([1.0, -2.0, 0.5]), np.array([0.0, 0.0, 0.0])
    per = symloss.get("smooth_l1", reduction="none")(yy, tt)
    np.testing.assert_allclose(per, [0.5, 1.5, 0.125])
    assert symloss.get("smooth_l1", reduction="sum")(yy, tt) == pytest.approx(per.sum())
    w = np.array([1.0, 0.0, 2.0])
    assert symloss.get("smooth_l1")(yy, tt, weight=w) == pytest.approx((per * w).mean())


def test_msle_refuses_predictions_at_or_below_minus_one():
    with pytest.raises(ValueError, match=r"prediction y\[0\] = -1\.0 is outside"):
        symloss.get("msle")(np.array([-1.0]), np.array([0.0]))

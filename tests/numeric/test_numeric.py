"""Kernels: stable forms proven equal to the naive ones, extreme inputs against mpmath, bad input."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import registry_params
from shared import _naive, _unstabilize, reference

import symloss
from symloss.numeric import evaluate
from symloss.numeric.stabilize import stabilize
from symloss.symbolic import derivatives
from symloss.symbols import sigmoid, softmax, xdivy


@registry_params()
def test_stable_forms_equal_the_naive_composition(loss):
    """Symbolic proof that every stabilised kernel expression is an identity."""
    targets = frozenset({loss.target})
    for expr in (
        loss.term.doit(),
        derivatives.of(loss).gradient[0],
        derivatives.of(loss).hessian[0],
    ):
        stable = stabilize(expr, targets)
        # powsimp: the focal losses' b**gamma / b is b**(gamma - 1) in the kernel.
        diff = sp.expand_log(sp.powsimp(_unstabilize(stable) - _naive(expr)), force=True)
        assert sp.simplify(diff) == 0, (loss.name, stable)


@registry_params()
def test_composed_losses_use_stable_functions(loss):
    stable = stabilize(loss.term.doit(), frozenset({loss.target}))
    assert not stable.has(sigmoid) or loss.composition is None
    assert not any(
        isinstance(a, sp.log) and a.args[0].has(softmax, sigmoid)
        for a in sp.preorder_traversal(stable)
    )


# ------------------------------------------------------------------ single rules
_z, _t, _y = (sp.IndexedBase(sp.Symbol(c, real=True), real=True) for c in "zty")
_i, _j, _k = (sp.Symbol(c, integer=True) for c in "ijk")
_eps, _gamma = sp.Symbol("epsilon", real=True), sp.Symbol("gamma", nonnegative=True)


def test_focal_power_rule_merges_the_powers_and_is_an_identity():
    # d/dz (1 - p)**gamma: gamma (1 - p)**gamma p' / (1 - p); x = 0 where 1 - p underflows.
    b = 1 - softmax(_z, _i, _j)
    x = _gamma * sp.log(softmax(_z, _i, _j)) * _t[_i, _j]
    stable = stabilize(x * b**_gamma / b, frozenset({_t}))
    assert isinstance(stable, xdivy) and stable.args[1] == b ** (1 - _gamma), stable
    assert sp.simplify(sp.powsimp(_unstabilize(stable) - _naive(x * b**_gamma / b))) == 0


def test_softmax_residual_rule_keeps_p_minus_t_whole_and_is_an_identity():
    # poly-1's gradient as the derivation collects it: eps p S + (-eps p - 1) t + p.
    p, t = softmax(_z, _i, _j), _t[_i, _j]
    row = sp.Sum(softmax(_z, _i, _k) * _t[_i, _k], (_k, 1, sp.Symbol("m", integer=True)))
    collected = _eps * p * row + (-_eps * p - 1) * t + p
    stable = stabilize(collected, frozenset({_t}))
    assert (p - t) * (1 + _eps * p) in sp.Add.make_args(stable), stable
    assert sp.expand(stable - collected) == 0
    # A plain residual, or one whose coefficient of t is free of p, stays as it is.
    smoothed = p - (1 - _eps) * t - _eps / 3
    assert stabilize(smoothed, frozenset({_t})) == smoothed
    assert stabilize(p - t, frozenset({_t})) == p - t


def test_expm1_pair_rule_is_an_identity():
    # d/dy of y**b expm1(b L)/b, L = log t - log y (the Tweedie deviance's kernel form).
    b, L = sp.Symbol("b", positive=True), sp.log(_t[_i]) - sp.log(_y[_i])
    grad = sp.diff(_y[_i] ** b * sp.codegen.cfunctions.expm1(b * L) / b, _y[_i])
    stable = stabilize(grad)
    assert stable == -(_y[_i] ** b) / _y[_i], stable
    assert sp.simplify(sp.expand_log(_naive(stable) - _naive(grad), force=True)) == 0


def _mp_sigmoid(x):
    return 1 / (1 + mpmath.exp(-x))


#: Edges by float type: float32's exp overflows from 88.7 and underflows to 0 below
#: -103.3, so +-80 is where its stable forms earn their keep (and 1e4 is still finite).
LOGITS = {
    np.float64: [-1e4, -400.0, -30.0, -1.0, 0.0, 2.5, 30.0, 400.0, 1e4],
    np.float32: [-1e4, -80.0, -30.0, -1.0, 0.0, 2.5, 30.0, 80.0, 1e4],
}
#: Relative tolerance against mpmath (float32: 8 ulp) and the smallest magnitude
#: compared relatively (float32's smallest subnormal is 1.4e-45).
RTOL = {np.float64: 1e-12, np.float32: 8 * float(np.finfo(np.float32).eps)}
ATOL = {np.float64: 1e-300, np.float32: 1e-44}
DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize(
    "dtype,logit", [(d, z) for d in DTYPES for z in LOGITS[d]], ids=lambda x: str(x)
)
@pytest.mark.parametrize("target", [0.0, 1.0, 0.25])
def test_sigmoid_bce_at_extreme_logits_matches_mpmath(dtype, logit, target):
    L = symloss.get("bce_logits")
    # -log(sigmoid(z)) = log1p(exp(-z)): written so that mpmath does not cancel.
    value = reference(
        lambda z, t: t * mpmath.log1p(mpmath.exp(-z)) + (1 - t) * mpmath.log1p(mpmath.exp(z)),
        logit,
        target,
    )
    # sigmoid(z) - t cancels for t = 1 and large z; (1 - t) sigmoid(z) - t sigmoid(-z) does not.
    grad = reference(lambda z, t: (1 - t) * _mp_sigmoid(z) - t * _mp_sigmoid(-z), logit, target)
    z, t = np.array([logit], dtype), np.array([target], dtype)
    v = L(z, t)
    g = L.grad(z, t)
    assert g.dtype == dtype and np.asarray(v).dtype == dtype
    assert np.isfinite(v) and np.isfinite(g[0])
    assert float(v) == pytest.approx(value, rel=RTOL[dtype], abs=ATOL[dtype])
    assert float(g[0]) == pytest.approx(grad, rel=RTOL[dtype], abs=ATOL[dtype])


@pytest.mark.parametrize(
    "dtype,scale",
    [(np.float64, s) for s in (1.0, 30.0, 400.0, 1e4)]
    + [(np.float32, s) for s in (1.0, 30.0, 80.0, 1e4)],
    ids=lambda x: str(x),
)
def test_softmax_ce_at_extreme_logits_matches_mpmath(dtype, scale):
    L = symloss.get("cce_logits")
    logits = (np.array([[1.0, -1.0, 0.5], [-0.3, 0.2, 1.0]]) * scale).astype(dtype)
    target = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]]).astype(dtype)
    # The reference at the inputs as given (float32's rounding of 0.2 and of -0.3 * 80
    # is part of the input, not an error of the loss).
    rows = [[float(x) for x in row] for row in logits]
    trows = [[float(x) for x in row] for row in target]

    def lse(*zs):
        return mpmath.log(mpmath.fsum(mpmath.exp(x) for x in zs))

    def row_value(*args):
        zs, ts = args[:3], args[3:]
        return -mpmath.fsum(tj * (x - lse(*zs)) for tj, x in zip(ts, zs))

    total = sum(reference(row_value, *row, *trow) for row, trow in zip(rows, trows))
    grads = [
        [
            reference(lambda *a, c=c: (mpmath.exp(a[c] - lse(*a[:3])) - a[3 + c]) / 2, *row, *trow)
            for c in range(3)
        ]
        for row, trow in zip(rows, trows)
    ]
    v, g = L(logits, target), L.grad(logits, target)
    assert g.dtype == dtype and np.asarray(v).dtype == dtype
    assert float(v) == pytest.approx(total / 2, rel=RTOL[dtype])
    # float32: relative to the largest element (p - t cancels where p is near t)
    atol = ATOL[dtype] if dtype is np.float64 else RTOL[dtype] * np.abs(grads).max()
    np.testing.assert_allclose(g, np.array(grads), rtol=RTOL[dtype], atol=atol)


@pytest.mark.parametrize("target", [0.0, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_at_the_next_float_inside_zero_and_one_matches_mpmath(dtype, target):
    """Predictions nextafter(0, 1) and nextafter(1, 0) of each float type: -log(y) and
    -log(1 - y) stay finite; the gradient (y - t) / (y (1 - y)) is +-inf exactly where
    its true value lies beyond the type's range."""
    L = symloss.get("bce", reduction="sum")
    one, zero = dtype(1), dtype(0)
    y = np.array([np.nextafter(zero, one), np.nextafter(one, zero)], dtype)
    t = np.full(2, target, dtype)
    v, g = L(y, t), L.grad(y, t)
    assert g.dtype == dtype
    yy = [float(x) for x in y]
    want_v = sum(
        reference(lambda a, b: -(b * mpmath.log(a) + (1 - b) * mpmath.log(1 - a)), x, target)
        for x in yy
    )
    assert float(v) == pytest.approx(want_v, rel=RTOL[dtype])
    big = float(np.finfo(dtype).max)
    for got, x in zip(g, yy):
        want = reference(lambda a, b: (a - b) / (a * (1 - a)), x, target)
        if abs(want) > big:
            assert got == np.copysign(np.inf, want)
        else:
            assert float(got) == pytest.approx(want, rel=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_at_zero_and_one_gives_the_limits(dtype):
    L = symloss.get("bce")
    y = np.array([0.0, 1.0], dtype)
    assert L(y, y) == 0.0
    g = L.grad(y, y)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, [0.5, -0.5])
    assert L(np.array([0.0], dtype), np.array([1.0], dtype)) == np.inf  # -log(0): infinite


def test_cce_zero_probability_with_zero_target_contributes_nothing():
    L = symloss.get("cce")
    assert L(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])) == 0.0


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"shape \(3,\) and target shape \(2,\)"):
        symloss.get("bce")(np.full(3, 0.5), np.ones(2))


def test_out_of_domain_prediction_names_loss_and_domain():
    with pytest.raises(
        ValueError,
        match=r"binary_cross_entropy: prediction y\[1\] = 1\.5 is outside the domain \[0, 1\]",
    ):
        symloss.get("bce")(np.array([0.5, 1.5]), np.array([0.0, 1.0]))


@pytest.mark.parametrize("block", [4, 131072])
def test_input_errors_do_not_depend_on_the_block_size(configure, block):
    """Blocks are checked as they run; the error reported is the whole input's: the
    prediction's domain before the target's, domains before row sums, each at its first
    element (here a bad target comes early and a bad prediction late)."""

    configure(block_elements=block)
    p, t = np.full(20, 0.5), np.full(20, 0.5)
    p[15], t[1] = 2.0, -1.0
    L = symloss.get("bce")
    for call in (L, L.grad, L.value_and_grad, L.hess):
        with pytest.raises(ValueError, match=r"prediction y\[15\] = 2\.0 is outside"):
            call(p, t)
    y, tt = np.full((10, 3), 1 / 3), np.full((10, 3), 1 / 3)
    tt[7], y[9, 2] = [1.0, 1.0, 0.0], 5.0
    with pytest.raises(ValueError, match=r"prediction y\[9, 2\] = 5\.0 is outside"):
        symloss.get("cce")(y, tt)
    y[9, 2] = 1 / 3
    with pytest.raises(ValueError, match="target row 7 sums to 2.0"):
        symloss.get("cce")(y, tt)
    # An element-wise loss given a matrix names the element in the caller's shape.
    p2 = np.full((5, 4), 0.5)
    p2[3, 1] = -0.5
    with pytest.raises(ValueError, match=r"prediction y\[3, 1\] = -0\.5"):
        L(p2, np.full((5, 4), 0.5))


def test_non_finite_logits_are_refused_not_nan():
    with pytest.raises(ValueError, match="logit z"):
        symloss.get("bce_logits")(np.array([-np.inf]), np.array([0.0]))
    with pytest.raises(ValueError, match="logit z"):
        symloss.get("bce_logits")(np.array([np.nan]), np.array([0.0]))


def test_target_rows_must_sum_to_one_for_one_hot_losses():
    with pytest.raises(ValueError, match="target row 1 sums to 0.9"):
        symloss.get("cce_logits")(np.zeros((2, 3)), np.array([[0, 1, 0], [0.5, 0.4, 0]]))


def test_binary_target_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match=r"target t\[0\] = 2\.0"):
        symloss.get("bce")(np.array([0.5]), np.array([2.0]))


def test_wrong_rank_is_refused():
    with pytest.raises(ValueError, match="must have 2 dimension"):
        symloss.get("cce_logits")(np.zeros(3), np.zeros(3))


def test_kernels_are_vectorised_over_large_inputs():
    # 10^6 samples through the same compiled kernel; a Python loop would be visible as
    # a generator in the lambdified source, which must not contain one.
    L = symloss.get("bce_logits")
    rng = np.random.default_rng(1)
    zz = rng.normal(size=10**6) * 50
    tt = (rng.random(10**6) < 0.5).astype(float)
    expected = np.mean(np.logaddexp(0, zz) - tt * zz)
    assert L(zz, tt) == pytest.approx(expected, rel=1e-12)
    import inspect

    for kernel in (evaluate.of(L).value, evaluate.of(L).gradient):
        assert "for " not in inspect.getsource(kernel._fn)


def test_grad_writes_into_out_buffers():
    L = symloss.get("cce_logits")
    rng = np.random.default_rng(3)
    z, t = rng.normal(size=(50, 4)), np.eye(4)[rng.integers(0, 4, 50)]
    buf = np.full(z.shape, np.nan)
    assert L.grad(z, t, out=buf) is buf
    np.testing.assert_array_equal(buf, L.grad(z, t))
    buf2 = np.full(z.shape, np.nan)
    value, g = L.value_and_grad(z, t, out=buf2)
    assert g is buf2 and value == L(z, t)
    np.testing.assert_array_equal(buf2, buf)
    M = symloss.get("mse")  # element-wise: any shape, out of the same shape
    y2 = rng.normal(size=(3, 5))
    out = np.empty((3, 5))
    np.testing.assert_array_equal(M.grad(y2, 0 * y2, out=out), 2 * y2 / 15)
    with pytest.raises(ValueError, match="out has shape"):
        L.grad(z, t, out=np.empty((4, 50)))
    with pytest.raises(TypeError, match="float64"):
        L.grad(z, t, out=np.empty(z.shape, dtype=np.float32))


STABLE_TERMS = [L for L in symloss.catalog() if L.stable_term is not None]


def test_some_losses_keep_a_stable_term():
    assert {"dice", "tversky", "tweedie"} <= {L.name for L in STABLE_TERMS}


def _forms(expr):
    """The branches of a Piecewise on hyperparameters only (tweedie's p < 2, p > 2), else *expr*."""
    if isinstance(expr, sp.Piecewise) and not any(c.has(sp.Indexed) for _, c in expr.args):
        return [e for e, _ in expr.args]
    return [expr]


def _same_elementwise(loss, a, b) -> bool:
    """``a == b`` for summands of one element each, the elements as symbols.

    ``equivalent`` treats a function of an element (tweedie's ``expm1(s (log t - log y))``)
    as an opaque atom.  An element whose domain lies in [0, oo) is a positive symbol
    (at 0 the forms agree as limits; tests/test_probabilistic.py checks t = 0).
    """
    sub = {}
    for e in (a - b).atoms(sp.Indexed):
        domain = loss.domains.get(str(e.base.label))
        nonnegative = domain is not None and bool(domain.set.inf >= 0)
        sub[e] = sp.Symbol(f"{e.base.label}_e", real=True, positive=nonnegative or None)
    return sp.simplify((a - b).xreplace(sub).rewrite(sp.exp)) == 0


@pytest.mark.parametrize("loss", STABLE_TERMS, ids=lambda L: L.name)
def test_stable_term_equals_the_definition(loss):
    """Symbolic proof that the kernels' form equals the printed definition.

    A stable term that is a Piecewise on hyperparameters is proven branch by branch: each
    branch equals the definition for every value (the condition only picks the branch
    that float64 evaluates best).
    """
    import dataclasses

    from symloss.latex_in.convert import equivalent

    for form in _forms(loss.stable_term):
        if loss.separable and not form.has(sp.Sum):
            assert _same_elementwise(loss, form, loss.term.doit()), form
        else:
            as_stable = dataclasses.replace(loss, term=form, stable_term=None)
            assert equivalent(as_stable, loss, seconds=30), form
    # The kernels of the definition itself give the same numbers at ordinary points.
    plain = dataclasses.replace(loss, stable_term=None)
    rng = np.random.default_rng(5)
    pred, target = rng.random((4, 3)), np.eye(3)[rng.integers(0, 3, 4)]
    assert loss(pred, target) == pytest.approx(plain(pred, target), rel=1e-13)
    np.testing.assert_allclose(loss.grad(pred, target), plain.grad(pred, target), rtol=1e-12)


@pytest.mark.parametrize("loss", STABLE_TERMS, ids=lambda L: L.name)
def test_stable_forms_of_the_kernel_terms_equal_them(loss):
    """As the registry-wide proof, for the expressions a ``stable_term`` gives the kernels."""
    targets = frozenset({loss.target})
    for expr in (
        derivatives.of(loss).kernel_summand,
        derivatives.of(loss).kernel_gradient[0],
        derivatives.of(loss).kernel_hessian,
    ):
        stable = stabilize(expr, targets)
        diff = sp.expand_log(sp.powsimp(_unstabilize(stable) - _naive(expr)), force=True)
        assert sp.simplify(diff) == 0, (loss.name, stable)

"""The compiled C backend (symloss/_compiled.py) against lambdify's kernels and NumPy.

Every test here runs with ``backend_c`` (conftest.py): each kernel evaluation goes
through the generated C loop.  References are lambdify's kernels (the same
expressions printed as nested NumPy calls) and NumPy's own functions; the
registry-wide mpmath comparison (tests/test_edges_mpmath.py) also runs on this
backend.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import sympy as sp
from conftest import inputs, registry_params
from hypothesis import given, settings
from hypothesis import strategies as st
from shared import ROOT, SPECIALS, _kernels, _same, check_against_lambdify

sys.path.insert(0, str(ROOT / "benchmarks"))
from catalog import make_inputs  # noqa: E402  (inputs inside each loss's domains)

import symloss
from symloss.numeric import compiled as _compiled
from symloss.numeric import config, evaluate, ops
from symloss.numeric import fused as _fused
from symloss.numeric import kernel as _numeric
from symloss.numeric.stabilize import expand_kernel_functions
from symloss.symbols import relu, rowmax, step, xdivy, xlogy

pytestmark = pytest.mark.usefixtures("backend_c")

x, y, z = sp.symbols("x y z", real=True)


def _compile(expr, *symbols):
    """A NumPy-in, NumPy-out function running *expr*'s compiled loop."""
    kernel = _compiled.CompiledKernel(
        *_fused.statements(*sp.cse([expr]), list(symbols)), len(symbols)
    )
    return lambda *values: np.array(kernel(*values)[0], copy=True)


@registry_params()
def test_every_kernel_of_the_catalog_has_a_c_form(loss):
    for what, kernel in _kernels(loss).items():
        assert kernel._compiled is not None, f"{loss.name}: the {what} kernel has no C form"


@registry_params()
@settings(max_examples=10)
@given(data=st.data())
def test_compiled_kernels_equal_lambdify_kernels(loss, data):
    check_against_lambdify(loss, data.draw(inputs(loss)), "compiled")


@registry_params()
def test_public_calls_agree_with_the_numpy_backend_on_many_blocks(loss, configure):
    """value_and_grad, value, grad over several blocks on worker threads: the C
    backend's results are the NumPy backend's to 1e-12."""
    configure(block_elements=64)
    pred, target, kw = make_inputs(loss, 300, 4, seed=7)  # benchmarks/catalog.py's draw
    got_v, got_g = loss.value_and_grad(pred, target, **kw)
    got_g = got_g.copy()
    got_h = loss.hess(pred, target, **kw)
    configure(backend="fused")
    want_v, want_g = loss.value_and_grad(pred, target, **kw)
    want_h = loss.hess(pred, target, **kw)
    assert _same(got_v, want_v) and _same(got_g, want_g) and _same(got_h, want_h)


@pytest.mark.parametrize(
    "expr, reference",
    [
        (sp.sign(x), np.sign),
        (sp.Abs(x), np.abs),
        (relu(x), lambda v: np.maximum(v, 0.0)),
        (step(x), lambda v: np.where(v > 0, 1.0, 0.0)),
        (
            sp.Piecewise((x, x < 0), (2 * x, x < 1), (-x, True)),
            lambda v: np.select([v < 0, v < 1], [v, 2 * v], -v),
        ),
        (sp.Piecewise((x, x > 0)), lambda v: np.where(v > 0, v, np.nan)),
        (sp.Heaviside(x), lambda v: np.heaviside(v, 0.5)),
        (sp.Heaviside(x, sp.nan), lambda v: np.heaviside(v, np.nan)),
        (sp.exp(x), np.exp),
        (sp.log(x), np.log),
        (sp.codegen.cfunctions.log1p(x), np.log1p),
        (sp.codegen.cfunctions.expm1(x), np.expm1),
        (sp.tanh(x), np.tanh),
        (sp.atan(x), np.arctan),
        (sp.cosh(x), np.cosh),
        (
            1 / x**2 - 3 * x**3 + sp.sqrt(sp.Abs(x)),
            lambda v: 1 / v**2 - 3 * v**3 + np.sqrt(np.abs(v)),
        ),
        (x ** sp.Rational(5, 2), lambda v: v**2.5),
    ],
    ids=lambda v: str(v) if isinstance(v, sp.Basic) else "",
)
def test_c_code_matches_numpy_at_special_values(expr, reference):
    """libmvec's functions are within 4 ulp of NumPy's; inf, NaN and the sign of zero
    must match exactly."""
    values = np.concatenate([SPECIALS, np.linspace(-20, 20, 41), [1e-300, -1e-300, 700.0]])
    with np.errstate(all="ignore"):
        got, want = _compile(expr, x)(values.copy()), reference(values.copy())
    np.testing.assert_allclose(got, want, rtol=4e-15, atol=0)
    numbers = ~np.isnan(want)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))


def test_maximum_minimum_and_selects_are_numpys_bit_for_bit():
    a, b = (v.ravel() for v in np.meshgrid(SPECIALS, SPECIALS))
    for fn, reference in ((ops.maximum, np.maximum), (ops.minimum, np.minimum)):
        got = _compile(fn(x, y), x, y)(a, b)
        assert np.array_equal(got.view(np.int64), reference(a, b).view(np.int64)), fn
    cond = np.where(np.arange(a.size) % 3 == 0, 1.0, -1.0)
    got = _compile(sp.Piecewise((x, z > 0), (y, True)), x, y, z)(a, b, cond)
    assert np.array_equal(got.view(np.int64), np.where(cond > 0, a, b).view(np.int64))


def test_xlogy_and_xdivy_are_zero_where_the_weight_is_zero():
    t = np.array([0.0, 0.0, 0.5, 1.0])
    p = np.array([0.0, 2.0, 0.0, 0.25])
    with np.errstate(all="ignore"):
        assert np.array_equal(_compile(xlogy(x, y), x, y)(t, p), [0.0, 0.0, -np.inf, np.log(0.25)])
        assert np.array_equal(_compile(xdivy(x, y), x, y)(t, p), [0.0, 0.0, np.inf, 4.0])


@pytest.mark.parametrize("e", [-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 8.0, 2.5, 9.0, -2.0])
def test_exponent_parameters_compiled_in_keep_pows_values(e):
    """x**p with p a parameter: small integers and +-1/2 become products, reciprocals
    and square roots; the values (special ones included) stay numpy.power's."""
    g = sp.Symbol("g", real=True)
    fn = _compile(x**g * (1 + x ** (g - 1)), x, g)
    values = np.concatenate([SPECIALS, np.linspace(-3, 3, 13), [1e-3, 1e3]])
    with np.errstate(all="ignore"):
        want = np.power(values, e) * (1 + np.power(values, e - 1))
    got = fn(values, np.float64(e))
    np.testing.assert_allclose(got, want, rtol=2e-15 * (1 + abs(e)), atol=0)
    numbers = ~np.isnan(want)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))


def test_row_statistics_are_read_once_per_row():
    """Leaves of shape (n, 1) are row values; outputs that only read them are (n, 1)."""
    fn = _compiled.CompiledKernel(
        *_fused.statements(*sp.cse([x * sp.exp(y) - z, sp.exp(y) + x]), [x, y, z]), 3
    )
    rows = np.array([[1.0], [2.0]])
    grid = np.arange(6.0).reshape(2, 3)
    full, per_row = fn(np.float64(0.5), rows, grid)
    assert np.allclose(full, 0.5 * np.exp(rows) - grid, rtol=1e-15)
    assert full.shape == (2, 3) and per_row.shape == (2, 1)
    assert np.allclose(per_row, np.exp(rows) + 0.5, rtol=1e-15)
    # A (3,) leaf broadcast over rows, and a strided view, are copied densely first.
    got = _compile(x * y, x, y)(grid[:, ::2], np.array([10.0, 20.0]))
    assert np.array_equal(got, grid[:, ::2] * np.array([10.0, 20.0]))


def test_row_reductions_and_softmax_pieces_match_numpy():
    """The C row helpers: maxima (NaN propagates), sums (left to right), and the
    softmax pieces exp(z - max) and their sums, rows of -inf and NaN included."""
    rng = np.random.default_rng(3)
    z = rng.normal(scale=30, size=(50, 7))
    z[3] = -np.inf
    z[4, 2] = np.nan
    z[5, :] = [np.inf] + [0.0] * 6
    with np.errstate(all="ignore"):
        top = np.max(z, axis=-1, keepdims=True)
        e = np.exp(z - top)
        total = np.sum(e, axis=-1, keepdims=True)
        want = (top, e, total, np.max(z, axis=-1), np.sum(z, axis=-1), e / total)
    got = (
        *_compiled.row_stats(z),
        _compiled.row_reduce(np.maximum, z),
        _compiled.row_reduce(np.add, z),
        _compiled.row_divide(e, total),
    )
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-14, atol=0, equal_nan=True)
    ties = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [np.nan, 1.0, 0.0, 0.0]])
    top = np.max(ties, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        share = (ties == top) / np.sum(ties == top, axis=-1, keepdims=True)
    np.testing.assert_array_equal(_compiled.row_share(ties, top), share)  # 1/2, 1/4, NaN
    # Not for strided, other than float64 or float32 (tests/numeric/test_float32.py),
    # or one-column input: the caller uses NumPy's.
    assert _compiled.row_reduce(np.add, z[:, ::2]) is None
    assert _compiled.row_stats(z.astype(np.float16)) is None
    assert _compiled.row_reduce(np.add, z[:, :1]) is None


def test_row_sums_are_accumulated_in_the_loop():
    """summed=: the sum over the last axis in one pass, per-element values and row
    values (counted m times) alike; the sums of cosine-like losses use it."""
    kernel = _compiled.CompiledKernel(
        *_fused.statements(*sp.cse([x * sp.exp(y) - z, sp.exp(y) + x]), [x, y, z]), 3
    )
    rng = np.random.default_rng(5)
    rows, grid = rng.normal(size=(40, 1)), rng.normal(size=(40, 9))
    full, per_row = kernel(np.float64(0.5), rows, grid, summed=(0, 1), length=9)
    np.testing.assert_allclose(full, np.sum(0.5 * np.exp(rows) - grid, axis=-1), rtol=1e-13)
    np.testing.assert_allclose(per_row, 9 * (np.exp(rows[:, 0]) + 0.5), rtol=1e-15)
    assert full.shape == per_row.shape == (40,)
    assert kernel(np.float64(0.5), rows, grid, summed=(0, 1), length=10) is None  # not that axis
    cosine = symloss.get("cosine_distance")
    y_, t_ = rng.normal(size=(3000, 30)), rng.normal(size=(3000, 30))
    got = cosine.value_and_grad(y_, t_)
    want = np.mean(1 - np.sum(y_ * t_, 1) / np.linalg.norm(y_, axis=1) / np.linalg.norm(t_, axis=1))
    assert got[0] == pytest.approx(want, rel=1e-13)


def test_outputs_divided_into_a_given_array_are_numpys_division():
    """into={j: (array, d)}: output j divided by d as NumPy's divide would (not times
    1/d), written into array and returned as it; an array that overlaps an input, or
    of another shape, is left to the caller."""
    kernel = _compiled.CompiledKernel(
        *_fused.statements(*sp.cse([sp.exp(x) * y, x - y]), [x, y]), 2
    )
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(50, 7)), rng.normal(size=(50, 1))
    plain = [np.array(o, copy=True) for o in kernel(a, b)]
    dest = np.empty((50, 7))
    got = kernel(a, b, into={1: (dest, 3.0)})
    assert got[1] is dest
    assert np.array_equal(dest, np.divide(plain[1], 3.0))  # bit for bit
    assert np.array_equal(got[0], plain[0])
    both = kernel(a, b, into={0: (np.empty((50, 7)), 0.1)}, summed=(1,), length=7)
    # (exp may be taken by libmvec's vector or scalar form here: within 4 ulp)
    np.testing.assert_allclose(both[0], np.divide(plain[0], 0.1), rtol=1e-14)
    np.testing.assert_allclose(both[1], plain[1].sum(axis=1), rtol=1e-14)
    overlapping = kernel(a, b, into={0: (a, 2.0)})
    assert overlapping[0] is not a and np.array_equal(overlapping[0], plain[0])
    assert kernel(a, b, into={0: (np.empty((50, 1)), 2.0)})[0].shape == (50, 7)


@pytest.mark.parametrize(
    "name, options",
    [
        ("multi_margin", {}),
        ("softmax_cross_entropy", {"ignore_index": 2}),
        ("cosine_distance", {}),
        ("sigmoid_binary_cross_entropy", {}),
        ("huber", {}),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weights_reductions_and_out_agree_with_the_numpy_backend(
    name, options, reduction, configure
):
    """The paths that scale the gradient after the loop (sample weights) or keep each
    row's value (reduction="none"), and an out= that is the prediction itself (the
    loop does not write into an array it reads): the C backend's results are the
    NumPy backend's to 1e-12, over several blocks on worker threads."""
    configure(block_elements=64)
    loss = symloss.get(name, reduction=reduction, **options)
    pred, target, kw = make_inputs(symloss.get(name), 300, 4, seed=3)
    if options:  # integer labels, some of them ignored
        target = np.random.default_rng(3).integers(0, 4, len(pred))
    weight = np.random.default_rng(4).uniform(0.1, 2.0, len(pred))
    results = {}
    for backend in ("c", "fused"):
        configure(backend=backend)
        value, grad = loss.value_and_grad(pred, target, weight=weight, **kw)
        aliased = pred.copy()
        loss.grad(aliased, target, weight=weight, out=aliased, **kw)
        results[backend] = value, grad.copy(), aliased, loss.hess(pred, target, **kw)
    for got, want in zip(results["c"], results["fused"]):
        assert _same(got, want)
    assert _same(results["c"][2], results["c"][1])  # out=pred gives the same gradient


def _row_layout():
    i, j, k, l_ = sp.symbols("i j k l", integer=True)
    n, m = sp.symbols("n m", integer=True, positive=True)
    return (i, j, k, l_), ((i, n), (j, m)), (n, m)


def test_row_statistics_nest_and_are_shared_between_outputs():
    """The multi-class margin's value and gradient (hand derivation): S_i = sum_k
    t_ik y_ik, once for both, then sum_l [D + y_il - S_i > 0] t_il and the same sum
    without t, each computed after S_i, in the loop."""
    loss = symloss.get("multi_margin")
    kernel = evaluate.of(loss).fused
    exprs = [expand_kernel_functions(e) for e in kernel.expr]
    stats, _ = _numeric._row_form(exprs, kernel.layout)
    assert [op for *_, op in stats] == ["sum"] * 3
    (s, first, _), rest = stats[0], stats[1:]
    y_, t_ = loss.pred, loss.target
    i, j = (v for v, _ in kernel.layout)
    assert first == t_[i, j] * y_[i, j]
    assert all(s in body.free_symbols for _, body, _ in rest)
    assert {t_[i, j] in body.atoms(sp.Indexed) for _, body, _ in rest} == {True, False}
    assert kernel._row_program is not None


def test_row_maxima_and_sums_in_the_loop_match_numpy():
    """A softmax written with a row max and a nested row sum, computed in the loop:
    NumPy's values, with inf, NaN and rows of -0.0 among them."""
    (i, j, k, l_), layout, (n, m) = _row_layout()
    z = sp.IndexedBase("z")
    top = rowmax(z[i, l_], (l_, 1, m))
    expr = sp.exp(z[i, j] - top) / sp.Sum(sp.exp(z[i, k] - rowmax(z[i, l_], (l_, 1, m))), (k, 1, m))
    kernel = _numeric.Kernel((expr, top), layout)  # (a value per element, one per row)
    assert kernel._row_program is not None
    rng = np.random.default_rng(2)
    values = rng.normal(size=(64, 9)) * 30
    values[1, 3], values[2, 0], values[3, :] = np.inf, np.nan, -0.0
    values[4, :] = -np.inf
    got_p, got_top = (np.array(a) for a in kernel.evaluate({"z": values}, {n: 64, m: 9}))
    want_top = values.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        e = np.exp(values - want_top)
        want_p = e / e.sum(axis=1, keepdims=True)
    assert _same(got_p, want_p) and _same(got_top, want_top) and got_top.shape == (64, 1)


def test_a_sum_that_varies_along_the_row_stays_out_of_the_loop():
    """sum_k y_ik y_ij is a value per element, not a row statistic: no row program,
    and the kernel still computes it."""
    (i, j, k, _), layout, (n, m) = _row_layout()
    y_ = sp.IndexedBase("y")
    kernel = _numeric.Kernel(sp.Sum(y_[i, k] * y_[i, j] ** 2, (k, 1, m)), layout)
    assert kernel._row_program is None
    v = np.random.default_rng(1).normal(size=(20, 5))
    got = kernel.evaluate({"y": v}, {n: 20, m: 5})
    np.testing.assert_allclose(got, v.sum(axis=1, keepdims=True) * v**2, rtol=1e-14)


def test_tied_maxima_share_the_gradient_in_the_loop(monkeypatch):
    """Categorical hinge with tied negatives (Keras's max, split as tf.reduce_max's
    gradient): 1/c at each of the c tied classes, from the loop as from NumPy."""
    loss = symloss.get("categorical_hinge", reduction="sum")
    y_ = np.tile([[0.5, 0.2, 0.5, 0.5, -1.0]], (30_000, 1))  # three tied at 0.5
    t_ = np.tile([[0.0, 1.0, 0.0, 0.0, 0.0]], (30_000, 1))
    got = loss.grad(y_, t_)
    want = np.array([1 / 3, -1.0, 1 / 3, 1 / 3, 0.0])  # by hand: neg - pos + 1 = 1.3 > 0
    assert np.allclose(got, want, rtol=1e-15, atol=0)


@pytest.mark.parametrize("m", [7, 8, 10, 32, 33])  # row lengths 8 to 32 are compiled in
def test_row_lengths_compiled_in_or_not_give_the_same_values(m):
    """Per-element outputs, row sums and values constant along the row (counted m
    times) on both sides of the bounds of the compiled-in row length."""
    kernel = _compiled.CompiledKernel(
        *_fused.statements(*sp.cse([x * sp.exp(y) - z, sp.exp(y) + x]), [x, y, z]), 3
    )
    rng = np.random.default_rng(m)
    rows, grid = rng.normal(size=(50, 1)), rng.normal(size=(50, m))
    full, per_row = (np.array(a) for a in kernel(np.float64(0.5), rows, grid))
    np.testing.assert_allclose(full, 0.5 * np.exp(rows) - grid, rtol=1e-14)
    np.testing.assert_allclose(per_row, np.exp(rows) + 0.5, rtol=1e-14)
    sums = kernel(np.float64(0.5), rows, grid, summed=(0, 1), length=m)
    np.testing.assert_allclose(sums[0], np.sum(0.5 * np.exp(rows) - grid, axis=-1), rtol=1e-13)
    np.testing.assert_allclose(sums[1], m * (np.exp(rows[:, 0]) + 0.5), rtol=1e-14)


def _custom(name, term, indices, element_indices=None, reduction="sum"):
    y_, t_ = sp.IndexedBase("y"), sp.IndexedBase("t")
    return symloss.Loss(
        name=name,
        title=name,
        term=term(y_, t_),
        scale=sp.S.One,
        indices=indices,
        element_indices=element_indices,
        pred=y_,
        target=t_,
        reduction=reduction,
    )


@pytest.mark.parametrize("backend", ["c", "fused"])
def test_values_over_three_axes(backend, configure):
    """A loss summed over three axes, and one whose value is per (i, j) over inputs
    with a third axis: value_and_grad's value is the sum of squares (by hand)."""
    configure(backend=backend)
    i, j, k = sp.symbols("i j k", integer=True)
    n, m, K = sp.symbols("n m K", integer=True, positive=True)
    three = _custom(
        "sse3", lambda y_, t_: (y_[i, j, k] - t_[i, j, k]) ** 2, ((i, n), (j, m), (k, K))
    )
    pixel = _custom(
        "pix",
        lambda y_, t_: sp.Sum((y_[i, j, k] - t_[i, j, k]) ** 2, (k, 1, K)),
        ((i, n), (j, m)),
        ((i, n), (j, m), (k, K)),
    )
    p_, t_ = np.random.default_rng(0).normal(size=(2, 6, 3, 4))
    want = float(np.sum((p_ - t_) ** 2))
    for loss in (three, pixel):
        assert loss(p_, t_) == pytest.approx(want, rel=1e-14)
        assert loss.value_and_grad(p_, t_)[0] == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("m", [4, 7, 10, 13])  # m mod 8 from 4 to 7 once made libm differ
def test_argmax_shares_of_libm_values_find_their_maximum(m):
    """d/dy max_l exp(y_il) is exp(y_ij) at the row's maximum (by hand): the share
    must see the same exp values as the maximum (libm's vector and scalar forms may
    differ by an ulp, so such shares are not computed in the loop)."""
    i, j, l_ = sp.symbols("i j l", integer=True)
    n, m_ = sp.symbols("n m", integer=True, positive=True)
    loss = _custom(
        "maxexp",
        lambda y_, t_: rowmax(sp.exp(y_[i, l_]), (l_, 1, m_)),
        ((i, n),),
        ((i, n), (j, m_)),
    )
    y_ = np.random.default_rng(13).normal(size=(20_000, m))
    got = loss.grad(y_, 0 * y_)
    want = np.where(y_ == y_.max(axis=1, keepdims=True), np.exp(y_), 0.0)
    np.testing.assert_allclose(got, want, rtol=4e-15, atol=0)


def test_row_statistics_need_the_row_axis_in_the_inputs():
    """sum_k y_i over k = 1..m is m y_i even when no input has the column axis; a row
    statistic may also be an exponent."""
    (i, j, k, _), layout, (n, m) = _row_layout()
    y_, t_ = sp.IndexedBase("y"), sp.IndexedBase("t")
    v = np.random.default_rng(3).uniform(0.5, 2.0, size=(40, 6))
    counted = _numeric.Kernel(y_[i] * sp.Sum(y_[i], (k, 1, m)) + sp.Sum(1, (k, 1, m)), layout)
    got = counted.evaluate({"y": v[:, 0]}, {n: 40, m: 5})
    np.testing.assert_allclose(np.ravel(got), 5 * v[:, 0] ** 2 + 5, rtol=1e-15)
    power = _numeric.Kernel(y_[i, j] ** sp.Sum(t_[i, k], (k, 1, m)), layout)
    got = power.evaluate({"y": v, "t": v / 10}, {n: 40, m: 6})
    np.testing.assert_allclose(got, v ** (v / 10).sum(axis=1, keepdims=True), rtol=1e-14)


def test_several_outputs_into_given_arrays():
    """Each output gets its own divisor, whatever the order they are given in, and two
    outputs are never written into one array (the loop's pointers are restrict)."""
    kernel = _compiled.CompiledKernel(*_fused.statements(*sp.cse([x + y, x - y]), [x, y]), 2)
    a, b = np.full((30, 8), 6.0), np.zeros((30, 8))
    d0, d1 = np.empty((30, 8)), np.empty((30, 8))
    kernel(a, b, into={1: (d1, 3.0), 0: (d0, 2.0)})
    assert (d0 == 3.0).all() and (d1 == 2.0).all()
    shared = np.empty((30, 8))
    first, second = kernel(a, b, into={0: (shared, 2.0), 1: (shared, 3.0)})
    assert first is shared and second is not shared and (second == 6.0).all()


def test_per_sample_values_have_no_negative_zero():
    """reduction="none" at m = 1: every sample's loss is 0, and +0.0 as NumPy's sum gives."""
    loss = symloss.get("softmax_cross_entropy", reduction="none")
    per = loss.value_and_grad(np.zeros((70_000, 1)), np.ones((70_000, 1)))[0]
    assert (per == 0).all() and not np.signbit(per).any()


def test_min_max_in_one_pass():
    """The domain checks' minimum and maximum: NumPy's, and NaN for both as soon as a
    value is NaN or infinite (infinite bounds are open, so both are violations)."""
    rng = np.random.default_rng(8)
    for v in (rng.normal(size=1001), np.arange(17.0), np.array([3.5])):
        assert _compiled.min_max(v) == (v.min(), v.max())
    for bad in (np.nan, np.inf, -np.inf):
        v = rng.normal(size=300)
        v[123] = bad
        assert all(np.isnan(_compiled.min_max(v)))
    assert _compiled.min_max(np.ones((4, 4))[:, 0]) is None  # strided: NumPy's min and max
    assert _compiled.min_max(np.empty(0)) is None


DBL_MAX = np.finfo(np.float64).max


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_loop_finds_its_inputs_extremes_as_it_reads_them(dtype):
    """Kernel.evaluate(bounds=...): the minimum and maximum of each input read as it
    is, from the same pass, equal to NumPy's; both NaN at a NaN or an infinity, in
    any lane and any row; an array the kernel does not read stays None."""
    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    Y, T = sp.IndexedBase("y"), sp.IndexedBase("t")
    kernel = _numeric.Kernel((Y[i] - T[i]) ** 2, [(i, n)])
    rng = np.random.default_rng(3)
    for size in (1, 17, 1000, 5000):
        y, t = rng.normal(size=size).astype(dtype), rng.normal(size=size).astype(dtype)
        found = {"y": None, "t": None, "w": None}
        out = kernel.evaluate({"y": y, "t": t}, {n: size}, bounds=found)
        np.testing.assert_array_equal(out, (y - t) ** 2)
        assert found["y"] == (y.min(), y.max()) and found["t"] == (t.min(), t.max())
        assert found["w"] is None
        # "finite": only whether the values are finite (a whole-line domain)
        found = {"y": "finite", "t": None}
        kernel.evaluate({"y": y, "t": t}, {n: size}, bounds=found)
        assert found == {"y": (-DBL_MAX, DBL_MAX), "t": (t.min(), t.max())}
        for bad in (np.nan, np.inf, -np.inf):
            v = t.copy()
            v[size // 2] = bad
            found = {"y": None, "t": None}
            kernel.evaluate({"y": y, "t": v}, {n: size}, bounds=found)
            assert found["y"] == (y.min(), y.max()) and all(np.isnan(found["t"]))
            found = {"y": "finite", "t": "finite"}  # one probe for both: both NaN
            kernel.evaluate({"y": v, "t": t}, {n: size}, bounds=found)
            assert all(np.isnan(found["y"])) and all(np.isnan(found["t"]))
            found = {"y": "finite", "t": None}
            kernel.evaluate({"y": v, "t": t}, {n: size}, bounds=found)
            assert all(np.isnan(found["y"])) and found["t"] == (t.min(), t.max())
    with config.configured(backend="fused"):  # no loop: nothing is checked
        found = {"y": "finite", "t": None}
        kernel.evaluate({"y": y, "t": t}, {n: size}, bounds=found)
        assert found == {"y": None, "t": None}
    # Rows: the extremes are over every row, from the row program's loop too.
    (i, j, k, _), layout, (n, m) = _row_layout()
    Z = sp.IndexedBase("z")
    rows = _numeric.Kernel(Z[i, j] - sp.Sum(Z[i, k] ** 2, (k, 1, m)), layout)
    assert rows._row_program is not None
    zz = rng.normal(size=(300, 10)).astype(dtype)
    found = {"z": None}
    rows.evaluate({"z": zz}, {n: 300, m: 10}, bounds=found)
    assert found["z"] == (zz.min(), zz.max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("backend", ["c", "fused"])
def test_an_element_wise_total_is_added_in_double_in_the_loop(configure, dtype, backend):
    """A large call's value of an element-wise loss is added up in the loop, in double
    (never a float32 sum): 1 + 16383 * 2^-26, where float32 sums lose every 2^-26."""
    configure(backend=backend, block_elements=4096)
    y = np.zeros(2**14, dtype)
    t = np.full(2**14, 2.0**-13, dtype)
    t[0] = 1.0
    L = symloss.get("mse", reduction="sum")
    want = 1 + 16383 * 2.0**-26
    for value in (L(y, t), L.value_and_grad(y, t)[0]):
        assert value == (want if dtype == np.float64 else np.float32(want))
    mean = symloss.get("mse")
    assert mean(y, t) == (want / 2**14 if dtype == np.float64 else np.float32(want / 2**14))


def _checks_outside_the_loop(monkeypatch):
    """Count the domain checks that read an array by themselves."""
    from symloss.numeric import checks

    calls = []
    real = checks._violated
    monkeypatch.setattr(checks, "_violated", lambda d, a: calls.append(a.size) or real(d, a))
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", ["mse", "huber", "bce_logits", "bce"])
def test_domains_checked_in_the_loop_raise_the_same_errors(monkeypatch, configure, name, dtype):
    """Interval domains are checked by the extremes the kernels' loop finds (no pass of
    their own: the checks outside the loop read nothing on valid inputs), and bad
    inputs raise the error the separate checks raise, naming the first offending
    element of the whole input, whichever block it is in."""
    configure(block_elements=4096, threads=2)
    L = symloss.get(name)
    n = 20000  # more than a small call's elements (the small path checks apart)
    rng = np.random.default_rng(2)
    unit = name == "bce"
    y = (rng.uniform(0.1, 0.9, n) if unit else rng.normal(size=n)).astype(dtype)
    t = (rng.random(n) < 0.5).astype(dtype)
    calls = _checks_outside_the_loop(monkeypatch)
    for call in (L, L.grad, L.value_and_grad):
        call(y, t)
    assert calls == []
    # A whole-line domain asks the loop for finite values only; [0, 1] for extremes.
    asked = {
        k: evaluate._asked(b)
        for k, b in evaluate.prepare(L, y, t, None, {}, True).validate.intervals.items()
    }
    assert asked == (
        {"y": None, "t": None}
        if unit
        else {"y": "finite", "t": "finite"}
        if name != "bce_logits"
        else {"z": "finite", "t": None}
    )
    pred = "prediction y" if name != "bce_logits" else "logit z"
    cases = [(y, 14321, np.nan), (y, 7, np.inf), (t, 19999, -np.inf), (t, 1234, np.nan)]
    cases += [(t, 9000, 1.5)] if name != "mse" and name != "huber" else []
    cases += [(y, 12500, 1.5)] if unit else []
    for arr, where, bad in cases:
        y2, t2 = y.copy(), t.copy()
        (y2 if arr is y else t2)[where] = bad
        configure(backend="fused")  # the checks as they run without the loop
        with pytest.raises(symloss.InputError) as want:
            L(y2, t2)
        assert f"[{where}] = " in str(want.value)
        assert (pred if arr is y else "target") in str(want.value)
        configure(backend="c")
        for call in (L, L.grad, L.value_and_grad):
            with pytest.raises(symloss.InputError) as got:
                call(y2, t2)
            assert str(got.value) == str(want.value)
    # Both bad: the prediction's error, as the separate checks give.
    y2, t2 = y.copy(), t.copy()
    y2[14000], t2[10] = np.nan, np.nan
    with pytest.raises(symloss.InputError, match=rf"{pred}\[14000\] = nan"):
        L.value_and_grad(y2, t2)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.5, 1.5])
def test_domain_errors_are_the_same_on_both_backends(bad, configure):
    """An out-of-domain prediction deep inside a large input: the same message (value
    and index) from the compiled checks as from NumPy's."""
    loss = symloss.get("binary_cross_entropy")
    p_ = np.full(300_000, 0.25)
    p_[234_567] = bad
    messages = []
    for backend in ("c", "fused"):
        configure(backend=backend)
        with pytest.raises(ValueError) as err:
            loss.value_and_grad(p_, np.zeros_like(p_))
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "234567" in messages[0]


def test_row_statistics_under_other_letters_are_not_simplified_away(configure):
    """S_k / S_l is 0/0 where the row's S is 0, max_l - max_k is inf - inf at an
    infinite maximum, log(exp(S)) overflows: as NumPy computes them, not simplified
    to 1, 0 and S because both statistics are equal (a review's repros)."""
    i, j, k, l_ = sp.symbols("i j k l", integer=True)
    n, m = sp.symbols("n m", integer=True, positive=True)
    terms = {
        "ratio": lambda y_, t_: (
            sp.Sum(y_[i, k] * t_[i, k], (k, 1, m)) / sp.Sum(y_[i, l_] * t_[i, l_], (l_, 1, m))
        ),
        "gap": lambda y_, t_: rowmax(y_[i, l_], (l_, 1, m)) - rowmax(y_[i, k], (k, 1, m)),
        "logexp": lambda y_, t_: sp.log(sp.exp(sp.Sum(y_[i, k] * t_[i, k], (k, 1, m)))),
    }
    rows = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [np.inf, 1.0, 2.0], [400.0, 400.0, 1.0]])
    by_hand = {  # per row: 0/0, 6/6, inf/inf, 801/801; 0, 0, inf - inf, 0; 0, 6, inf, inf
        "ratio": [np.nan, 1.0, np.nan, 1.0],
        "gap": [0.0, 0.0, np.nan, 0.0],
        "logexp": [0.0, 6.0, np.inf, np.inf],
    }
    for name, term in terms.items():
        loss = _custom(name, term, ((i, n),), ((i, n), (j, m)), reduction="none")
        results = []
        for backend in ("c", "fused"):
            configure(backend=backend)
            results += [
                loss(rows, np.ones_like(rows)),
                loss.value_and_grad(rows, np.ones_like(rows))[0],
            ]
        assert all(_same(r, by_hand[name]) for r in results), (name, results)


def test_a_row_maximum_of_zero_is_positive_zero(configure):
    """1 / max of a row of +0 and -0 ties: +inf from every path (the loop's, the C
    helper's and NumPy's orders of the ties differ)."""
    (i, j, _, l_), layout, (n, m) = _row_layout()
    loss = _custom("inv", lambda y_, t_: 1 / rowmax(y_[i, l_], (l_, 1, m)), ((i, n),), layout)
    rows = np.tile([[-1.0] + [0.0] * 8 + [-0.0]], (3, 1))
    rows[1, 1:] = [-0.0] * 8 + [0.0]  # -0.0 first
    rows[2, :] = -0.0
    for backend in ("c", "fused"):
        configure(backend=backend)
        with np.errstate(divide="ignore"):
            assert loss(rows, 0 * rows) == np.inf
            assert loss.value_and_grad(rows, 0 * rows)[0] == np.inf


def test_row_sum_errors_are_the_same_on_both_backends(configure):
    """The message names the row's sum to 12 digits (the last ones depend on the order
    each backend adds in)."""
    loss = symloss.get("softmax_cross_entropy")
    t_ = np.eye(10)[np.arange(100_000) % 10]
    t_[77_777] = np.random.default_rng(0).uniform(0.1, 0.9, 10)
    messages = []
    for backend in ("c", "fused"):
        configure(backend=backend)
        with pytest.raises(ValueError) as err:
            loss.value_and_grad(np.zeros((100_000, 10)), t_)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "row 77777" in messages[0]
    assert f"sums to {float(f'{t_[77_777].sum():.12g}')!r}," in messages[0]


def test_a_row_of_negative_zeros_sums_to_negative_zero():
    """IEEE addition from the first element on (OpenMP's own + would start each lane
    at +0.0; NumPy's einsum and sum also give +0.0 there, its column loop -0.0)."""
    kernel = _compiled.CompiledKernel(*_fused.statements(*sp.cse([x * 2]), [x]), 1)
    rows = np.full((3, 20), -0.0)
    rows[1, 5] = 1.0
    (got,) = kernel(rows, summed=(0,), length=20)
    want = np.array([sum((2 * v for v in row[1:]), 2 * row[0]) for row in rows])
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("rows", [4, 40_000])  # one small block (NumPy), one large (C)
def test_summed_outputs_make_each_leaf_once(configure, rows):
    """Under "auto", small and large blocks alike: each leaf is computed once, and the
    row sums are those of the values."""
    configure(backend="auto")
    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    j, m = sp.Symbol("j", integer=True), sp.Symbol("m", integer=True, positive=True)
    kernel = _numeric.Kernel(sp.exp(sp.IndexedBase("y")[i, j]), [(i, n), (j, m)])
    made = []
    kernel._leaves = [lambda a, s, c, f=f: made.append(1) or f(a, s, c) for f in kernel._leaves]
    y = np.random.default_rng(0).normal(size=(rows, 3))
    got = kernel.evaluate({"y": y}, {n: rows, m: 3}, summed=(0,))
    assert made == [1]
    np.testing.assert_allclose(got, np.exp(y).sum(axis=1), rtol=1e-15)


def test_leaves_that_would_be_expanded_are_left_to_numpy_under_auto():
    """A (1, m) or (n, 1, m) leaf of a (n, m, m) Hessian is not copied to the full
    shape unless the backend is "c" (the NumPy code broadcasts it for free)."""
    kernel = _compiled.CompiledKernel(*_fused.statements(*sp.cse([x * y]), [x, y]), 2)
    a, b = np.ones((50, 1, 4)), np.arange(16.0).reshape(1, 4, 4)
    assert kernel(a, b, expand=False) is None
    assert np.array_equal(kernel(a, b)[0], np.broadcast_to(b, (50, 4, 4)))


def test_exponents_compiled_in_keep_the_sign_of_zero():
    """x**g with g = +0.0, then g = -0.0: each is compiled with its own sign."""
    g = sp.Symbol("g", real=True)
    fn = _compile(g * x**g, x, g)
    for e in (0.0, -0.0, 0.0):
        got = fn(np.array([2.0, 3.0]), np.float64(e))
        assert np.array_equal(np.signbit(got), [np.signbit(e)] * 2), e


def test_functions_without_a_vector_form_are_called_one_at_a_time(tmp_path, monkeypatch):
    """On a glibc older than 2.35, libmvec has no log1p: it is declared as plain libm."""
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    _as_new_process(monkeypatch)
    monkeypatch.setattr(_compiled, "_vector_math", lambda: frozenset({"exp"}))
    code = _compiled.source(*_fused.statements(*sp.cse([sp.log(1 + x)]), [x]), "f")
    assert "simd notinbranch\ndouble log" not in code
    fn = _compile(sp.codegen.cfunctions.log1p(x) + sp.exp(x), x)
    values = np.linspace(0, 3, 9)
    np.testing.assert_allclose(fn(values), np.log1p(values) + np.exp(values), rtol=1e-15)


def test_a_kernel_that_fails_alone_does_not_stop_the_others(tmp_path, monkeypatch):
    """A compile error is this kernel's (the others still compile); a missing libmvec
    symbol fails at link time (-z defs), not later when loading."""
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    _as_new_process(monkeypatch)
    broken = "#pragma omp declare simd notinbranch\ndouble no_such_fn(double);\n" + (
        "void symloss_kernel(long r, long m, const double *const *in, double *const *out)"
        "{\n#pragma omp simd\nfor (long i = 0; i < m; i++) out[0][i] = no_such_fn(in[0][i]);}\n"
    )
    with pytest.raises(_compiled.Unavailable, match="could not compile"):
        _compiled.build(broken)
    with pytest.raises(_compiled.Unavailable, match="could not compile"):
        _compiled.build(broken)  # remembered, not compiled again
    assert np.allclose(_compile(sp.exp(x) - 4, x)(np.zeros(3)), -3.0)


def test_a_damaged_or_exposed_cached_object_is_compiled_again(tmp_path):
    """A truncated object, or one that others could have written, is not loaded: it
    is replaced by a fresh compile, which only its owner can write.  (New processes:
    the loader would hand this one the object it already mapped.)"""
    script = "import numpy as np, symloss; print(symloss.get('log_cosh').value_and_grad(np.linspace(-2, 2, 70000), np.zeros(70000))[0])"
    env = {**os.environ, "SYMLOSS_CACHE_DIR": str(tmp_path), "SYMLOSS_BACKEND": "c"}

    def run():
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = run()
    objects = sorted((tmp_path / "kernels").iterdir())
    assert objects and all(o.stat().st_mode & 0o777 == 0o500 for o in objects)
    for damage in ("truncate", "expose"):
        for obj in objects:
            if damage == "truncate":
                obj.chmod(0o700)
                obj.write_bytes(obj.read_bytes()[:100])
                obj.chmod(0o500)
            else:
                obj.chmod(0o777)
        assert run() == first, damage
        assert sorted((tmp_path / "kernels").iterdir()) == objects
        for obj in objects:
            assert obj.stat().st_mode & 0o777 == 0o500 and obj.stat().st_size > 1000, damage


def test_a_toolchain_that_cannot_build_kernels_stops_being_asked(tmp_path, monkeypatch):
    """No libmvec (macOS, musl): the first failure compiles an empty kernel to tell the
    toolchain's fault from the kernel's, and then no kernel is compiled again."""
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    _as_new_process(monkeypatch)
    monkeypatch.setattr(_compiled, "LIBS", ("-lno_such_library_here",))
    with pytest.raises(_compiled.Unavailable, match="cannot build kernels here") as info:
        _compile(sp.exp(x) * 7, x)(np.ones(3))
    assert info.value.environment and info.value.quiet  # "auto": the NumPy code, no warning
    monkeypatch.setattr(_compiled, "CC", "/nonexistent/cc")  # would say so if asked again
    with pytest.raises(_compiled.Unavailable, match="cannot build kernels here"):
        _compile(sp.exp(x) * 8, x)(np.ones(3))


def test_cc_may_hold_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    _as_new_process(monkeypatch)
    monkeypatch.setattr(_compiled, "CC", "cc -std=gnu11")
    assert np.allclose(_compile(sp.cosh(x) * 2, x)(np.zeros(3)), 2.0)


def test_an_unknown_backend_name_is_an_error():
    with pytest.raises(symloss.BackendError, match="not one of auto, c, fused, lambdify"):
        symloss.set_backend("C")
    # From the environment: not an import error, but the first use says which variable.
    code = "import numpy as np, symloss; symloss.get('mse').value_and_grad(np.ones(3), np.zeros(3))"
    env = {**os.environ, "SYMLOSS_BACKEND": "C"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 1
    assert "BackendError: SYMLOSS_BACKEND='C' is not one of auto, c, fused, lambdify" in out.stderr


def test_a_row_statistic_is_one_whatever_its_index_is_called():
    """The value's sum over j and the gradient's sum over l are cached as one."""
    i, j, l, m = sp.symbols("i j l m", integer=True)
    t, y = sp.IndexedBase("t"), sp.IndexedBase("y")
    a, b = sp.Sum(t[i, j] * y[i, j], (j, 1, m)), sp.Sum(t[i, l] * y[i, l], (l, 1, m))
    assert _numeric._canonical(a) == _numeric._canonical(b)
    assert _numeric._canonical(a) != _numeric._canonical(sp.Sum(t[i, j] * y[j, i], (j, 1, m)))


def test_integer_and_boolean_leaves_are_read_as_float64():
    got = _compile(x + 2 * y, x, y)(np.array([1, 2, 3]), np.array([True, False, True]))
    assert got.dtype == np.float64 and np.array_equal(got, [3.0, 2.0, 5.0])


def test_threads_share_compiled_code_without_sharing_results():
    fn = _compile(sp.exp(x) + y, x, y)
    base = np.linspace(-1, 1, 10_000)
    results, errors = {}, []

    def work(k):
        try:
            results[k] = fn(base, np.float64(k))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, got in results.items():
        np.testing.assert_allclose(got, np.exp(base) + k, rtol=1e-15)


def _as_new_process(monkeypatch):
    """Forget what this process compiled and loaded (the disk cache stays)."""
    monkeypatch.setattr(_compiled, "_LOADED", {})
    monkeypatch.setattr(_compiled, "_FUNCS", {})
    monkeypatch.setattr(_compiled, "_STATE", {})


def test_compiled_objects_are_reused_from_the_disk_cache(tmp_path, monkeypatch):
    _as_new_process(monkeypatch)
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    _compile(sp.sin(x) * 3, x)(np.ones(3))
    objects = list((tmp_path / "kernels").iterdir())
    assert len(objects) == 1 and objects[0].suffix == ".so"
    mtime = objects[0].stat().st_mtime_ns
    _as_new_process(monkeypatch)  # from disk
    monkeypatch.setattr(_compiled, "CC", "/nonexistent/cc")  # no compiler needed
    assert np.allclose(_compile(sp.sin(x) * 3, x)(np.ones(3)), 3 * np.sin(1.0))
    assert [p.stat().st_mtime_ns for p in (tmp_path / "kernels").iterdir()] == [mtime]


def test_a_cache_others_can_write_is_refused(tmp_path, monkeypatch):
    """Compiled objects are loaded as code: a group- or world-writable cache is not used."""
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels").chmod(0o777)
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))
    _as_new_process(monkeypatch)
    with pytest.raises(_compiled.Unavailable, match="writable by others"):
        _compile(sp.cos(x) + 7, x)(np.ones(3))


def test_without_a_compiler_auto_falls_back_and_c_says_why(tmp_path, monkeypatch, configure):
    monkeypatch.setenv("SYMLOSS_CACHE_DIR", str(tmp_path))  # nothing compiled yet
    monkeypatch.setattr(_compiled, "CC", "/nonexistent/cc")
    _as_new_process(monkeypatch)
    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    kernel = _numeric.Kernel(sp.exp(sp.IndexedBase("y")[i]) * 5 + 1, [(i, n)])
    arrays = {"y": np.linspace(0, 1, 100_000)}
    with pytest.raises(symloss.BackendError, match="SYMLOSS_BACKEND=c: no C compiler"):
        kernel.evaluate(arrays, {n: 100_000})
    configure(backend="auto")
    got = kernel.evaluate(arrays, {n: 100_000})  # large enough for "auto" to try
    np.testing.assert_allclose(got, np.exp(arrays["y"]) * 5 + 1, rtol=1e-15)


def test_auto_compiles_only_for_large_blocks(monkeypatch, configure):
    configure(backend="auto")
    calls = []
    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    kernel = _numeric.Kernel(sp.exp(sp.IndexedBase("y")[i]) * 3, [(i, n)])
    real = kernel._run_compiled
    monkeypatch.setattr(
        kernel,
        "_run_compiled",
        lambda values, loop, **how: calls.append(1) or real(values, loop, **how),
    )
    kernel.evaluate({"y": np.ones(10)}, {n: 10})
    assert calls == []
    big = config.settings().compile_min_elements
    kernel.evaluate({"y": np.ones(big)}, {n: big})
    assert calls == [1]


def test_the_generated_source_holds_no_user_text():
    """Names in the C source are generated (L0, T3, O1, sl_*) or C's own."""
    weird = sp.Symbol('x); system("rm -rf /"); double q = (', real=True)
    code = _compiled.source(*_fused.statements(*sp.cse([sp.exp(weird) + 1]), [weird]), "f")
    assert "system" not in code and "rm -rf" not in code


def test_a_new_process_reads_kernels_from_the_disk_cache(tmp_path):
    """Compiled objects survive the process: a second run compiles nothing."""
    script = (
        "import numpy as np, symloss; symloss.set_backend('c')\n"
        "L = symloss.get('bce_logits'); print(L.value_and_grad(np.array([0.5, -2.0]),"
        " np.array([1.0, 0.0]))[0])"
    )
    env = {"SYMLOSS_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    count = len(list((tmp_path / "kernels").iterdir()))
    env["CC"] = "/nonexistent/cc"
    second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout and len(list((tmp_path / "kernels").iterdir())) == count
    # bce_logits at z = (0.5, -2), t = (1, 0): mean(log(1 + e^-0.5), log(1 + e^-2)), by hand
    assert float(first.stdout) == pytest.approx(
        (np.log1p(np.exp(-0.5)) + np.log1p(np.exp(-2))) / 2, rel=1e-15
    )

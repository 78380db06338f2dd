"""The fused in-place kernels (symloss/_fused.py) against lambdify's, and their pieces.

lambdify's kernels are the reference here: they print the same expressions as nested
NumPy calls.  The public API runs the fused kernels, so the registry-wide mpmath
comparisons in tests/test_edges_mpmath.py check them against the symbolic truth too.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import inputs, registry_params
from hypothesis import given, settings
from hypothesis import strategies as st
from shared import SPECIALS, _kernels, check_against_lambdify

from symloss.numeric import fused as _fused
from symloss.numeric import kernel as _numeric
from symloss.numeric import ops
from symloss.symbols import relu, step, xdivy, xlogy


@registry_params()
def test_every_kernel_of_the_catalog_is_fused(loss):
    """No registered loss falls back to lambdify: the generator knows every node used."""
    for what, kernel in _kernels(loss).items():
        assert kernel._inplace is not None, f"{loss.name}: the {what} kernel is not fused"


@registry_params()
@settings(max_examples=15)
@given(data=st.data())
def test_fused_kernels_equal_lambdify_kernels(loss, data):
    check_against_lambdify(loss, data.draw(inputs(loss)), "fused")


def _compile(expr, *symbols):
    fn = _fused.compile_fused(*sp.cse([expr]), list(symbols))
    return lambda *values: np.array(fn(*values)[0], copy=True)


x, y, z = sp.symbols("x y z", real=True)


@pytest.mark.parametrize(
    "expr, reference",
    [
        # References are NumPy's own functions, written independently of the generator.
        (sp.sign(x), np.sign),
        (sp.Abs(x), np.abs),
        (relu(x), lambda v: np.maximum(v, 0.0)),
        (step(x), lambda v: np.where(v > 0, 1.0, 0.0)),  # relu'(x), 0 unless x > 0
        (
            sp.Piecewise((x, x < 0), (2 * x, x < 1), (-x, True)),
            lambda v: np.select([v < 0, v < 1], [v, 2 * v], -v),
        ),
        (sp.Piecewise((x, x > 0)), lambda v: np.where(v > 0, v, np.nan)),
        (sp.Heaviside(x), lambda v: np.heaviside(v, 0.5)),
        (sp.Heaviside(x, sp.oo), lambda v: np.heaviside(v, np.inf)),
        (sp.Heaviside(x, sp.nan), lambda v: np.heaviside(v, np.nan)),
        (
            1 / x**2 - 3 * x**3 + sp.sqrt(sp.Abs(x)),
            lambda v: 1 / v**2 - 3 * v**3 + np.sqrt(np.abs(v)),
        ),
        (-x / (1 + sp.exp(-x)), lambda v: -v / (1 + np.exp(-v))),
    ],
    ids=[
        "sign",
        "abs",
        "relu",
        "step",
        "piecewise",
        "piecewise-no-default",
        "heaviside",
        "heaviside-inf-at-0",
        "heaviside-nan-at-0",
        "powers",
        "quotient",
    ],
)
def test_generated_code_matches_numpy_at_special_values(expr, reference):
    fn = _compile(expr, x)
    with np.errstate(all="ignore"):
        got, want = fn(SPECIALS.copy()), reference(SPECIALS.copy())
    # Sums may add in another order (a last-bit difference); infinities, NaN and the
    # sign of zero must match exactly.
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    numbers = ~np.isnan(want)
    assert np.array_equal(np.signbit(got[numbers]), np.signbit(want[numbers]))


def test_select_is_exact_on_every_bit_pattern():
    """The bit-wise blend returns the chosen operand's bits (inf, NaN, -0.0, subnormals)."""
    fn = _compile(sp.Piecewise((x, z > 0), (y, True)), x, y, z)
    a, b = np.meshgrid(SPECIALS, SPECIALS[::-1])
    cond = np.where(np.arange(a.size).reshape(a.shape) % 3 == 0, 1.0, -1.0)
    got = fn(a, b, cond)
    want = np.where(cond > 0, a, b)
    assert np.array_equal(got.view(np.int64), want.view(np.int64))


def test_xlogy_and_xdivy_are_zero_where_the_weight_is_zero():
    t = np.array([0.0, 0.0, 0.5, 1.0])
    p = np.array([0.0, 2.0, 0.0, 0.25])
    with np.errstate(all="ignore"):
        assert np.array_equal(_compile(xlogy(x, y), x, y)(t, p), [0.0, 0.0, -np.inf, np.log(0.25)])
        assert np.array_equal(_compile(xdivy(x, y), x, y)(t, p), [0.0, 0.0, np.inf, 4.0])


def test_broadcasting_scalars_and_rows():
    """Leaves of different shapes (a scalar parameter, a row statistic, a matrix)."""
    fn = _compile(x * sp.exp(y) - z, x, y, z)
    rows = np.array([[1.0], [2.0]])
    grid = np.arange(6.0).reshape(2, 3)
    got = fn(np.float64(0.5), rows, grid)
    assert np.allclose(got, 0.5 * np.exp(rows) - grid, rtol=1e-15)
    assert got.shape == (2, 3)
    assert _compile(2 * x + 1, x)(np.float64(3.0)) == 7.0  # all-scalar code


def test_results_are_scratch_until_the_next_call():
    """The contract Kernel.evaluate documents: a thread's next call reuses the arrays."""
    fn = _fused.compile_fused(*sp.cse([x + 1]), [x])
    first = fn(np.zeros(4))[0]
    kept = first.copy()
    fn(np.ones(4))
    assert np.array_equal(kept, np.ones(4))
    assert np.array_equal(first, 2 * np.ones(4))  # overwritten in place: the same buffer


def test_unknown_functions_fall_back_to_lambdify():
    f = sp.Function("mystery")
    with pytest.raises(_fused.Unsupported, match="mystery"):
        _fused.generate(*sp.cse([f(x) + 1]), [x])
    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    kernel = _numeric.Kernel(sp.asinh(sp.IndexedBase("y")[i]), [(i, n)])
    assert kernel._inplace is None and not kernel.fused
    value = kernel.evaluate({"y": np.array([1.0, 5.0])}, {n: 2})
    assert np.array_equal(value, np.arcsinh([1.0, 5.0]))


def test_constants_without_a_float_value_fall_back():
    with pytest.raises(_fused.Unsupported):
        _fused.generate(*sp.cse([x + sp.I]), [x])


def test_functions_are_matched_by_identity_not_by_name():
    """A function of a user's that is merely called "maximum" is not numpy.maximum."""
    with pytest.raises(_fused.Unsupported, match="maximum"):
        _fused.generate(*sp.cse([sp.Function("maximum")(x, y)]), [x, y])
    assert np.array_equal(
        _compile(ops.maximum(x, y), x, y)(np.array([1.0, 5.0]), np.array([3.0, 2.0])),
        [3.0, 5.0],
    )

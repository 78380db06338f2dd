"""float32 end to end (issue 18): float32 in, float32 out, no float64 copy, and the
accuracy contract of docs/numerics.md ("float32").

The reference of every comparison is the float64 result on the *same* inputs (the
float32 values, widened exactly to float64), so a difference measures the float32
arithmetic, not the rounding of the inputs.  The contract: the loss value within
16 float32 epsilons relative to the loss, each gradient and Hessian element within
16 epsilons of the largest one; observed over the catalog, at most 0.5 and 2.3.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import registry_params

import symloss
from symloss.numeric import compiled, evaluate, kernel, rows
from symloss.numeric.warm import inputs

F32 = np.float32
EPS = float(np.finfo(F32).eps)
K = 16  # the contract's factor (docs/numerics.md)


@pytest.fixture(params=["fused", "fused, scratch pool", "c"])
def backend(request, configure, monkeypatch):
    """The three code paths: the NumPy code with new arrays (small inputs), the NumPy
    code on scratch arrays with bit blends (forced for every size here, as
    tests/numeric/test_small.py does), and the C loop."""
    if request.param == "c":
        request.getfixturevalue("backend_c")
    if request.param == "fused, scratch pool":
        monkeypatch.setattr(evaluate, "SMALL_ELEMENTS", -1)
        monkeypatch.setattr(kernel, "SMALL_ELEMENTS", -1)
    configure(backend=request.param.split(",")[0])
    return request.param


def _as(dtype, pred, target, kw):
    return pred.astype(dtype), target.astype(dtype), {k: v.astype(dtype) for k, v in kw.items()}


def _close(got, want, scale, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert np.all(np.isfinite(got)), what
    worst = np.max(np.abs(got - want))
    assert worst <= K * EPS * scale, f"{what}: off by {worst / (EPS * scale):.1f} eps32"


@registry_params()
def test_float32_inputs_give_float32_results_within_the_contract(loss, backend):
    pred, target, kw = _as(F32, *inputs(loss, rows=64, classes=5))
    wide = _as(np.float64, pred, target, kw)  # the same numbers, in float64
    v, g = loss.value_and_grad(pred, target, **kw)
    h = loss.hess(pred, target, **kw)
    assert type(v) is np.float32 and g.dtype == F32 and h.dtype == F32
    assert loss(pred, target, **kw).dtype == F32 and loss.grad(pred, target, **kw).dtype == F32
    v64, g64 = loss.value_and_grad(*wide[:2], **wide[2])
    h64 = loss.hess(*wide[:2], **wide[2])
    _close(v, v64, abs(v64), "value")
    _close(g, g64, np.abs(g64).max(), "gradient")
    _close(h, h64, np.abs(h64).max(), "Hessian")


def _edges(domain) -> list:
    """float32 values at the ends of *domain*: a closed end itself, an open one's next
    float inside (the smallest normal float32 for an open 0: 1/y is then finite), and
    -80, -1e4, 80, 1e4 for infinite ends (exp overflows float32 from 88.7)."""
    s = domain.accepted if domain is not None else sp.Interval(-sp.oo, sp.oo)
    if not isinstance(s, sp.Interval):
        return []
    out = []
    if s.inf.is_finite:
        lo = F32(float(s.inf))
        inside = np.finfo(F32).tiny if lo == 0 else np.nextafter(lo, F32(np.inf))
        out.append(inside if s.left_open else lo)
    else:
        out += [F32(-80), F32(-1e4)]
    if s.sup.is_finite:
        hi = F32(float(s.sup))
        out.append(np.nextafter(hi, F32(-np.inf)) if s.right_open else hi)
    else:
        out += [F32(80), F32(1e4)]
    return out


def _like_float64(got, want, what):
    """float32 *got* against float64 *want* on the same inputs, element by element:
    NaN only where float64 has NaN; an infinity only where float64's value is one or
    lies beyond float32's range (with its sign); elsewhere within the contract,
    relative to the largest such element."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaN")
    big = ~(np.abs(want) <= np.finfo(F32).max)  # NaN too
    off = big & ~np.isnan(want)
    assert np.all(np.isinf(got[off]) & (np.sign(got[off]) == np.sign(want[off]))), what
    _close(got[~big], want[~big], np.max(np.abs(want[~big]), initial=0), what)


@registry_params()
def test_float32_at_the_edges_of_the_domain_behaves_as_float64(loss, backend):
    pred, target, kw = _as(F32, *inputs(loss, rows=8, classes=4))
    edges = _edges(loss.domains.get(str(loss.pred.label)))
    pred.reshape(-1)[: len(edges)] = edges
    wide = _as(np.float64, pred, target, kw)
    # Per-element values (reduction "none") and sum-reduced gradients: a mean could
    # bring a term beyond float32's range back into it.
    per = symloss.get(loss.name, reduction="none")
    total = symloss.get(loss.name, reduction="sum")
    with np.errstate(all="ignore"):
        _like_float64(per(pred, target, **kw), per(*wide[:2], **wide[2]), "value")
        _like_float64(total.grad(pred, target, **kw), total.grad(*wide[:2], **wide[2]), "grad")


def test_float32_inputs_are_used_as_they_are():
    """No float64 copy: the kernels see the caller's float32 arrays."""
    L = symloss.get("bce_logits")
    z, t = np.linspace(-3, 3, 12, dtype=F32), np.ones(12, F32)
    batch = evaluate.prepare(L, z, t, None, {}, keep_float32=True)
    assert batch.arrays["z"] is z and batch.arrays["t"] is t and batch.dtype is F32
    # The checker and the docs still compute in float64.
    assert evaluate.prepare(L, z, t, None, {}).arrays["z"].dtype == np.float64


@pytest.mark.parametrize(
    "name,pred,target,want",
    [
        ("bce_logits", F32, F32, F32),
        ("bce_logits", F32, np.float64, np.float64),  # as numpy.result_type
        ("bce_logits", np.float64, F32, np.float64),
        ("bce_logits", F32, np.bool_, F32),  # integers and booleans do not count
        ("bce_logits", F32, np.int64, F32),
        ("bce_logits", np.float16, np.float16, np.float64),
        ("cce_logits", F32, "labels", F32),
    ],
)
def test_mixed_dtypes_follow_the_stated_rule(name, pred, target, want):
    L = symloss.get(name)
    z = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]]).astype(pred)
    if target == "labels":
        t = np.array([2, 0])
    else:
        t = np.array([[1, 0, 0], [0, 0, 1]]).astype(target)
        z, t = (z.reshape(-1), t.reshape(-1)) if name == "bce_logits" else (z, t)
    v, g = L.value_and_grad(z, t)
    assert g.dtype == want and np.asarray(v).dtype == want


def test_out_takes_the_inputs_float_type():
    L = symloss.get("bce_logits")
    z, t = np.linspace(-3, 3, 8, dtype=F32), np.ones(8, F32)
    out = np.empty(8, F32)
    assert L.grad(z, t, out=out) is out
    np.testing.assert_array_equal(out, L.grad(z, t))
    with pytest.raises(symloss.ArgumentError, match="out must be a float32"):
        L.grad(z, t, out=np.empty(8))


@pytest.mark.parametrize("name,shape", [("bce_logits", (70_000,)), ("cce_logits", (20_000, 7))])
def test_large_float32_inputs_over_blocks_and_threads(name, shape, configure):
    """Blocked evaluation on worker threads (the compiled loop under "auto"), with
    weights and per-sample values."""
    configure(threads=2, block_elements=8192)
    rng = np.random.default_rng(5)
    z = rng.normal(scale=4, size=shape).astype(F32)
    t = (rng.random(shape) < 0.3).astype(F32)
    if len(shape) == 2:
        t = np.eye(shape[1], dtype=F32)[rng.integers(0, shape[1], shape[0])]
    w = rng.random(shape[0]).astype(F32)
    L = symloss.get(name)
    for kwargs in ({}, {"weight": w}):
        v, g = L.value_and_grad(z, t, **kwargs)
        v64, g64 = L.value_and_grad(z.astype(float), t.astype(float), **kwargs)
        assert type(v) is np.float32 and g.dtype == F32
        _close(v, v64, abs(v64), "value")
        _close(g, g64, np.abs(g64).max(), "gradient")
    per = symloss.get(name, reduction="none")(z, t)
    assert per.dtype == F32
    _close(per, symloss.get(name, reduction="none")(z.astype(float), t.astype(float)), 1, "per")


def test_float32_row_helpers_accumulate_in_double(backend_c):
    """The C row helpers on float32 rows: NumPy's float32 max and exp, sums as
    float64 sums rounded once."""
    rng = np.random.default_rng(1)
    z = rng.normal(scale=5, size=(9, 4096)).astype(F32)
    top, e, total = compiled.row_stats(z)
    assert top.dtype == e.dtype == total.dtype == F32
    np.testing.assert_array_equal(top[:, 0], z.max(axis=1))
    np.testing.assert_allclose(e, np.exp(z - top), rtol=4 * EPS)
    want = np.add.reduce(e, axis=1, dtype=np.float64)
    np.testing.assert_allclose(total[:, 0], want, rtol=EPS)
    row = np.full((2, 4096), 2.0**-25, dtype=F32)
    row[:, 0] = 1.0  # 1 + 4095 * 2^-25, by hand (float32 sums lose 2^-25 steps)
    assert compiled.row_reduce(np.add, row)[0] == F32(1 + 4095 * 2.0**-25)
    lo, hi = compiled.min_max(z)
    assert (lo, hi) == (z.min(), z.max())


def test_float32_row_sums_of_the_numpy_code_accumulate_in_double(configure):
    """1 + 4095 * 2^-25 = 1.00012207 (hand sum; float32's own sums, pairwise or by
    einsum, give 1.0001216 and 1.000122)."""
    configure(backend="fused")
    row = np.full((2, 4096), 2.0**-25, dtype=F32)
    row[:, 0] = 1.0
    total = rows.reduce_rows(np.add, row)
    assert total.dtype == F32 and total[0] == F32(1 + 4095 * 2.0**-25)


def test_float32_target_rows_are_checked_at_float32s_tolerance():
    """A float32 row of probabilities sums to 1 only up to float32 rounding (0.1 ten
    times is 1.0000001 in float32): accepted; a row off by 1e-4 is refused."""
    L = symloss.get("cce")
    pred = np.full((2, 10), 0.1, F32)
    target = np.full((2, 10), 0.1, F32)
    assert np.isfinite(L(pred, target))
    target[1, 0] += F32(1e-4)
    with pytest.raises(symloss.InputError, match="target row 1 sums to"):
        L(pred, target)

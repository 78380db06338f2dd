"""The small-input path (issue 18): same results and same errors as the blocked path.

Up to ``kernel.SMALL_ELEMENTS`` elements a call runs in one block on the calling
thread and the NumPy code allocates its temporaries (``fused``'s ``fresh`` form)
instead of taking them from the scratch pool.  Setting the threshold to 0 forces the
blocked path with the pool: both must agree, and raise the same errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import registry_params
from shared import ROOT

import symloss
from symloss.numeric import evaluate, fused, kernel
from symloss.numeric.warm import inputs


@pytest.fixture
def blocked_path(monkeypatch):
    """Every call takes the blocked path and the scratch pool, whatever its size."""

    def force():
        monkeypatch.setattr(evaluate, "SMALL_ELEMENTS", -1)
        monkeypatch.setattr(kernel, "SMALL_ELEMENTS", -1)

    return force


def _calls(L, pred, target, kw):
    out = {"value": L(pred, target, **kw), "grad": L.grad(pred, target, **kw)}
    v, g = L.value_and_grad(pred, target, **kw)
    out["vag value"], out["vag grad"] = v, g
    out["hess"] = L.hess(pred, target, **kw)
    return out


@registry_params()
def test_the_small_path_gives_the_blocked_paths_results(loss, blocked_path, configure):
    configure(backend="fused")
    pred, target, kw = inputs(loss, rows=6, classes=4)
    small = _calls(loss, pred, target, kw)
    blocked_path()
    blocked = _calls(loss, pred, target, kw)
    for key, want in blocked.items():
        np.testing.assert_allclose(small[key], want, rtol=1e-13, atol=1e-300, err_msg=key)


@registry_params()
def test_fresh_temporaries_give_the_scratch_codes_bits(loss, configure):
    """The two generated forms of each fused kernel (new arrays and numpy.where, or
    scratch and bit blends) return the same bits."""
    configure(backend="fused")
    pred, target, kw = inputs(loss, rows=5, classes=3)
    built = evaluate.of(loss)
    k = built.fused or built.gradient
    if k._inplace is None:
        pytest.skip("no generated NumPy code for this kernel")
    batch = evaluate.prepare(loss, pred, target, None, dict(kw))
    values = [make(batch.arrays, batch.sizes, {}) for make in k._leaves]
    with np.errstate(all="ignore"):
        fresh = [np.array(o, dtype=np.float64) for o in k._inplace.fresh(*values)]
        pooled = [np.array(o, dtype=np.float64) for o in k._inplace(*values)]
    for a, b in zip(fresh, pooled):
        assert np.array_equal(a.view(np.int64), np.broadcast_to(b, a.shape).view(np.int64))


def test_fresh_code_takes_nothing_from_the_pool():
    L = symloss.get("bce_logits")
    source = evaluate.of(L).fused._inplace.source
    small = source[source.index("def fresh") :]
    assert "_s(" not in small and "_i(" not in small and "where" in small
    assert source.count("_s(") > 5  # the large-input form still uses the pool


def test_small_calls_leave_the_scratch_pool_alone(configure):
    configure(backend="fused")
    L = symloss.get("bce_logits")
    fused.SCRATCH.release()
    L.value_and_grad(np.linspace(-3, 3, 100), np.linspace(0, 1, 100))
    assert fused.SCRATCH._pool() == {}


@pytest.mark.parametrize("n", [10, 100_000])
def test_domain_errors_are_the_same_on_both_paths(n):
    L = symloss.get("bce")
    y = np.full(n, 0.5)
    y[7] = 1.5
    with pytest.raises(symloss.InputError, match=r"y\[7\] = 1.5 is outside the domain \[0, 1\]"):
        L.value_and_grad(y, np.zeros(n))
    y[7] = np.nan
    with pytest.raises(symloss.InputError, match=r"y\[7\] = nan is outside"):
        L(y, np.zeros(n))
    z = np.zeros(n)
    z[3] = np.inf
    with pytest.raises(symloss.InputError, match=r"z\[3\] = inf is outside"):
        symloss.get("bce_logits").grad(z, np.zeros(n))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logits_whose_sum_overflows_are_finite_and_accepted(dtype):
    # A whole-line domain is checked by one sum (finite: every element is finite);
    # these finite logits sum to inf or NaN and must still pass, while inf, -inf and
    # NaN among them are refused.  bce_logits at |z| = big with t = 1: softplus(-z),
    # so relu(-z) + log1p(exp(-|z|)): values 0 and big, gradients 0 and -1 (by hand).
    big = float(np.finfo(dtype).max)
    L = symloss.get("bce_logits", reduction="sum")
    z = np.array([big, big, -big, 1.0], dtype)
    value, grad = L.value_and_grad(z, np.ones(4, dtype))
    assert value == pytest.approx(big + np.log1p(np.exp(-1.0)), rel=1e-6)
    np.testing.assert_allclose(grad, [0.0, 0.0, -1.0, -1.0 / (1.0 + np.e)], rtol=1e-6)
    for bad in (np.inf, -np.inf, np.nan):
        z[1] = bad
        with pytest.raises(symloss.InputError, match=rf"z\[1\] = {bad!r} is outside"):
            L.value_and_grad(z, np.ones(4, dtype))


@pytest.mark.parametrize("rows", [16, 50_000])
def test_row_sum_and_shape_errors_are_the_same_on_both_paths(rows):
    C = symloss.get("cce_logits")
    z = np.zeros((rows, 10))
    t = np.eye(10)[np.arange(rows) % 10]
    t[5, 0] = 0.5
    with pytest.raises(symloss.InputError, match=r"target row 5 sums to 1.5"):
        C.value_and_grad(z, t)
    with pytest.raises(symloss.InputError, match=r"logit shape \(\d+, 10\) and target shape"):
        C.value_and_grad(z, t[:, :9])
    with pytest.raises(symloss.InputError, match="label 10 at row 0 is not a class index"):
        C.value_and_grad(z, np.full(rows, 10))


def test_small_path_weights_labels_and_reductions_match_the_blocked_path(blocked_path):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40, 5))
    labels = rng.integers(0, 5, 40)
    labels[3] = -100
    w = rng.uniform(0.1, 2.0, 40)
    cases = [
        (
            symloss.get("cce_logits", ignore_index=-100, class_weight=[1, 2, 1, 3, 1]),
            (z, labels),
            {},
        ),
        (symloss.get("cce_logits", reduction="none"), (z, np.eye(5)[labels % 5]), {"weight": w}),
        (symloss.get("huber", reduction="sum"), (z[:, 0], z[:, 1]), {"weight": w}),
    ]
    small = [L.value_and_grad(*args, **kw) for L, args, kw in cases]
    blocked_path()
    for (L, args, kw), (v, g) in zip(cases, small):
        v2, g2 = L.value_and_grad(*args, **kw)
        np.testing.assert_allclose(v, v2, rtol=1e-13)
        np.testing.assert_allclose(g, g2, rtol=1e-13, atol=1e-300)


def test_the_small_benchmark_names_its_targets():
    text = (ROOT / "benchmarks" / "small.py").read_text(encoding="utf-8")
    assert "within 3x" in text and "1.5x" in text and "torch" in text

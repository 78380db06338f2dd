"""symloss kernels on dask arrays, chunked along the samples (optional: needs dask).

The kernels are NumPy functions of NumPy blocks, so dask needs no adapter: each chunk
of rows is evaluated with the sum-reduced loss (``reduction="sum"``), whose value and
gradient are additive over samples; the mean is the total divided by the number of
samples, once, at the end.  A per-chunk *mean* would be wrong for unequal chunks, so it
is never used.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

da = require("dask.array")

import symloss  # noqa: E402

CASES = [
    ("bce_logits", {}, (10_007,), None),
    ("huber", {"delta": 0.7}, (9_999,), None),
    ("gaussian_nll", {}, (5_003,), "var"),
    ("cce_logits", {}, (3_001, 7), None),
]


def _inputs(name, shape, extra):
    rng = np.random.default_rng(1)
    z = rng.normal(scale=3.0, size=shape)
    if len(shape) == 2:
        w = rng.uniform(0.05, 1.0, size=shape)
        t = w / w.sum(axis=1, keepdims=True)  # probability rows
    elif name == "bce_logits":
        t = rng.choice([0.0, 1.0, 0.3], size=shape)
    else:
        t = rng.normal(size=shape)
    kw = {extra: rng.uniform(0.1, 5.0, size=shape)} if extra else {}
    return z, t, kw


def _chunked(a, rows):
    return da.from_array(a, chunks=(rows, *a.shape[1:]))  # row chunks, whole rows


@pytest.mark.parametrize("name, options, shape, extra", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("rows", [1_000, 4_096])  # the last chunk is ragged
def test_chunked_loss_and_gradient_match_in_memory(name, options, shape, extra, rows):
    z, t, kw = _inputs(name, shape, extra)
    L = symloss.get(name, **options)  # reduction="mean": the in-memory truth
    S = symloss.get(name, **options, reduction="sum")  # additive over chunks
    n = shape[0]
    keys = list(kw)
    blocks = [_chunked(a, rows) for a in (z, t, *kw.values())]

    def block_sum(p, q, *more):
        value = S(p, q, **dict(zip(keys, more)))
        return np.full((1,) * p.ndim, value)

    def block_grad(p, q, *more):
        return S.grad(p, q, **dict(zip(keys, more)))

    nblocks = blocks[0].numblocks[0]
    sums = da.map_blocks(
        block_sum, *blocks, chunks=((1,) * nblocks, *[(1,)] * (len(shape) - 1)), dtype=float
    )
    grads = da.map_blocks(block_grad, *blocks, dtype=float)
    value = float(sums.sum().compute()) / n
    grad = grads.compute() / n

    want_value, want_grad = L.value_and_grad(z, t, **kw)
    assert value == pytest.approx(want_value, rel=1e-12, abs=0)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12, atol=1e-12 * np.abs(want_grad).max())


def test_per_sample_values_map_blockwise():
    """reduction="none" is element-wise, so map_blocks needs no combining step."""
    z, t, _ = _inputs("bce_logits", (10_007,), None)
    N = symloss.get("bce_logits", reduction="none")
    got = da.map_blocks(N, _chunked(z, 3_000), _chunked(t, 3_000), dtype=float).compute()
    np.testing.assert_allclose(got, N(z, t), rtol=1e-12, atol=0)

"""``L(pred, target)``, ``L.grad`` and ``L.value_and_grad`` on dask arrays.

The in-memory NumPy path is the reference; tests/integration/test_dask.py does the same
computation by hand with ``map_blocks`` (the boilerplate this replaces).  Without dask
these tests skip, except where ``SYMLOSS_REQUIRE_DASK=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import LOSSES, registry_params, require
from fw_cases import random_case

import symloss
from symloss.frameworks import lazy
from symloss.numeric import evaluate

da = require("dask.array")
import dask  # noqa: E402  (dask.array above imported it)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * max(1.0, float(np.max(np.abs(b)))))


def chunked(a, rows):
    return da.from_array(a, chunks=(rows, *np.shape(a)[1:]))


@registry_params()
def test_every_loss_on_row_chunks_matches_in_memory(loss):
    case = random_case(loss, seed=8, n=23, m=4)
    p = chunked(case.pred, 5)  # chunks of 5, 5, 5, 5 and 3 rows
    kw = {k: chunked(v, 7) for k, v in case.kw.items()}  # other chunks: rechunked to match
    value, grad = loss.value_and_grad(p, case.target, **kw)
    assert isinstance(value, da.Array) and isinstance(grad, da.Array)
    assert value.shape == () and grad.chunks == p.chunks
    value, grad = dask.compute(value, grad)
    want_v, want_g = loss.value_and_grad(case.pred, case.target, **case.kw)
    close(value, want_v)
    close(grad, want_g)


@pytest.mark.parametrize(
    "name, options",
    [("cce_logits", {"class_weight": [1.0, 2.0, 0.5, 3.0], "label_smoothing": 0.1}),
     ("cce_logits", {}), ("multi_margin", {})],
)  # fmt: skip
def test_integer_labels_with_ignored_rows_in_whole_chunks(name, options):
    """Labels spread over chunks, one chunk all ignore_index: PyTorch's weighted mean
    over the kept labels, summed over chunks, divided once."""
    L = symloss.get(name, **options)
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3, size=(40, 4))
    labels = rng.integers(0, 4, 40)
    if L.ignore_index is not None:
        labels[:10] = L.ignore_index  # the first chunk counts for nothing
    value, grad = dask.compute(*L.value_and_grad(chunked(z, 10), chunked(labels, 10)))
    want_v, want_g = L.value_and_grad(z, labels)
    close(value, want_v)
    close(grad, want_g)
    assert L.grad(chunked(z, 10), labels).compute().shape == z.shape


@pytest.mark.parametrize("reduction", ["sum", "none", "mean"])
def test_weights_and_reductions(reduction):
    L = symloss.get("gaussian_nll", reduction=reduction)
    rng = np.random.default_rng(1)
    y, t, var, w = (
        rng.normal(size=101),
        rng.normal(size=101),
        rng.uniform(0.1, 3, 101),
        rng.uniform(0, 2, 101),
    )
    value = L(chunked(y, 30), t, weight=chunked(w, 50), var=var).compute()
    grad = L.grad(chunked(y, 30), chunked(t, 30), weight=w, var=chunked(var, 30)).compute()
    close(value, L(y, t, weight=w, var=var))
    close(grad, L.grad(y, t, weight=w, var=var))


def test_element_wise_losses_take_any_chunking():
    N = symloss.get("bce_logits", reduction="none")
    rng = np.random.default_rng(2)
    z, t = rng.normal(size=(60, 9)), (rng.random((60, 9)) < 0.5).astype(float)
    lazy_z = da.from_array(z, chunks=(25, 4))
    close(N(lazy_z, t).compute(), N(z, t))
    M = symloss.get("bce_logits")
    close(M.grad(lazy_z, t).compute(), M.grad(z, t))


def test_chunks_along_the_class_axis_are_refused():
    L = symloss.get("cce_logits")
    z = da.from_array(np.zeros((6, 4)), chunks=(3, 2))
    with pytest.raises(
        symloss.InputError, match=r"chunked along the class axis.*rechunk\(\{1: -1\}\)"
    ):
        L(z, np.eye(4)[[0, 1, 2, 3, 0, 1]])


def test_errors_are_the_numpy_paths():
    L = symloss.get("bce_logits")
    with pytest.raises(symloss.InputError, match="shape .* do not match"):
        L(chunked(np.zeros(6), 3), np.zeros(5))
    with pytest.raises(symloss.ArgumentError, match="out= is for NumPy arrays"):
        L.grad(chunked(np.zeros(6), 3), np.zeros(6), out=np.zeros(6))
    z = np.array([0.0, 1.0, 2.0, np.inf, 1.0])
    bad = L(chunked(z, 2), np.zeros(5))  # lazy: raised on compute, in the second chunk
    with pytest.raises(symloss.InputError) as lazy_error:
        bad.compute()
    with pytest.raises(symloss.InputError) as numpy_error:
        L(z, np.zeros(5))
    assert str(lazy_error.value) == str(numpy_error.value)  # z[3], as in the whole array
    labels = np.array([0, 1, 2, 1, 7, 0])
    with pytest.raises(symloss.InputError, match="label 7 at row 4 is not a class index"):
        symloss.get("cce_logits").grad(chunked(np.zeros((6, 3)), 3), labels).compute()
    rows = np.full((6, 3), 1 / 3)
    rows[5] = [0.5, 0.5, 0.5]
    with pytest.raises(symloss.InputError, match="target row 5 sums to 1.5"):
        symloss.get("cce_logits")(chunked(np.zeros((6, 3)), 4), rows).compute()
    grid = np.zeros((4, 4))
    grid[3, 2] = np.nan
    with pytest.raises(symloss.InputError, match=r"z\[3, 2\] = nan"):
        L(da.from_array(grid, chunks=(2, 2)), np.zeros((4, 4))).compute()
    every = symloss.get("cce_logits")
    ignored = every(chunked(np.zeros((4, 3)), 2), np.full(4, -100))
    with pytest.raises(symloss.InputError, match="every row is ignored"):
        ignored.compute()


@registry_params()
def test_a_chunks_count_is_what_the_numpy_path_divides_by(loss):
    """lazy._count restates evaluate.prepare's rule: the two agree on every loss."""
    case = random_case(loss, seed=9)
    batch = evaluate.prepare(loss, case.pred, case.target, None, dict(case.kw))
    assert lazy._count(loss, case.pred.shape, None) == batch.count
    if any(c.name == "one_hot" for c in loss.constraints):
        labels = np.array([0, 1, 1, 2, 3])
        batch = evaluate.prepare(loss, case.pred, labels, None, dict(case.kw))
        assert lazy._count(loss, case.pred.shape, labels) == batch.count


def test_no_dask_is_imported_for_numpy_input():
    assert not lazy.is_lazy(np.zeros(3), [1.0], None)
    assert lazy.is_lazy(np.zeros(3), da.zeros(3))
    assert all(L.reduction in L.reductions for L in LOSSES)

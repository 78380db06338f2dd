"""Issue 15: formulas as papers, textbooks and course notes write them
(:mod:`paper_formulas`): each parses, its value equals an independent NumPy reference,
its gradient equals central differences of that reference, and where a catalog loss
matches, :func:`symloss.identify` names it."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from paper_formulas import FORMULAS, inputs  # noqa: E402

import symloss  # noqa: E402

IDS = [f.source[:60] for f in FORMULAS]


def _call_args(f, y):
    """Hyperparameters by name, and the extra array inputs the reference takes."""
    extra = {}
    for name in inspect.signature(f.ref).parameters:
        if name == "var":
            extra["var"] = np.random.default_rng(1).uniform(0.5, 2.0, y.shape)
    return extra


@pytest.fixture(scope="module")
def parsed():
    return {}


def _parse(f, cache):
    if f.source not in cache:
        cache[f.source] = symloss.from_latex(f.tex, **f.names)
    return cache[f.source]


def test_the_collection_is_large_and_sourced():
    assert len(FORMULAS) >= 60
    assert len({f.tex for f in FORMULAS}) == len(FORMULAS)
    assert all(f.source for f in FORMULAS)


@pytest.mark.parametrize("f", FORMULAS, ids=IDS)
def test_value_matches_the_numpy_reference(f, parsed):
    L = _parse(f, parsed)
    y, t = inputs(f.inputs)
    extra = _call_args(f, y)
    assert {p.name for p in L.params} == set(f.params)  # symbolic until given
    got = L(y, t, **f.params, **extra)
    want = f.ref(y, t, **f.params, **extra)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-14), f.tex


@pytest.mark.parametrize("f", FORMULAS, ids=IDS)
def test_gradient_matches_central_differences(f, parsed):
    L = _parse(f, parsed)
    y, t = inputs(f.inputs, seed=2)
    extra = _call_args(f, y)
    grad = L.grad(y, t, **f.params, **extra)
    numeric = np.zeros_like(y)
    for k in np.ndindex(y.shape):
        h = 1e-6 * max(1.0, abs(y[k]))
        up, down = y.copy(), y.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (f.ref(up, t, **f.params, **extra) - f.ref(down, t, **f.params, **extra)) / (
            2 * h
        )
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7, err_msg=f.tex)


IDENTIFIED = [f for f in FORMULAS if f.identify]


@pytest.mark.parametrize("f", IDENTIFIED, ids=[f.source[:60] for f in IDENTIFIED])
def test_identified_as_the_catalog_loss(f, parsed):
    assert symloss.identify(_parse(f, parsed)) == f.identify

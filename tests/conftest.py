"""Shared fixtures: the registry as a parameter list, and inputs drawn inside each domain."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import symloss

settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

LOSSES = [symloss.get(name) for name in symloss.names()]


def registry_params():
    """``pytest.mark.parametrize`` arguments over every registered loss, ids = names."""
    return pytest.mark.parametrize("loss", LOSSES, ids=[L.name for L in LOSSES])


def _element(domain, margin=0.02):
    s = domain.set if domain is not None else sp.Interval(-sp.oo, sp.oo)
    lo = float(s.inf) + margin if s.inf.is_finite else -6.0
    hi = float(s.sup) - margin if s.sup.is_finite else 6.0
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def inputs(draw, loss, max_n=5, max_m=4):
    """``(pred, target)`` drawn inside the loss's domains and constraints."""
    n = draw(st.integers(1, max_n))
    shape = (n,) if len(loss.indices) == 1 else (n, draw(st.integers(2, max_m)))
    size = int(np.prod(shape))
    pred = np.array(
        draw(
            st.lists(_element(loss.domains.get(str(loss.pred.label))), min_size=size, max_size=size)
        )
    )
    tdom = loss.domains.get(str(loss.target.label))
    if any(c.name == "one_hot" for c in loss.constraints):
        rows = []
        for _ in range(n):
            if draw(st.booleans()):
                row = np.zeros(shape[1])
                row[draw(st.integers(0, shape[1] - 1))] = 1.0
            else:
                w = np.array(
                    draw(st.lists(st.floats(0.05, 1.0), min_size=shape[1], max_size=shape[1]))
                )
                row = w / w.sum()
            rows.append(row)
        target = np.array(rows)
    elif tdom is not None and tdom.set == sp.Interval(0, 1):
        target = np.array(
            draw(st.lists(st.sampled_from([0.0, 1.0, 0.3, 0.75]), min_size=size, max_size=size))
        )
    else:
        target = np.array(draw(st.lists(_element(tdom), min_size=size, max_size=size)))
    return pred.reshape(shape), target.reshape(shape)

"""Shared fixtures: the registry as a parameter list, and inputs drawn inside each domain."""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, assume, settings
from hypothesis import strategies as st

import symloss
from symloss.numeric import config, evaluate
from symloss.numeric.kernel import Kernel
from symloss.symbolic import calculus as _calculus
from symloss.symbolic import derivatives

# Hypothesis profiles.  "ci" (chosen when CI=true, as .ci/run runs): no deadline (2 shared
# cores: a kernel compiled on first use takes 0.1 s), no example database (a fresh clone
# has none and nothing keeps it), and a random seed per run, printed with any failure
# (print_blob) so that it can be replayed with @reproduce_failure.  "dev" (the default
# elsewhere): the local database in .hypothesis/, which replays earlier failures first.
# "repro" (HYPOTHESIS_PROFILE=repro): the fixed seed the suite used to run with.
settings.register_profile(
    "ci",
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "repro", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

#: Not tests: the mutation check runs the suite itself (python tests/mutation/run.py).
collect_ignore = ["mutation"]

#: Optional frameworks and the variable that makes each one required (as .ci/run sets).
FRAMEWORKS = {"torch": "TORCH", "dask.array": "DASK", "jax": "JAX"}


def require(module: str):
    """Import *module* (torch, dask.array, jax), or skip the calling test or module.

    Where ``SYMLOSS_REQUIRE_<NAME>=1`` (``.ci/run`` sets it for torch, dask and jax) a
    missing framework fails instead, as the compiler, browser and pdflatex tests do.
    """
    var = f"SYMLOSS_REQUIRE_{FRAMEWORKS[module]}"
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if os.environ.get(var) == "1":
            pytest.fail(f"{var}=1 but {module} cannot be imported: {exc}", pytrace=False)
        pytest.skip(
            f"{module} is not installed (set {var}=1 to make this a failure)",
            allow_module_level=True,
        )


LOSSES = [symloss.get(name) for name in symloss.names()]


@functools.cache
def compiler_problem() -> str | None:
    """Why symloss's compiled backend cannot run here (None: it can)."""
    from symloss.numeric import compiled as _compiled

    i, n = sp.Symbol("i", integer=True), sp.Symbol("n", integer=True, positive=True)
    kernel = Kernel(sp.exp(sp.IndexedBase("y")[i]), [(i, n)])
    try:
        kernel._compiled(np.zeros(2))
    except _compiled.Unavailable as exc:
        return str(exc)
    return None


@pytest.fixture(autouse=True)
def _restore_settings():
    """Every test starts and ends with the same evaluation settings: a test may call
    ``symloss.configure(...)`` freely."""
    saved = config._SETTINGS
    yield
    config._SETTINGS = saved


@pytest.fixture
def configure():
    """``symloss.configure(...)`` for one test (restored by ``_restore_settings``)."""
    return symloss.configure


@pytest.fixture
def backend_c(configure):
    """Every kernel evaluation in the test runs the compiled C loop (symloss/numeric/compiled.py).

    Without a working C compiler the test skips, except where ``SYMLOSS_REQUIRE_CC=1``
    (as in CI, which installs gcc), where it fails.
    """
    problem = compiler_problem()
    if problem is not None:
        if os.environ.get("SYMLOSS_REQUIRE_CC") == "1":
            pytest.fail(f"SYMLOSS_REQUIRE_CC=1 but {problem}")
        pytest.skip(f"{problem} (set SYMLOSS_REQUIRE_CC=1 to make this a failure)")
    configure(backend="c")


def registry_params():
    """``pytest.mark.parametrize`` arguments over every registered loss, ids = names."""
    return pytest.mark.parametrize("loss", LOSSES, ids=[L.name for L in LOSSES])


@dataclass
class Case:
    """One drawn call: ``loss(pred, target, **kw)``."""

    pred: np.ndarray
    target: np.ndarray
    kw: dict = field(default_factory=dict)

    def __iter__(self):  # so that ``pred, target = case`` works
        return iter((self.pred, self.target))


def _elements(domain, size, margin=0.02):
    s = domain.set if domain is not None else sp.Interval(-sp.oo, sp.oo)
    if isinstance(s, sp.FiniteSet):
        return st.lists(st.sampled_from([float(v) for v in s]), min_size=size, max_size=size)
    if s == sp.Interval(0, 1):  # class labels or soft labels
        values = st.sampled_from([0.0, 1.0, 0.3, 0.75])
        return st.lists(values, min_size=size, max_size=size)
    lo = float(s.inf) + margin if s.inf.is_finite else -6.0
    hi = float(s.sup) - margin if s.sup.is_finite else 6.0
    if s.inf.is_finite and s.sup.is_infinite:
        # A scale such as (0, oo): near its end log y and 1/y have third derivatives
        # ~1/y^3, and central differences with step 1e-6 would miss by more than atol.
        lo, hi = float(s.inf) + 0.1, float(s.inf) + 6.0
    values = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.lists(values, min_size=size, max_size=size)


def _draw_rows(draw, n, m, one_hot):
    rows = []
    for _ in range(n):
        if one_hot or draw(st.booleans()):
            row = np.zeros(m)
            row[draw(st.integers(0, m - 1))] = 1.0
        else:
            w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=m, max_size=m)))
            row = w / w.sum()
        rows.append(row)
    return np.array(rows)


@st.composite
def inputs(draw, loss, max_n=5, max_m=4, kink_margin=1e-3):
    """A :class:`Case` drawn inside the loss's domains and constraints, away from kinks."""
    n = draw(st.integers(1, max_n))
    ndim = len(loss.input_indices)
    shape = (n,) if ndim == 1 else (n, draw(st.integers(2, max_m)))
    size = int(np.prod(shape))
    doms = loss.domains
    pred = np.array(draw(_elements(doms.get(str(loss.pred.label)), size))).reshape(shape)
    if any(c.name == "one_hot" for c in loss.constraints):
        target = _draw_rows(draw, n, shape[1], one_hot=False)
    else:
        target = np.array(draw(_elements(doms.get(str(loss.target.label)), size))).reshape(shape)
    kw = {
        str(b.label): np.array(draw(_elements(doms.get(str(b.label)), size))).reshape(shape)
        for b in loss.extra_inputs
    }
    case = Case(pred, target, kw)
    for kink in (*loss.kinks, *_data_switches(loss)):
        values = kink_values(loss, kink, case)
        assume(np.all(np.abs(values) > kink_margin))
    return case


def _data_switches(loss):
    """Switch points of pieces that involve no prediction (MAPE's max(|t|, eps)).

    They are no kinks of the loss in the prediction, but at MAPE's t = 0 the loss is
    ~1/eps and finite differences of the mean lose every digit, so targets keep away.
    """
    letters = {v for v, _ in loss.input_indices}
    found = []
    for arg in _calculus.kink_arguments(derivatives.of(loss).kernel_summand):
        elements = arg.atoms(sp.Indexed)
        if (
            elements
            and not arg.has(loss.pred)
            and all(set(e.indices) <= letters for e in elements)
            and arg not in found
        ):
            found.append(arg)
    return found


@functools.cache
def _kink_kernel(kink, layout):
    return Kernel(kink, layout)  # compiled once, not once per drawn example


def kink_values(loss, kink, case):
    """The kink expression evaluated element-wise at a drawn case."""
    batch = evaluate.prepare(loss, case.pred, case.target, None, dict(case.kw))
    kernel = _kink_kernel(kink, tuple(loss.input_indices))
    return np.broadcast_to(kernel(batch.arrays, batch.sizes), batch.shape)

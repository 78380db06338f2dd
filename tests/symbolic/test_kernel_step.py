"""The derivation's last step, "What the kernel computes", is the kernel's own form and
equals the definition.

Every form of the step (the definition, the stabilised form, the form the kernel is
compiled from) is evaluated at 50 significant digits with mpmath (through SymPy's
``evalf``), each kernel-only function written back as its textbook definition
(``softplus(x) = log(1 + e^x)``, ``xlogy(a, b) = a log b`` with 0 at a = 0, ...), at
points drawn inside the loss's domains and, on logits, at ±30 and ±1e4.  The reference
is the definition itself: no value computed by the kernel under test.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import inputs, registry_params
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy import Indexed, Sum

import symloss
from symloss.numeric import evaluate
from symloss.symbolic.derivation import KERNEL_TITLE

DIGITS = 50

#: Each kernel-only function as its textbook definition, by class name.
TEXTBOOK = {
    "softplus": lambda x: sp.log(1 + sp.exp(x)),
    "relu": lambda x: sp.Max(x, 0),
    "maximum": sp.Max,
    "minimum": sp.Min,
    "log1p": lambda x: sp.log(1 + x),
    "expm1": lambda x: sp.exp(x) - 1,
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
    "xlogy": lambda a, b: sp.Piecewise((0, sp.Eq(a, 0)), (a * sp.log(b), True)),
    "xdivy": lambda a, b: sp.Piecewise((0, sp.Eq(a, 0)), (a / b, True)),
    "where_nonneg": lambda x, a, b: sp.Piecewise((a, x >= 0), (b, True)),
}


def high_precision(loss, form, arrays: dict, sizes: dict, where: tuple) -> sp.Float:
    """*form* (a summand in the loss's index letters) at 50 digits."""
    letters = {v: sp.Integer(q) for (v, _), q in zip(loss.indices, where)}
    e = form.subs({s: sp.Integer(v) for s, v in sizes.items()}).subs(letters)
    for _ in range(4):
        e = e.doit()
        e = e.replace(
            lambda x: type(x).__name__ in ("softmax", "logsumexp"), lambda x: x.rewrite(sp.exp)
        )
        e = e.replace(
            lambda x: type(x).__name__ == "rowmax",
            lambda x: sp.Max(
                *(x.function.subs(x.limits[0][0], q) for q in range(1, 1 + int(x.limits[0][2])))
            ),
        )
        e = e.subs({s: sp.Integer(v) for s, v in sizes.items()}).doit()
        e = e.replace(
            lambda x: isinstance(x, Indexed) and all(q.is_Integer for q in x.indices),
            lambda x: sp.Rational(arrays[str(x.base.label)][tuple(int(q) - 1 for q in x.indices)]),
        )
        for name, textbook in TEXTBOOK.items():
            e = e.replace(
                lambda x, name=name: type(x).__name__ == name, lambda x, f=textbook: f(*x.args)
            )
    value = sp.N(e, DIGITS)
    assert value.is_number and not value.has(Sum), form
    return value


def check(loss, pred, target, kw, where):
    step = loss.derivation()[-1]
    assert step.title == KERNEL_TITLE
    arrays = {str(loss.pred.label): pred, str(loss.target.label): target, **kw}
    scalars = {}
    for prm in loss.params:
        value = loss.param_values[prm.name]
        if isinstance(prm.symbol, sp.IndexedBase):
            vec = np.ones(pred.shape[-1]) if value is None else np.asarray(value, float)
            arrays[str(prm.symbol.label)] = vec
        else:
            scalars[prm.symbol] = sp.Rational(value)
    sizes = {size: pred.shape[axis] for axis, (_, size) in enumerate(loss.input_indices)}
    definition, *kernel_forms = (f.subs(scalars) for f in step.rhs)
    values = [high_precision(loss, f, arrays, sizes, where) for f in kernel_forms]
    try:
        reference = high_precision(loss, definition, arrays, sizes, where)
    except TypeError:  # a NaN compared: 0 log 0 in the definition
        reference = sp.nan
    if reference.has(sp.nan, sp.zoo):
        # 0 log 0 in the definition: its value there is the limit, taken at t = 1e-60.
        nudged = dict(arrays)
        nudged[str(loss.target.label)] = np.where(target == 0, 1e-60, target)
        reference = high_precision(loss, definition, nudged, sizes, where)
    for v in values:
        assert abs(v - reference) <= sp.Float(10) ** (10 - DIGITS) * max(1, abs(reference)), (
            v,
            reference,
        )


def test_the_step_shows_the_very_form_the_kernel_is_compiled_from():
    for name in ("bce_logits", "cce_logits", "dice", "bce"):
        loss = symloss.get(name)
        stable = evaluate.of(loss).stable_summand
        step = loss.derivation()[-1]
        assert stable in step.rhs, name
        assert step.rhs[0] == loss.scale * loss.term


def test_bce_logits_kernel_is_the_softplus_form():
    """max(z, 0) - z t + log1p(e^-|z|), in the form the kernel spends: its text shows
    the relu and the log1p of e^-|z|, and says why."""
    step = symloss.get("bce_logits").derivation()[-1]
    text = step.latex()
    assert r"\max\left(0, z_{i}\right)" in text
    assert r"\operatorname{log1p}{\left(e^{- \left|{z_{i}}\right|} \right)}" in text
    assert "overflow" in step.note and "softplus" in step.note


@registry_params()
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_kernel_forms_equal_the_definition_at_50_digits(loss, data):
    case = data.draw(inputs(loss, max_n=2, max_m=3))
    where = tuple(data.draw(st.integers(1, size)) for size in case.pred.shape)
    check(loss, case.pred, case.target, case.kw, where[: len(loss.indices)])


@pytest.mark.parametrize(
    "loss",
    [L for L in symloss.catalog() if L.composition is not None or str(L.pred.label) == "z"],
    ids=lambda L: L.name,
)
@pytest.mark.parametrize("logit", [30.0, -30.0, 1e4, -1e4])
def test_kernel_forms_equal_the_definition_at_large_logits(loss, logit):
    case_shape = (2,) if len(loss.input_indices) == 1 else (2, 3)
    pred = np.full(case_shape, 0.5)
    pred.flat[0] = logit
    if len(case_shape) == 2:
        target = np.eye(3)[[0, 2]]
    elif not loss.domains[str(loss.target.label)].any_violation(np.array([-1.0])):
        target = np.array([-1.0, 1.0])
    else:
        target = np.array([1.0, 0.0])
    check(loss, pred, target, {}, (1,) * len(loss.indices))

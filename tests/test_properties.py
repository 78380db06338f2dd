"""The same property checks for every registered loss (parametrised over the registry)."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
import sympy as sp
from conftest import LOSSES, inputs, registry_params
from hypothesis import given
from hypothesis import strategies as st
from shared import numeric_grad
from sympy.concrete.expr_with_limits import ExprWithLimits

import symloss
from symloss.numeric import evaluate
from symloss.numeric import kernel as _numeric
from symloss.symbolic import derivatives


@registry_params()
@given(data=st.data())
def test_gradient_matches_central_differences(loss, data):
    case = data.draw(inputs(loss))
    pred, target, kw = case.pred, case.target, case.kw
    np.testing.assert_allclose(
        loss.grad(pred, target, **kw), numeric_grad(loss, pred, target, **kw), rtol=1e-5, atol=1e-7
    )


@registry_params()
@given(data=st.data())
def test_hessian_matches_differences_of_the_gradient(loss, data):
    case = data.draw(inputs(loss))
    pred, target, kw = case.pred, case.target, case.kw
    h = 1e-6
    hess = loss.hess(pred, target, **kw)
    if loss.separable:
        # Diagonal Hessian: perturbing every element at once differentiates each gradient
        # element by its own input only.
        fd = (loss.grad(pred + h, target, **kw) - loss.grad(pred - h, target, **kw)) / (2 * h)
        assert hess.shape == pred.shape
    else:
        fd = np.zeros(pred.shape + pred.shape[-1:])
        for col in range(pred.shape[-1]):
            up, down = pred.copy(), pred.copy()
            up[:, col] += h
            down[:, col] -= h
            fd[:, :, col] = (loss.grad(up, target, **kw) - loss.grad(down, target, **kw)) / (2 * h)
    np.testing.assert_allclose(hess, fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", [L for L in LOSSES if L.nonnegative], ids=lambda L: L.name)
@given(data=st.data())
def test_value_is_nonnegative_on_the_domain(loss, data):
    case = data.draw(inputs(loss))
    assert loss(case.pred, case.target, **case.kw) >= 0


def _reducible_sums(expr):
    """Sums a derivation should have evaluated: over a delta, or constant in their index."""
    return [
        s
        for s in expr.atoms(sp.Sum)
        if s.has(sp.KroneckerDelta) or any(v not in s.function.free_symbols for v, *_ in s.limits)
    ]


def _index_piecewise(expr):
    """Piecewise whose conditions test index letters (1 <= a <= n), as doit() leaves."""

    def index_letters(cond):
        values = cond.xreplace({x: sp.Dummy() for x in cond.atoms(sp.Indexed)})
        return {s for s in values.free_symbols if s.is_integer}

    return [p for p in expr.atoms(sp.Piecewise) if any(index_letters(c) for _, c in p.args)]


@registry_params()
def test_gradient_is_closed_form(loss):
    """No KroneckerDelta, no index-bound Piecewise, no sum that could be evaluated.

    Row sums that are quantities of one sample (the cosine's sum_k y_ik t_ik) stay,
    and so does a Piecewise on values (Huber's |e| <= delta).
    """
    for expr in (loss.gradient(), loss.hessian()):
        assert not _reducible_sums(expr), expr
        assert not _index_piecewise(expr), expr
    g = loss.gradient()
    assert not g.has(sp.KroneckerDelta), g
    # Hide row quantities; then only the element's own letters, sizes, hyperparameters
    # and extra inputs remain.
    hidden = {a for a in sp.preorder_traversal(g) if isinstance(a, ExprWithLimits)}
    g = g.xreplace({a: sp.Dummy() for a in hidden})
    params = {
        p.symbol.label if isinstance(p.symbol, sp.IndexedBase) else p.symbol for p in loss.params
    }
    extra = {b.label for b in loss.extra_inputs} | {
        b[loss.element.indices] for b in loss.extra_inputs
    }
    weights = {q for q in g.free_symbols if isinstance(q, sp.Indexed) and q.base.label in params}
    allowed = (
        {loss.pred.label, loss.target.label, symloss.n, symloss.m}
        | params
        | extra
        | weights
        | {v for v, _ in loss.input_indices}
        | {loss.element, loss.target[loss.element.indices]}
    )
    free = {q for q in g.free_symbols if not isinstance(q, sp.Dummy)}
    assert free <= allowed, free - allowed


@functools.cache
def _raw_and_clean_kernels(name):
    """(raw, clean) kernel pairs of the gradient and the Hessian, compiled once per loss."""
    loss = symloss.get(name)
    raw_g, clean_g, _ = derivatives.of(loss).gradient
    raw_h, clean_h = derivatives.of(loss).hessian
    layout = loss.input_indices
    hess_layout = layout if loss.separable else (*layout, (loss.hessian_index, layout[-1][1]))
    return [
        (_numeric.Kernel(raw, lay), _numeric.Kernel(clean, lay))
        for raw, clean, lay in ((raw_g, clean_g, layout), (raw_h, clean_h, hess_layout))
    ]


@registry_params()
@given(data=st.data())
def test_clean_forms_equal_the_raw_derivatives(loss, data):
    """The displayed gradient/Hessian and the kernel's raw forms are the same function."""
    case = data.draw(inputs(loss))
    batch = evaluate.prepare(loss, case.pred, case.target, None, dict(case.kw))
    for raw, clean in _raw_and_clean_kernels(loss.name):
        a = raw(batch.arrays, batch.sizes)
        b = clean(batch.arrays, batch.sizes)
        # Two algebraically equal forms round differently where terms cancel (a few
        # ulps of O(1) terms); the drawn inputs keep every term O(1), so 1e-12 absolute
        # is far below any real difference.
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def _minimum_at_target(loss) -> bool:
    g = loss.gradient().xreplace({loss.element: loss.target[loss.element.indices]})
    return sp.simplify(g) == 0


def test_minimum_at_target_applies_where_the_math_says():
    # Hand derivation: SSE and BCE vanish at y = t; CCE's gradient there is -1/n because
    # its minimum is on the simplex, not where the free gradient vanishes.
    applies = {L.name for L in LOSSES if L.composition is None and _minimum_at_target(L)}
    assert {"sum_squared_error", "binary_cross_entropy"} <= applies
    assert "categorical_cross_entropy" not in applies


@pytest.mark.parametrize(
    "loss",
    [L for L in LOSSES if L.composition is None and _minimum_at_target(L)],
    ids=lambda L: L.name,
)
@given(data=st.data())
def test_minimum_at_pred_equals_target(loss, data):
    case = data.draw(inputs(loss))
    target, kw = case.target, case.kw
    target = np.clip(target, 0.05, 0.95) if loss.domains["y"].set.sup == 1 else target
    np.testing.assert_allclose(loss.grad(target, target, **kw), 0, atol=1e-12)
    for shift in (-0.01, 0.01):
        assert loss(target + shift, target, **kw) >= loss(target, target, **kw)


def test_loss_rejects_undeclared_symbols():
    y, t = symloss.array("y"), symloss.array("t")
    i, alpha = symloss.index("i"), sp.Symbol("alpha")
    with pytest.raises(ValueError, match="undeclared symbols: alpha"):
        symloss.Loss("x", "x", alpha * (y[i] - t[i]) ** 2, 1, ((i, symloss.n),), y, t)


def test_register_refuses_duplicates():
    with pytest.raises(ValueError, match="already registered as 'bce'"):
        symloss.register(dataclasses.replace(symloss.get("sse"), name="new_name", aliases=("bce",)))
    with pytest.raises(ValueError, match="already registered as 'sum_squared_error'"):
        symloss.register(dataclasses.replace(symloss.get("sse"), aliases=()))
    assert "new_name" not in symloss.names()


def test_unknown_name_lists_close_matches():
    with pytest.raises(KeyError, match="did you mean binary_cross_entropy"):
        symloss.get("binary_cross_entropi")


def test_names_are_sorted_and_complete():
    assert symloss.names() == sorted(symloss.names())
    assert {
        "sum_squared_error",
        "binary_cross_entropy",
        "categorical_cross_entropy",
        "sigmoid_binary_cross_entropy",
        "softmax_cross_entropy",
    } <= set(symloss.names())
    for alias, name in {
        "sse": "sum_squared_error",
        "bce": "binary_cross_entropy",
        "cce": "categorical_cross_entropy",
        "bce_logits": "sigmoid_binary_cross_entropy",
        "cce_logits": "softmax_cross_entropy",
    }.items():
        assert symloss.get(alias) is symloss.get(name)

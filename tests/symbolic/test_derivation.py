"""Step-by-step derivations: every equality holds, and the last one is the loss's gradient.

Each form of each step is evaluated numerically at points drawn inside the loss's
domains (sums expanded, Kronecker deltas evaluated) and compared with the
other forms of its step and, where the step is about dE/d(input), with the loss's own
gradient kernel.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from conftest import LOSSES, inputs, registry_params
from hypothesis import given, settings
from hypothesis import strategies as st
from sympy import Derivative, Indexed, KroneckerDelta

import symloss
from symloss.symbolic.derivation import HESSIAN_TITLE, KERNEL_TITLE, E, Step, derivation
from symloss.symbolic.naming import expand
from symloss.symbols import sigmoid, softmax

COMPOSED = [L for L in LOSSES if L.composition is not None]
DIRECT = [L for L in LOSSES if L.composition is None]


# ---------------------------------------------------------------------- numeric evaluation
class Point:
    """Concrete sizes, index values and arrays (1-based indices, as in the formulas)."""

    def __init__(self, loss, pred, target, where, kw=None):
        self.loss = loss
        self.kw = dict(kw or {})
        self.arrays = {str(loss.pred.label): pred, str(loss.target.label): target, **self.kw}
        self.scalars = {}
        for prm in loss.params:
            value = loss.param_values[prm.name]
            if isinstance(prm.symbol, sp.IndexedBase):
                vec = np.ones(pred.shape[-1]) if value is None else np.asarray(value, float)
                self.arrays[str(prm.symbol.label)] = vec
            else:
                self.scalars[prm.symbol] = sp.Float(value)
        self.sizes = {size: pred.shape[axis] for axis, (_, size) in enumerate(loss.input_indices)}
        for _, size in loss.indices:
            self.sizes.setdefault(size, pred.shape[0])
        # Free index letters: the element's own, and any other letter (e.g. the k of
        # dy_ik/dz_ij) set to a second valid value.
        self.where = where
        comp = loss.composition
        if comp is not None:
            y = np.zeros_like(pred)
            for idx in np.ndindex(pred.shape):
                subs = dict(zip(comp.element.indices, (q + 1 for q in idx)))
                y[idx] = self.value(comp.value.xreplace(subs))
            self.arrays[str(comp.element.base.label)] = y

    def index_values(self, expr):
        letters = {v: self.where[pos] for pos, (v, _) in enumerate(self.loss.input_indices)}
        out = {}
        for s in sorted(expr.free_symbols, key=str):
            if isinstance(s, sp.Symbol) and s.is_integer and s not in self.sizes:
                if s in letters:
                    out[s] = letters[s]
                else:  # another class of the same sample
                    size = self.sizes[self.loss.input_indices[-1][1]]
                    out[s] = size - self.where[-1] + 1
        return out

    def value(self, expr) -> float:
        # subs, not xreplace: it leaves indices bound by a Sum (or a row maximum) alone.
        e = expr.subs({k: sp.Integer(v) for k, v in self.sizes.items()}).subs(self.scalars)
        e = e.subs({k: sp.Integer(v) for k, v in self.index_values(e).items()})
        for _ in range(6):  # expanding a row maximum exposes new elements: repeat
            before = e
            e = e.doit()
            e = e.replace(lambda x: isinstance(x, softmax), lambda x: sp.Float(self._softmax(x)))
            e = e.replace(lambda x: isinstance(x, sigmoid), lambda x: 1 / (1 + sp.exp(-x.args[0])))
            e = e.replace(
                lambda x: isinstance(x, Indexed) and all(q.is_Integer for q in x.indices),
                lambda x: sp.Float(
                    self.arrays[str(x.base.label)][tuple(int(q) - 1 for q in x.indices)]
                ),
            )
            e = e.replace(lambda x: type(x).__name__ == "argmax_share", self._argmax_share)
            e = e.replace(lambda x: type(x).__name__ == "rowmax", lambda x: sp.Max(*self._row(x)))
            if e == before:
                break
        return float(e)

    @staticmethod
    def _row(node):
        """The values of a row maximum's expression, one per index value."""
        ((var, lo, hi),) = node.limits
        return [node.function.subs(var, v) for v in range(int(lo), int(hi) + 1)]

    def _argmax_share(self, node):
        """1/c where the element is one of the c tied maxima of the row, else 0."""
        row, d = node.args
        values = [float(self.value(v)) for v in self._row(row)]
        top = max(values)
        tied = [abs(v - top) <= 1e-12 * max(1.0, abs(top)) for v in values]
        if not d.is_Integer:
            return node
        return sp.Rational(1, sum(tied)) if tied[int(d) - int(row.limits[0][1])] else sp.S.Zero

    def _softmax(self, node) -> float:
        base, r, c = node.args
        row = self.arrays[str(base.label)][int(r) - 1]
        w = np.exp(row - row.max())
        return float(w[int(c) - 1] / w.sum())


def jacobian_by_differences(point, lhs, h=1e-6):
    """Central difference of the activation output ``lhs.expr`` by the logit ``lhs.variables``."""
    loss, comp = point.loss, point.loss.composition
    (logit,) = lhs.variables
    out = lhs.expr
    at = point.index_values(out) | point.index_values(logit)
    out_idx = tuple(int(q.xreplace(at)) for q in out.indices)
    logit_idx = tuple(int(q.xreplace(at)) - 1 for q in logit.indices)
    z = point.arrays[str(loss.pred.label)]
    values = []
    for sign in (1, -1):
        shifted = z.copy()
        shifted[logit_idx] += sign * h
        moved = Point(loss, shifted, point.arrays[str(loss.target.label)], point.where, point.kw)
        values.append(moved.arrays[str(comp.element.base.label)][tuple(q - 1 for q in out_idx)])
    return (values[0] - values[1]) / (2 * h)


def concrete(form) -> bool:
    """Forms that are numbers once evaluated (not the symbolic chain rule dE/dy * dy/dz)."""
    return not form.has(Derivative)


@st.composite
def points(draw, loss):
    case = draw(inputs(loss, max_n=2, max_m=3))
    where = tuple(draw(st.integers(1, size)) for size in case.pred.shape)
    return Point(loss, case.pred, case.target, where, case.kw)


# ---------------------------------------------------------------------- every loss
def gradient_steps(steps):
    """The steps of the gradient: those before the Hessian's or the kernel's."""
    ends = [p for p, s in enumerate(steps) if s.title in (HESSIAN_TITLE, KERNEL_TITLE)]
    end = min(ends, default=len(steps))
    return steps[:end]


@registry_params()
def test_derivation_ends_at_the_gradient_then_the_hessian(loss):
    steps = derivation(loss)
    assert steps and all(isinstance(s, Step) for s in steps)
    grad = gradient_steps(steps)
    assert grad[-1].rhs[-1] == loss.gradient()
    assert grad[-1].lhs == Derivative(E, loss.element)
    assert grad[-1].equation == sp.Eq(Derivative(E, loss.element), loss.gradient(), evaluate=False)
    # Then the Hessian as Loss.hessian() gives it, where it reads in named quantities.
    rest = steps[len(grad) :]
    assert [s.title for s in rest] in ([], [HESSIAN_TITLE])
    if rest:
        assert rest[0].where
        lhs, hess = loss.equation("hessian")
        if rest[0].lhs != lhs:  # the block's second index renamed away from a name (p)
            (old,) = set(lhs.variables[-1].indices) - set(loss.element.indices)
            (new,) = set(rest[0].lhs.variables[-1].indices) - set(loss.element.indices)
            assert str(old) in {str(q.name.base.label) for q in loss.named}
            lhs, hess = lhs.xreplace({old: new}), hess.xreplace({old: new})
        assert (rest[0].lhs, rest[0].rhs) == (lhs, (hess,))
    assert HESSIAN_TITLE not in [s.title for s in derivation(loss, named=False)]
    # Loss.derivation() adds the kernel's step, last.
    assert loss.derivation()[-1].title == KERNEL_TITLE


@registry_params()
def test_constraints_named_are_those_the_gradient_uses(loss):
    named = [s.constraint for s in derivation(loss) if s.constraint is not None]
    assert set(named) == set(loss.constraints_used())
    for s in derivation(loss):
        if s.constraint is not None:
            assert s.used_as is not None
            # The instance is the constraint up to index renaming.
            assert s.constraint.apply(s.used_as.lhs) == (s.constraint.rhs, True)


def hessian_reference(point, loss, lhs):
    """Loss.hess at the point: the diagonal entry, or the entry of the sample's block."""
    pred, target = (point.arrays[str(loss.pred.label)], point.arrays[str(loss.target.label)])
    h = loss.hess(pred, target, **point.kw)
    at = tuple(q - 1 for q in point.where)
    if loss.separable:
        return h[at]
    partner = lhs.variables[-1]
    (k,) = [int(q.xreplace(point.index_values(partner))) - 1 for q in partner.indices[-1:]]
    return h[(*at, k)]


@registry_params()
@settings(max_examples=5)
@given(data=st.data())
def test_every_equality_holds_numerically(loss, data):
    """Every form of every step (the named ones with their "where" expanded) is the
    same number; the gradient steps equal Loss.grad, the Hessian's Loss.hess."""
    point = data.draw(points(loss))
    pred, target = (point.arrays[str(loss.pred.label)], point.arrays[str(loss.target.label)])
    at = tuple(q - 1 for q in point.where)
    expected = {Derivative(E, loss.element): loss.grad(pred, target, **point.kw)[at]}
    comp = loss.composition
    if comp is not None:
        base = symloss.get(comp.base)
        y = point.arrays[str(comp.element.base.label)]
        expected[Derivative(E, comp.element)] = base.grad(y, target, **point.kw)[at]
    for step in derivation(loss):  # the kernel's step: tests/symbolic/test_kernel_step.py
        forms = [f for f in step.rhs if concrete(f)]
        forms += [expand(f, step.where) for f in step.named if concrete(f)]
        values = [point.value(f) for f in forms]
        assert values, step.title
        if step.title == HESSIAN_TITLE:
            reference = hessian_reference(point, loss, step.lhs)
        elif step.lhs in expected:
            reference = expected[step.lhs]
        elif comp is not None and (
            isinstance(step.lhs, Derivative) and step.lhs.expr.base == comp.element.base
        ):
            reference = jacobian_by_differences(point, step.lhs)
        else:
            reference = values[0]
        finite_differences = isinstance(step.lhs, Derivative) and isinstance(step.lhs.expr, Indexed)
        rtol = 1e-6 if finite_differences else 1e-9
        np.testing.assert_allclose(values, reference, rtol=rtol, atol=1e-9, err_msg=step.title)


@registry_params()
def test_steps_print_in_both_styles_and_as_text(loss):
    for step in loss.derivation():
        standard, article = step.latex("standard"), step.latex("article")
        start = r"\ell_{" if step.title == KERNEL_TITLE else r"\frac{\partial"
        assert standard.startswith(start), step.title
        assert standard.count(" = ") >= len(step.rhs)
        assert article != standard or r"\log" not in standard
        aligned = step.latex(aligned=True)
        assert aligned.count("&=") == len(step.rhs)
        text = step.pretty()
        assert text.splitlines()[0] == step.title
        assert ("ℓ" if step.title == KERNEL_TITLE else "∂") in text
        if step.where:
            assert r"\text{where }" in standard and r"\text{where }" in aligned
            assert "where " in text
            assert len(step.named) == len(step.rhs)
        if step.constraint is not None:
            assert step.constraint.name in text
            assert step.constraint_latex().endswith("= 1")
        else:
            assert step.constraint_latex() == ""


def test_unknown_style_is_refused():
    step = derivation(symloss.get("bce"))[0]
    with pytest.raises(ValueError, match="unknown style"):
        step.latex("fancy")


# ---------------------------------------------------------------------- losses on logits
@pytest.mark.parametrize("loss", COMPOSED, ids=[L.name for L in COMPOSED])
def test_logits_losses_follow_the_chain_rule_in_four_steps(loss):
    comp = loss.composition
    steps = gradient_steps(derivation(loss))
    assert [s.title for s in steps] == [
        "Gradient of the loss by the prediction",
        "Derivative of the activation",
        "Chain rule",
        "Simplify",
    ]
    # 1. dE/dy is the base loss's gradient.
    assert steps[0].lhs == Derivative(E, comp.element)
    assert steps[0].rhs == (symloss.get(comp.base).gradient(),)
    # 2. dy/dz in the logits, then in the prediction.
    assert isinstance(steps[1].lhs, Derivative)
    assert steps[1].rhs[0].has(type(comp.value))
    assert not steps[1].rhs[-1].has(type(comp.value))
    # 3. The product of the two, as derivatives and as expressions.
    assert steps[2].rhs[0].has(Derivative)
    # 4. Ends at (activation - t)/n, written in the logits.
    assert steps[3].rhs[-1] == loss.gradient()


def test_sigmoid_steps():
    from symloss.symbols import array, index

    y, z, t = array("y"), array("z"), array("t")
    i = index("i")
    steps = derivation(symloss.get("bce_logits"))
    s = sigmoid(z[i])
    assert steps[1].rhs == (s * (1 - s), y[i] * (1 - y[i]))
    assert not steps[2].rhs[-1].has(sp.Sum)  # the sigmoid couples nothing: no sum
    assert steps[3].rhs == ((y[i] - t[i]) / symloss.n, (s - t[i]) / symloss.n)
    assert steps[3].constraint is None


def test_softmax_steps_name_the_one_hot_constraint_where_it_is_used():
    from symloss.symbols import array, index

    y, z, t = array("y"), array("z"), array("t")
    i, j, k = index("i"), index("j"), index("k")
    n, m = symloss.n, symloss.m
    L = symloss.get("cce_logits")
    steps = derivation(L)
    # 2. The softmax Jacobian y_ik (delta_jk - y_ij).
    assert steps[1].lhs == Derivative(y[i, k], z[i, j])
    assert steps[1].rhs[-1] == y[i, k] * (KroneckerDelta(j, k) - y[i, j])
    # 3. A sum over the classes k.
    assert steps[2].rhs[-1].has(sp.Sum)
    assert steps[2].rhs[-1].limits == ((k, 1, m),)
    # Only step 4 uses the constraint, as sum_k t_ik = 1.
    assert [s.constraint for s in steps[:3]] == [None, None, None]
    assert steps[3].constraint.name == "one_hot"
    assert steps[3].used_as == sp.Eq(sp.Sum(t[i, k], (k, 1, m)), 1, evaluate=False)
    assert steps[3].constraint_latex() == r"\sum_{k=1}^{m} t_{ik} = 1"
    # Before the constraint the form is the general gradient; after it, (y - t)/n.
    general = (y[i, j] * sp.Sum(t[i, k], (k, 1, m)) - t[i, j]) / n
    assert general in steps[3].rhs
    assert (y[i, j] - t[i, j]) / n in steps[3].rhs
    assert steps[3].rhs.index(general) < steps[3].rhs.index((y[i, j] - t[i, j]) / n)
    assert "uses one_hot" in steps[3].pretty()


# ---------------------------------------------------------------------- other losses
@pytest.mark.parametrize("loss", DIRECT, ids=[L.name for L in DIRECT])
def test_other_losses_differentiate_collapse_simplify(loss):
    steps = gradient_steps(derivation(loss))
    titles = [s.title for s in steps]
    # "Simplify" is dropped where it would only restate the collapsed sum (Huber).
    assert titles in (
        ["Differentiate under the sum", "Collapse the sum", "Simplify"],
        ["Differentiate under the sum", "Collapse the sum"],
    )
    assert steps[0].rhs[0].has(KroneckerDelta) and steps[0].rhs[0].has(sp.Sum)
    assert not steps[1].rhs[-1].has(KroneckerDelta)
    # The summation letters are fresh: none of them is the element's own.
    (first,) = steps[0].rhs
    (total,) = [a for a in first.args if isinstance(a, sp.Sum)]
    bound = {v for v, *_ in total.limits}
    assert not bound & set(loss.element.indices)


def test_sse_derivation_reads_like_the_textbook():
    steps = derivation(symloss.get("sse"), named=False)
    assert steps[0].latex() == (
        r"\frac{\partial E}{\partial y_{k}} = \frac{1}{2}\sum_{l=1}^{n} "
        r"2 \left(y_{l} - t_{l}\right) \delta_{k l}"
    )
    assert gradient_steps(steps)[-1].latex() == (
        r"\frac{\partial E}{\partial y_{k}} = y_{k} - t_{k}"
    )
    assert steps == gradient_steps(steps)  # its Hessian, 1, reads as well expanded


def test_kronecker_delta_prints_as_a_bracket_next_to_a_symbol_called_delta():
    from symloss.symbols import array, index

    y, t = array("y"), array("t")
    i, k = index("i"), index("k")
    delta = sp.Symbol("delta", positive=True)
    body = sp.Sum(delta * (y[k] - t[k]) * KroneckerDelta(i, k), (k, 1, symloss.n))
    step = Step("Differentiate under the sum", Derivative(E, y[i]), (body,), brackets=True)
    assert step.latex() == (
        r"\frac{\partial E}{\partial y_{i}} = \sum_{k=1}^{n} \delta \left(y_{k} - t_{k}\right) "
        r"\left[i = k\right]"
    )
    assert "[i = k]" in step.pretty()
    plain = Step("Differentiate under the sum", Derivative(E, y[i]), (body,))
    assert r"\delta_{i k}" in plain.latex()


@registry_params()
def test_no_kronecker_delta_is_confused_with_a_parameter(loss):
    from symloss.symbolic.derivation import _delta_clash

    text = " ".join(s.latex() for s in derivation(loss))
    if _delta_clash(loss):
        assert r"\delta_{" not in text


@pytest.mark.parametrize("loss", symloss.catalog(), ids=lambda L: L.name)
def test_no_step_restates_the_previous_one(loss):
    """A step whose formula is the previous step's (up to index names, or as printed
    with the named quantities) does nothing."""
    from symloss.symbolic.derivation import same_form

    for steps in (loss.derivation(), loss.derivation(named=False)):
        for a, b in zip(steps, steps[1:]):
            assert not same_form(a.rhs[-1], b.rhs[0]), (a.title, b.title)
            shown = symloss.latex_expr(a.shown[-1]), symloss.latex_expr(b.shown[0])
            assert shown[0] != shown[1], (a.title, b.title)
        for step in steps:
            for x, y in zip(step.rhs, step.rhs[1:]):
                assert not same_form(x, y), step.title
            printed = [symloss.latex_expr(f) for f in step.shown]
            assert all(p != q for p, q in zip(printed, printed[1:])), step.title
            assert step.note, step.title  # every step says what it does
        assert gradient_steps(steps)[-1].rhs[-1] == loss.gradient()  # the result is unchanged


def test_notes_say_what_the_step_did():
    """Notes come from what happened: no delta is mentioned where there was none."""
    bce_logits = derivation(symloss.get("bce_logits"))
    assert "delta" not in bce_logits[3].note
    assert "cancels" in bce_logits[3].note
    cce_logits = derivation(symloss.get("cce_logits"))
    assert "Kronecker delta keeps the one term of the sum over k" in cce_logits[3].note
    assert "constraint" in cce_logits[3].note


def test_bce_simplify_shows_the_common_denominator():
    from symloss.symbols import array, index

    y, t = array("y"), array("t")
    i = index("i")
    (simplify,) = [s for s in derivation(symloss.get("bce")) if s.title == "Simplify"]
    over = (1 - y[i]) * y[i]
    # By hand: -(1/n) ((1 - y) t - (1 - t) y) / ((1 - y) y), whose numerator is t - y.
    assert sp.fraction(simplify.rhs[0].args[-1])[1] == over
    assert sp.expand(sp.fraction(simplify.rhs[1].args[-1])[0]) == t[i] - y[i]
    assert "common denominator" in simplify.note
    assert simplify.rhs[-1] == symloss.get("bce").gradient()

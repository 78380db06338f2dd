"""What a generated module needs to know about one loss, read from the Loss once.

:func:`spec` turns a :class:`~symloss.Loss` (used through its attributes only) into a
:class:`Spec`: plain data (names, domains, options, the stabilised kernel expressions)
from which :mod:`symloss.frameworks.codegen` writes the code.  The expressions are the
NumPy kernels' own (:class:`symloss.numeric.evaluate.Kernels`): the summand of the
sum-reduced loss, its gradient and its Hessian, after the stabilising rewrites.

Layer: :mod:`symloss.frameworks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy as sp
from sympy import IndexedBase

from symloss.errors import SymlossError
from symloss.frameworks.lowering import safe_identifier
from symloss.numeric import evaluate
from symloss.symbols import argmax_share, m, n, rowgap, rowmax, xdivy, xlogy

if TYPE_CHECKING:
    from symloss.core.loss import Loss


@dataclass(frozen=True)
class ArraySpec:
    """An input array: its variable, what it is called in messages, and its domain."""

    key: str  # the variable (the formula's letter: y, z, t, var)
    who: str  # "prediction", "logit", "target", or the key of an extra input
    lo: float
    lo_open: bool
    hi: float
    hi_open: bool
    members: tuple[float, ...] | None  # a finite set ({-1, 1}), else None
    text: str  # the accepted set as symloss prints it: "[0, 1]", "(-oo, oo)"
    description: str


@dataclass(frozen=True)
class ParamSpec:
    name: str  # the keyword (alpha, class_weight)
    symbol: sp.Basic
    value: object  # the bound value (a float, a tuple of floats, or None)
    vector: bool
    lo: float | None
    lo_open: bool
    hi: float | None
    hi_open: bool
    text: str
    description: str


@dataclass(frozen=True)
class Spec:
    """One loss, as the code generator sees it."""

    name: str  # a Python identifier: the loss's canonical name
    loss_name: str  # the loss's own name, as error messages give it
    title: str
    latex: tuple[str, str, str]  # loss, gradient, Hessian (or "")
    conventions: str
    references: tuple[str, ...]
    pred: ArraySpec
    target: ArraySpec
    extras: tuple[ArraySpec, ...]
    params: tuple[ParamSpec, ...]
    rank: int  # 1: element-wise, any shape; 2: rows (n, m)
    row_value: bool  # one value per row (cosine, Dice) rather than per element
    labels: bool  # integer class labels accepted for one-hot rows
    label_gather: bool  # with labels, a row's value is the value at t = 1 at its label
    row_sum: str | None  # the row constraint's description, when rows must sum to 1
    ignore_index: int | None
    label_reduction: bool
    mean_over: tuple[str, ...]
    reduction: str
    reductions: tuple[str, ...]
    layout: tuple  # ((i, n), (j, m)) of the input
    value: sp.Expr
    gradient: sp.Expr
    hessian: sp.Expr | None
    hessian_index: sp.Symbol | None  # the block's extra index (None: diagonal)
    hessian_error: str  # why there is no Hessian, when there is none

    @property
    def arrays(self) -> tuple[ArraySpec, ...]:
        return (self.pred, self.target, *self.extras)


def _interval(s):
    if isinstance(s, sp.Interval):
        return (
            float(s.inf),
            bool(s.left_open or s.inf.is_infinite),
            float(s.sup),
            bool(s.right_open or s.sup.is_infinite),
            None,
        )
    if isinstance(s, sp.FiniteSet):
        values = tuple(sorted(float(v) for v in s))
        return values[0], False, values[-1], False, values
    return float("-inf"), True, float("inf"), True, None


def _array(loss: Loss, base, who: str) -> ArraySpec:
    key = str(base.label)
    dom = loss.domains.get(key)
    if dom is None:
        return ArraySpec(key, who, float("-inf"), True, float("inf"), True, None, "(-oo, oo)", "")
    lo, lo_open, hi, hi_open, members = _interval(dom.accepted)
    return ArraySpec(key, who, lo, lo_open, hi, hi_open, members, dom.text(), dom.description)


def set_text(s: sp.Set) -> str:
    """A set in interval notation, as :func:`symloss.core.domain.set_text` writes it
    (that module is a layer up; ``tests/frameworks`` checks the two agree)."""
    if isinstance(s, sp.Interval):
        left = "(" if s.left_open or s.inf.is_infinite else "["
        right = ")" if s.right_open or s.sup.is_infinite else "]"
        return f"{left}{s.inf}, {s.sup}{right}"
    if isinstance(s, sp.FiniteSet):
        return "{" + ", ".join(map(str, s)) + "}"
    if isinstance(s, sp.Union):
        return " U ".join(set_text(part) for part in s.args)
    return sp.sstr(s)


def _param(loss: Loss, prm) -> ParamSpec:
    value = loss.param_values[prm.name]
    vector = isinstance(prm.symbol, IndexedBase)
    if vector and value is not None:
        value = tuple(float(v) for v in value)
    elif value is not None:
        value = float(value)
    lo = hi = None
    lo_open = hi_open = True
    text = "the reals"
    if prm.domain is not None:
        lo, lo_open, hi, hi_open, _ = _interval(prm.domain)
        text = set_text(prm.domain)
    return ParamSpec(
        prm.name, prm.symbol, value, vector, lo, lo_open, hi, hi_open, text, prm.description
    )


def gathers_at_labels(value: sp.Expr, target, layout) -> bool:
    """Whether a row's value at a one-hot target is the element value at t = 1, taken
    at the label's column: the value kernel reads the target only as its own element
    ``t[i, j]`` (not in a sum or a row maximum over the classes), and it vanishes where
    that element is 0.  Then, for integer labels, sum_j v(t_ij = [j = c_i]) =
    v(1) at j = c_i: a gather instead of a row sum over one-hot rows."""
    (i, _), (j, _) = layout
    key = str(target.label)
    element = sp.Dummy("t_element")
    elements = [x for x in value.atoms(sp.Indexed) if str(x.base.label) == key]
    if not elements or any(tuple(x.indices) != (i, j) for x in elements):
        return False
    alone = value.xreplace(dict.fromkeys(elements, element))
    if any(str(b.label) == key for b in alone.atoms(IndexedBase)):
        return False
    for node in sp.preorder_traversal(alone):
        if isinstance(node, (sp.Sum, rowmax, argmax_share, rowgap)) and node.has(element):
            return False  # the target summed, or maximised, over the classes
    at_zero = alone.xreplace({element: sp.S.Zero}).replace(
        lambda e: isinstance(e, (xlogy, xdivy)) and e.args[0] == 0, lambda e: sp.S.Zero
    )
    # (simplify only small leftovers: a False keeps the one-hot rows, which are right)
    return at_zero == 0 or (sp.count_ops(at_zero) < 40 and sp.simplify(at_zero) == 0)


def spec(loss: Loss, name: str | None = None) -> Spec:
    """The :class:`Spec` of *loss* (its expressions derived and stabilised, as the
    NumPy kernels' are).  *name* overrides the function name (default the loss's)."""
    kernels = evaluate.of(loss)
    derived = kernels.derived
    value = kernels.stable(derived.kernel_summand)
    gradient = kernels.stable(derived.kernel_gradient[0])
    hessian = hessian_index = None
    error = ""
    try:
        hessian = kernels.stable(derived.kernel_hessian)
        hessian_index = None if loss.separable else derived.hessian_index
    except (SymlossError, ValueError, TypeError, NotImplementedError) as exc:
        error = f"the Hessian of {loss.name} could not be derived: {exc}"
    role = "logit" if loss.composition is not None else "prediction"
    rank = len(loss.input_indices)
    mean_over = tuple(str(s) for s in (loss.mean_over or (loss.indices[0][1],)))
    constraints = {c.name: c for c in loss.constraints}
    one_hot = constraints.get("one_hot")
    row_value = len(loss.indices) < rank
    labels = one_hot is not None and rank == 2
    latex = (
        loss.latex(),
        loss.latex(part="gradient"),
        loss.latex(part="hessian") if hessian is not None else "",
    )
    return Spec(
        name=safe_identifier(name or loss.name, "loss"),
        loss_name=loss.name,
        title=loss.title,
        latex=latex,
        conventions=loss.conventions,
        references=tuple(loss.references),
        pred=_array(loss, loss.pred, role),
        target=_array(loss, loss.target, "target"),
        extras=tuple(_array(loss, b, str(b.label)) for b in loss.extra_inputs),
        params=tuple(_param(loss, p) for p in loss.params),
        rank=rank,
        row_value=row_value,
        labels=labels,
        label_gather=(
            labels and not row_value and gathers_at_labels(value, loss.target, loss.input_indices)
        ),
        row_sum=one_hot.description if one_hot is not None else None,
        ignore_index=loss.ignore_index,
        label_reduction=loss.label_reduction,
        mean_over=mean_over,
        reduction=loss.reduction,
        reductions=tuple(loss.reductions),
        layout=tuple(loss.input_indices),
        value=value,
        gradient=gradient,
        hessian=hessian,
        hessian_index=hessian_index,
        hessian_error=error,
    )


def size_axes(s: Spec) -> dict:
    """``{size symbol: (variable, axis)}`` for the lowering (``n`` is every element
    of an element-wise loss's input, whatever its shape)."""
    return {n: ("n", 0 if s.rank == 2 else None), m: ("m", -1)}

"""The Loss value and the registry.

A loss is one SymPy expression, kept in three explicit parts so that each later step
is exact and cheap:

* ``term``, the summand for one element, written over ``Indexed`` elements;
* ``scale`` and ``reduction``, the factor in front of the sums (``-1`` over ``n`` for a
  mean, ``1/2`` for the article's half sum);
* ``indices``, the sums themselves as ``(index, size)`` pairs, outermost first.

``Loss.expr`` assembles the full :math:`E` from them.  Gradients come from
differentiating the summand and collapsing the Kronecker deltas against the sums
(:mod:`symloss._calculus`); kernels come from lifting the summand to arrays
(:mod:`symloss._numeric`); LaTeX comes from the printers (:mod:`symloss._printing`).
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING

import numpy as np
import sympy as sp
from sympy import Indexed, IndexedBase, Sum, Symbol

from . import _budget, _calculus
from ._calculus import Constraint
from ._printing import STYLES, latex_expr
from ._symbols import logsumexp, sigmoid, softmax

if TYPE_CHECKING:  # the kernels are imported on first use: `symloss show` needs none
    from . import _numeric

PARTS = ("loss", "gradient", "hessian")


@dataclass(frozen=True)
class Domain:
    r"""Where an array's elements live, as data.

    Parameters
    ----------
    set : sympy.Set
        The mathematical domain of each element, e.g. ``Interval.open(0, 1)``.
    closure : sympy.Set, optional
        The set accepted by the numeric functions, when it is larger than ``set``
        (e.g. ``[0, 1]`` for a probability, whose endpoints give the limit value).
    description : str
        How people say it: "probability", "one-hot or probability row".
    """

    set: sp.Set
    closure: sp.Set | None = None
    description: str = ""

    @property
    def accepted(self) -> sp.Set:
        return self.closure if self.closure is not None else self.set

    @cached_property
    def _interval(self) -> tuple[float, bool, float, bool] | None:
        """``(lo, lo_open, hi, hi_open)`` of an interval (infinite ends open), else None."""
        s = self.accepted
        if not isinstance(s, sp.Interval):
            return None
        return (
            float(s.inf),
            bool(s.left_open or s.inf.is_infinite),
            float(s.sup),
            bool(s.right_open or s.sup.is_infinite),
        )

    def any_violation(self, values: np.ndarray) -> bool:
        """Whether some element lies outside the accepted set (the minimum and maximum,
        in one pass where the compiled backend runs; no masks)."""
        from . import _numeric

        v = np.asarray(values, dtype=np.float64)
        bounds = self._interval
        if bounds is not None and v.size:
            lo, lo_open, hi, hi_open = bounds
            # NaN propagates and fails every comparison below
            mn, mx = _numeric._compiled_rows("min_max", v) or (v.min(), v.max())
            ok_lo = mn > lo if lo_open else mn >= lo
            ok_hi = mx < hi if hi_open else mx <= hi
            return not (ok_lo and ok_hi)
        return bool(self.violations(v).any())

    def violations(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of the elements outside the accepted set (NaN is always outside)."""
        s = self.accepted
        v = np.asarray(values, dtype=np.float64)
        bad = ~np.isfinite(v)
        if isinstance(s, sp.Interval):
            lo, hi = float(s.inf), float(s.sup)
            bad |= (v < lo) | (v > hi)
            if s.left_open:
                bad |= v == lo
            if s.right_open:
                bad |= v == hi
        elif isinstance(s, sp.FiniteSet):
            bad |= ~np.isin(v, [float(x) for x in s])
        return bad

    def latex(self) -> str:
        return sp.latex(self.set)

    def text(self, accepted: bool = True) -> str:
        """The set in interval notation, e.g. ``[0, 1]`` or ``(-oo, oo)``."""
        return _set_text(self.accepted if accepted else self.set)


def _set_text(s: sp.Set) -> str:
    if isinstance(s, sp.Interval):
        left = "(" if s.left_open or s.inf.is_infinite else "["
        right = ")" if s.right_open or s.sup.is_infinite else "]"
        return f"{left}{s.inf}, {s.sup}{right}"
    if isinstance(s, sp.FiniteSet):
        return "{" + ", ".join(map(str, s)) + "}"
    if isinstance(s, sp.Union):
        return " U ".join(_set_text(part) for part in s.args)
    return sp.sstr(s)


@dataclass(frozen=True)
class Composition:
    """``pred = activation(logits)``: how a loss on probabilities is fed from logits.

    ``element`` is the prediction element (``y[i]``), ``value`` its expression in the
    logits (``sigmoid(z[i])``), and ``base`` the registry name of the loss on
    probabilities it composes.
    """

    base: str
    element: Indexed
    value: sp.Expr
    name: str  # "sigmoid" | "softmax"


@dataclass(frozen=True)
class Param:
    """A hyperparameter: a symbol in the expression, with a default and a domain.

    ``symbol`` is a ``Symbol`` for a scalar (Huber's ``delta``) or an ``IndexedBase``
    for a per-class vector (class weights).  ``default`` is used by the numeric
    functions when the user does not bind a value at :func:`get`.
    """

    name: str
    symbol: sp.Basic
    default: object
    domain: sp.Set | None = None
    description: str = ""

    def validate(self, value, loss_name: str):
        if isinstance(self.symbol, IndexedBase):
            arr = np.asarray(value, dtype=np.float64)
            if arr.ndim != 1 or not np.all(np.isfinite(arr)):
                raise ValueError(f"{loss_name}: {self.name} must be a 1-D array of finite numbers")
            if self.domain is not None and not all(sp.Float(v) in self.domain for v in arr):
                raise ValueError(f"{loss_name}: {self.name} must lie in {_set_text(self.domain)}")
            return tuple(float(v) for v in arr)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"{loss_name}: {self.name} must be a number, got {value!r}")
        value = float(value)
        if not np.isfinite(value) or (
            self.domain is not None and sp.Float(value) not in self.domain
        ):
            where = _set_text(self.domain) if self.domain is not None else "the reals"
            raise ValueError(f"{loss_name}: {self.name} = {value!r} is outside {where}")
        return value


REDUCTIONS = ("mean", "sum", "none", "batchmean")

Index = tuple[Symbol, Symbol]


@dataclass(frozen=True)
class Loss:
    r"""One loss function, held as a SymPy expression and everything derived from it.

    Parameters
    ----------
    name : str
        Registry key, naming the math (``"binary_cross_entropy"``).
    title : str
        Human title.
    term : sympy.Expr
        The summand for one element (authored order is kept for printing).
    scale : sympy.Expr
        Constant factor in front of the sums, apart from the reduction: ``-1`` for a
        cross-entropy, ``1/2`` for the article's SSE.
    indices : tuple of (Symbol, Symbol)
        The sums as ``(index, size)``, outermost first: ``((i, n),)`` or ``((i, n), (j, m))``.
    pred, target : IndexedBase
        The input the user passes (predictions ``y`` or logits ``z``) and the target ``t``.
    domains : mapping
        :class:`Domain` of each array (pred, target, extra inputs), by array name.
    constraints : tuple of Constraint
        Facts about the data that derivations may use (``\sum_j t_{ij} = 1``).
    aliases, references : tuple of str
    conventions : str
        Stated conventions: the 1/2 factor, mean vs sum, natural log, edge values.
    composition : Composition, optional
        For a loss on logits: which activation feeds which base loss.
    reduction : {"mean", "sum", "none", "batchmean"}
        ``"mean"`` divides by the sizes in ``mean_over`` (the samples, by default);
        ``"batchmean"`` by ``n`` alone; ``"none"`` returns one value per sample.
    reductions : tuple of str
        The reductions this loss accepts.
    mean_over : tuple of Symbol, optional
        Sizes the mean divides by; default the first index's size (``n``).
    params : tuple of Param
        Hyperparameters that appear as symbols in ``term``.
    bound : tuple of (name, value)
        Values bound by :func:`get`; unbound parameters use their defaults.
    element_indices : tuple of (Symbol, Symbol), optional
        The index letters of one input element when they differ from ``indices``
        (a per-sample loss over vectors, such as the cosine distance, sums over ``i``
        but has elements ``y[i, j]``).
    extra_inputs : tuple of IndexedBase
        Further arrays passed by keyword at call time (Gaussian NLL's ``var``).
    ignore_index : int, optional
        With integer class labels, rows with this label count for nothing.
    label_reduction : bool
        With integer labels, the mean divides by the summed class weights of the
        labels (PyTorch's weighted mean) instead of ``n``.
    nonnegative : bool
        Whether the value is >= 0 on the whole domain (False for, e.g., a Poisson
        negative log-likelihood without its Stirling term).
    stable_term : sympy.Expr, optional
        An equal form of ``term`` that float64 evaluates without cancellation, used by
        the kernels only (Dice's ``1 - (2 TP + s)/D`` as ``(FP + FN)/D``); the printed
        definition and the displayed derivatives come from ``term``, and
        ``tests/test_numeric.py`` proves the two equal.
    budget_seconds : float, optional
        Wall-clock budget for each derivation step of this loss.  Set for losses
        parsed from user text (see :mod:`symloss._budget`); ``None`` (trusted
        registry losses) means no limit.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("bce")
    >>> float(L([0.2, 0.8], [0, 1]))  # mean of -log(0.8) and -log(0.8)
    0.2231435513142097
    >>> print(L.latex(part="gradient"))
    \frac{\partial E}{\partial y_{i}} = \frac{y_{i} - t_{i}}{n \left(1 - y_{i}\right) y_{i}}
    """

    name: str
    title: str
    term: sp.Expr
    scale: sp.Expr
    indices: tuple[Index, ...]
    pred: IndexedBase
    target: IndexedBase
    domains: Mapping[str, Domain] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    aliases: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    conventions: str = ""
    composition: Composition | None = None
    reduction: str = "mean"
    reductions: tuple[str, ...] = ("mean", "sum", "none")
    mean_over: tuple[Symbol, ...] | None = None
    params: tuple[Param, ...] = ()
    bound: tuple[tuple[str, object], ...] = ()
    element_indices: tuple[Index, ...] | None = None
    extra_inputs: tuple[IndexedBase, ...] = ()
    ignore_index: int | None = None
    label_reduction: bool = False
    nonnegative: bool = True
    budget_seconds: float | None = field(default=None, compare=False, repr=False)
    stable_term: sp.Expr | None = field(default=None, compare=False, repr=False)
    builder: Callable[..., Loss] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if not self.indices:
            raise ValueError(f"loss {self.name!r} has no sum over the samples")
        if self.reduction not in self.reductions:
            raise ValueError(
                f"loss {self.name!r}: reduction {self.reduction!r} is not one of {self.reductions}"
            )
        allowed: set = {self.pred.label, self.target.label}
        allowed |= {b.label for b in self.extra_inputs}
        for v, size in (*self.indices, *(self.element_indices or ())):
            allowed |= {v, size}
        for prm in self.params:
            allowed.add(prm.symbol.label if isinstance(prm.symbol, IndexedBase) else prm.symbol)
        undeclared = {
            s
            for s in self.expr.free_symbols
            if not isinstance(s, (Indexed, IndexedBase)) and s not in allowed
        }
        if undeclared:
            names = ", ".join(sorted(map(str, undeclared)))
            raise ValueError(f"loss {self.name!r} uses undeclared symbols: {names}")

    # ------------------------------------------------------------------ structure
    @property
    def coef(self) -> sp.Expr:
        """The factor in front of the sums: ``scale`` over the reduction's count."""
        return self.scale / self._count

    @property
    def _count(self) -> sp.Expr:
        if self.reduction == "mean":
            return sp.Mul(*(self.mean_over or (self.indices[0][1],)))
        if self.reduction == "batchmean":
            return self.indices[0][1]
        return sp.S.One

    @property
    def expr(self) -> sp.Expr:
        """The full loss :math:`E`, as the article writes it (sums over Indexed elements)."""
        limits = [(v, 1, size) for v, size in reversed(self.indices)]
        return sp.Mul(self.coef, Sum(self.term, *limits), evaluate=False)

    @property
    def input_indices(self) -> tuple[Index, ...]:
        """``(index, size)`` of one input element: ``element_indices`` or ``indices``."""
        return self.element_indices or self.indices

    @property
    def element(self) -> Indexed:
        """The input element the gradient is taken by, e.g. ``y[i]`` or ``z[i, j]``."""
        return self.pred[tuple(v for v, _ in self.input_indices)]

    @property
    def separable(self) -> bool:
        """True when each element of the loss depends on a single input element."""
        coupled = self.term.has(softmax, logsumexp, Sum) or self.element_indices is not None
        return not coupled

    @property
    def param_values(self) -> dict[str, object]:
        """Every hyperparameter's value: the bound one, else its default."""
        values = {p.name: p.default for p in self.params}
        values.update(dict(self.bound))
        return values

    def describe_params(self) -> list[str]:
        return [
            f"{p.name} = {self.param_values[p.name]!r}"
            + (f" in {_set_text(p.domain)}" if p.domain is not None else "")
            + (f": {p.description}" if p.description else "")
            for p in self.params
        ]

    @cached_property
    def kinks(self) -> tuple[sp.Expr, ...]:
        """Expressions whose zeros are the points where the loss is not twice differentiable.

        Collected from ``Abs``, ``sign``, ``Heaviside``, ``Max``/``Min`` and ``Piecewise``
        conditions in the summand, its gradient and its Hessian; at those points
        the gradient is a documented subgradient (see ``conventions``).
        """
        found: list[sp.Expr] = []
        for expr in (self._kernel_summand, self._kernel_gradient[0]):
            for k in _calculus.kink_arguments(expr):
                if k.has(self.pred) and k not in found and -k not in found:
                    found.append(k)
        return tuple(found)

    # ------------------------------------------------------------------ symbolic
    @cached_property
    def _kernel_summand(self) -> sp.Expr:
        """``scale * term`` (the sum reduction), authored order dropped, for kernels."""
        term = self.term if self.stable_term is None else self.stable_term
        with self._bounded("expanding the sums"):  # a sum with literal limits expands
            return (self.scale * term).doit()

    @cached_property
    def _display_gradient(self) -> tuple[sp.Expr, tuple[Constraint, ...]]:
        """Raw derivative of the sum-reduced *authored* term (the kernels' unless a
        ``stable_term`` is given)."""
        if self.stable_term is None:
            return self._kernel_gradient
        with self._bounded("deriving the gradient"):
            raw, used = self._derive((self.scale * self.term).doit(), self.constraints)
        return self._checked(raw, "gradient"), used

    @cached_property
    def _summand(self) -> sp.Expr:
        """``coef * term`` with the authored (unevaluated) order dropped, for display."""
        with self._bounded("expanding the sums"):
            return (self.coef * self.term).doit()

    def _derive(self, expr: sp.Expr, constraints) -> tuple[sp.Expr, tuple[Constraint, ...]]:
        # Derivatives are taken almost everywhere (DiracDelta = 0), as autograd does.
        if self.separable:
            return _calculus.almost_everywhere(sp.diff(expr, self.element)), ()
        raw, used = _calculus.derivative(
            expr, self.indices, self.pred, constraints, element=self.input_indices
        )
        return _calculus.almost_everywhere(raw), used

    def _bounded(self, what: str):
        """A budget context for one derivation step of this loss."""
        return _budget.budget(self.budget_seconds, f"{what} of {self.name}")

    def _checked(self, expr: sp.Expr, what: str) -> sp.Expr:
        if self.budget_seconds is not None:
            _budget.check_size(expr, f"the {what} of {self.name}")
        return expr

    @cached_property
    def _kernel_gradient(self) -> tuple[sp.Expr, tuple[Constraint, ...]]:
        """Raw derivative of the sum-reduced loss: what the kernels evaluate."""
        with self._bounded("deriving the gradient"):
            raw, used = self._derive(self._kernel_summand, self.constraints)
        return self._checked(raw, "gradient"), used

    @cached_property
    def _gradient(self) -> tuple[sp.Expr, sp.Expr, tuple[Constraint, ...]]:
        """(raw, clean, constraints used) for the gradient by :attr:`element`."""
        raw, used = self._display_gradient
        raw = raw / self._count
        with self._bounded("simplifying the gradient"):
            clean = self._clean(raw)
        return raw, clean, used

    def _clean(self, expr: sp.Expr) -> sp.Expr:
        # A point inside every domain, to orient signs: predictions and probabilities
        # at 3/10, so (y - 1) reads as -(1 - y).  Targets are left free.
        sample: dict = {s: sp.Integer(7) for _, s in self.input_indices}
        for node in sp.preorder_traversal(expr):
            if isinstance(node, Indexed) and node.base == self.pred:
                sample[node] = sp.Rational(3, 10)
            elif isinstance(node, (softmax, sigmoid)):
                sample[node] = sp.Rational(3, 10)
        return _calculus.clean(expr, sample=sample, fixed_sign=frozenset({self.target}))

    def gradient(self) -> sp.Expr:
        r""":math:`\partial E / \partial x_{i\ldots}` by one input element, in closed form.

        The input is the prediction, or the logits for a loss on logits.  The result
        holds no ``KroneckerDelta``, index ``Piecewise`` or evaluable ``Sum``.  See
        :meth:`constraints_used` for the facts it relies on.  With ``reduction="none"``
        it is the gradient of the sum of the per-sample losses.
        """
        return self._gradient[1]

    def constraints_used(self) -> tuple[Constraint, ...]:
        """The constraints that :meth:`gradient` (and :meth:`hessian`) rely on."""
        return self._gradient[2]

    def general_gradient(self) -> sp.Expr:
        """The gradient without applying any constraint."""
        if not self.constraints:
            return self.gradient()
        with self._bounded("deriving the general gradient"):
            raw, _ = self._derive((self.scale * self.term).doit(), ())
            return self._clean(raw / self._count)

    @property
    def hessian_index(self) -> Symbol | None:
        """The extra index of the per-sample Hessian block (``None`` when diagonal)."""
        if self.separable:
            return None
        taken = {str(v) for v, _ in (*self.indices, *self.input_indices)}
        # Nor a letter bound by a sum inside the term (the cosine's sum over k): the
        # Hessian partner y[i, k] would be captured by that sum.
        taken |= {str(s) for s in self.term.atoms(Symbol)}
        # ... or by a row sum the gradient brings (a class-weighted sum_k w_k t_ik).
        taken |= {str(s) for s in self._kernel_gradient[0].atoms(Symbol)}
        taken |= {str(s) for s in self._display_gradient[0].atoms(Symbol)}
        return next(sp.Symbol(c, integer=True) for c in "klpqrsuvw" if c not in taken)

    @property
    def _hessian_partner(self) -> Indexed:
        outer = tuple(v for v, _ in self.input_indices[:-1])
        return self.pred[(*outer, self.hessian_index)]

    def _hessian_of(self, raw_grad: sp.Expr) -> sp.Expr:
        wrt = self.element if self.separable else self._hessian_partner
        with self._bounded("deriving the Hessian"):
            # Row sums in the gradient (cosine, Dice) differentiate to Kronecker deltas.
            hess = _calculus.almost_everywhere(_calculus.collapse(sp.diff(raw_grad, wrt)))
            return self._checked(hess, "Hessian")

    @cached_property
    def _kernel_hessian(self) -> sp.Expr:
        return self._hessian_of(self._kernel_gradient[0])

    @cached_property
    def _hessian(self) -> tuple[sp.Expr, sp.Expr]:
        display = self._kernel_hessian
        if self.stable_term is not None:
            display = self._hessian_of(self._display_gradient[0])
        raw = display / self._count
        with self._bounded("simplifying the Hessian"):
            return raw, self._clean(raw)

    def hessian(self) -> sp.Expr:
        r"""The Hessian of :math:`E` in closed form.

        For a separable loss, the diagonal element :math:`\partial^2 E/\partial x_i^2`
        (all other entries are 0).  For a loss coupled across classes (softmax), the
        per-sample block :math:`\partial^2 E/\partial z_{ij}\partial z_{ik}`, written with
        :math:`\delta_{jk}`; blocks of different samples are 0.
        """
        return self._hessian[1]

    # ------------------------------------------------------------------ printing
    def latex(self, style: str = "standard", part: str = "loss") -> str:
        r"""LaTeX for the loss, its gradient or its Hessian.

        ``style="article"`` reproduces the source article's notation (bare ``log``,
        ``\,`` spacing, braces around summands); ``"standard"`` is conventional LaTeX
        that KaTeX and pdflatex accept.
        """
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
        lhs, rhs = self._part(part)
        return f"{latex_expr(lhs, style)} = {latex_expr(rhs, style)}"

    def _part(self, part: str) -> tuple[sp.Expr, sp.Expr]:
        E = Symbol("E")
        x = self.element
        if part == "loss":
            return E, self.expr
        if part == "gradient":
            return sp.Derivative(E, x), self.gradient()
        if part == "hessian":
            if self.separable:
                return sp.Derivative(E, x, 2), self.hessian()
            return sp.Derivative(E, x, self._hessian_partner), self.hessian()
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")

    def pretty(self, part: str = "loss") -> str:
        """Unicode text for a part, as ``symloss show`` prints it."""
        lhs, rhs = self._part(part)
        return _pretty_eq(lhs, rhs)

    def derivation(self) -> list:
        """The gradient's derivation, step by step (see :mod:`symloss._derivation`).

        For a loss on logits: the derivative by the prediction, the activation's
        Jacobian, the chain rule, and the simplification that names each constraint
        it uses.  The last form of the last step is :meth:`gradient`.
        """
        from ._derivation import derivation

        return derivation(self)

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def _repr_html_(self) -> str:
        """Jupyter: the title, the loss and its gradient as display math, and conventions."""
        import html

        rows = [f"<strong>{html.escape(self.title)}</strong> (<code>{self.name}</code>)"]
        for part in ("loss", "gradient"):
            rows.append(f"<div>$$ {html.escape(self.latex(part=part))} $$</div>")
        if self.conventions:
            rows.append(f"<p>{html.escape(self.conventions)}</p>")
        return "\n".join(rows)

    # ------------------------------------------------------------------ numeric
    @property
    def _layout(self):
        return self.input_indices

    def _stable(self, expr: sp.Expr) -> sp.Expr:
        from . import _numeric

        with self._bounded("stabilising the kernel"):
            return _numeric.stabilize(expr, frozenset({self.target}))

    def _compile(self, expr, layout, what: str) -> _numeric.Kernel:
        with self._bounded(f"compiling the {what} kernel"):
            from . import _numeric

            return _numeric.Kernel(expr, layout)

    @cached_property
    def _value_kernel(self) -> _numeric.Kernel:
        return self._compile(self._stable(self._kernel_summand), self.indices, "value")

    @cached_property
    def _grad_kernel(self) -> _numeric.Kernel:
        return self._compile(self._stable(self._kernel_gradient[0]), self._layout, "gradient")

    @cached_property
    def _hess_kernel(self) -> _numeric.Kernel:
        layout = self._layout
        if not self.separable:
            layout = (*layout, (self.hessian_index, layout[-1][1]))
        return self._compile(self._stable(self._kernel_hessian), layout, "Hessian")

    def _arrays(self, pred, target, weight=None, **extra) -> _Batch:
        return _prepare(self, pred, target, weight, extra)

    @cached_property
    def _fused_kernel(self) -> _numeric.Kernel | None:
        """Value and gradient in one kernel, sharing subexpressions, over the input's
        layout.  A summand over fewer indices than the input (a row-wise loss:
        cosine, Dice) is constant along the others, and comes out with length 1 there.
        """
        if self.indices != self.input_indices[: len(self.indices)]:
            return None
        exprs = (self._stable(self._kernel_summand), self._stable(self._kernel_gradient[0]))
        return self._compile(exprs, self._layout, "value-and-gradient")

    def _compute(self, batch: _Batch, value: bool, grad: bool, hess: bool = False, out=None):
        """Evaluate the kernels block by block: ``(value, gradient, Hessian)``.

        Each block of rows is validated (``batch.validate``), evaluated, and its
        gradient and Hessian rows are scaled by the sample weights and the reduction's
        count while still in cache; the value is reduced from per-block partial sums
        (per-sample values for ``reduction="none"``).  The gradient is written into
        *out* when given (see :meth:`grad`).
        """
        from . import _fused, _numeric

        n = batch.shape[0]
        per = np.empty(n) if value and self.reduction == "none" else None
        partial: dict[int, float] = {}
        g = (np.empty(batch.shape) if out is None else batch.buffer(out)) if grad else None
        hshape = batch.shape if self.separable else (*batch.shape, batch.shape[-1])
        h = np.empty(hshape) if hess else None
        fused = self._fused_kernel if value and grad else None
        kernels = [  # by name: only the kernels wanted are derived and compiled
            getattr(self, k)
            for k, want in (
                ("_value_kernel", value and fused is None),
                ("_grad_kernel", grad and fused is None),
                ("_hess_kernel", hess),
            )
            if want
        ]
        sample_size = self.indices[0][1]
        blocked = not any(
            sample_size in k.sums_over for k in (*kernels, *([fused] if fused else []))
        )
        sizes, weight = batch.sizes, batch.weight

        # A value per element of a 2-D input is summed over each row as it is computed
        # (the kernels' last axis is then the value's); the gradient and Hessian go
        # straight into g and h, divided by the count there (both in the compiled loop;
        # see Kernel.evaluate).
        summed = (0,) if len(batch.value_shape) == len(batch.shape) == 2 else ()
        divisor = batch.count if weight is None else 1.0  # else scale_rows does both
        value_shape = batch.value_shape[1 : len(batch.value_shape) - len(summed)]

        def take(v, lo, hi):
            # Kernel.evaluate's arrays are scratch: used here, before the next kernel.
            v = np.asarray(v)
            extra = v.ndim - 1 - len(value_shape)
            if extra > 0:  # a row-wise summand from a fused kernel: constant along a row
                v = v[(..., *(0,) * extra)]
            full = np.broadcast_to(v, (hi - lo, *value_shape))
            if per is None and weight is None:
                partial[lo] = float(np.sum(full))
                return
            rowsum = full
            if full.ndim > 1:
                rowsum = _numeric._reduce_rows(np.add, full.reshape(hi - lo, -1))
            if weight is not None:
                rowsum = rowsum * weight[lo:hi]
            if per is not None:
                np.add(rowsum, 0.0, out=per[lo:hi])  # + 0.0: no negative zero, as NumPy
            else:
                partial[lo] = float(np.sum(rowsum))

        def run(arrays, lo, hi):
            if batch.validate is not None:
                batch.validate(arrays, lo)
            arrays = batch.block(arrays, str(self.target.label))
            if fused is not None:
                into = {1: (g[lo:hi], divisor)}
                take(fused.evaluate(arrays, sizes, summed=summed, into=into)[0], lo, hi)
            else:
                if value:
                    take(self._value_kernel.evaluate(arrays, sizes, summed=summed), lo, hi)
                if grad:
                    self._grad_kernel.evaluate(arrays, sizes, into={0: (g[lo:hi], divisor)})
            if grad and weight is not None:
                batch.scale_rows(g[lo:hi], lo)
            if hess:
                self._hess_kernel.evaluate(arrays, sizes, into={0: (h[lo:hi], divisor)})
                if weight is not None:
                    batch.scale_rows(h[lo:hi], lo)

        row_size = int(np.prod(batch.shape[1:], dtype=np.int64)) if len(batch.shape) > 1 else 1
        try:
            if blocked:
                _numeric.map_blocks(run, batch.arrays, batch.sample_keys, n, row_size)
            else:
                run(batch.arrays, 0, n)
                _fused.SCRATCH.release()  # whole-input scratch is not kept
        except ValueError:
            if batch.validate is not None:
                # The error the whole input gives (domains first, then constraints, each
                # at its first element), whatever the block size and the failing block.
                batch.validate(batch.arrays, 0)
            raise
        if not value:
            result = None
        elif per is not None:
            result = batch.unflatten_samples(per)
        else:  # fsum of the block sums: the order of the blocks' threads does not matter
            sums = [partial[k] for k in sorted(partial)]
            # (fsum raises on inf + -inf, where the plain sum gives NaN as NumPy's does)
            total = math.fsum(sums) if all(map(math.isfinite, sums)) else sum(sums)
            result = total / batch.count + 0.0
        return result, g, h

    def _reduce(self, batch: _Batch, per: np.ndarray) -> np.ndarray | float:
        """Apply weights and the reduction to per-sample values of the sum-reduced loss."""
        if batch.weight is not None:
            per = per * batch.weight
        if self.reduction == "none":
            return batch.unflatten_samples(per)
        return float(np.sum(per) / batch.count) + 0.0  # + 0.0: no negative zero

    def __call__(self, pred, target, *, weight=None, **extra) -> float | np.ndarray:
        """The loss value :math:`E` (float64); per-sample values for ``reduction="none"``.

        ``weight`` (shape ``(n,)``) multiplies each sample's loss; the mean still
        divides by ``n``, as PyTorch's ``weight`` does.
        """
        batch = _prepare(self, pred, target, weight, extra, defer=True)
        return self._compute(batch, value=True, grad=False)[0]

    def grad(self, pred, target, *, weight=None, out=None, **extra) -> np.ndarray:
        """:math:`\\partial E / \\partial x`, an array of the input's shape.

        ``out``, a C-contiguous float64 array of the input's shape, receives the
        gradient (and is returned), so a training loop allocates nothing per step.
        If the inputs are invalid, the error is raised and ``out``'s contents are
        unspecified (blocks are checked as they are evaluated).
        """
        batch = _prepare(self, pred, target, weight, extra, defer=True)
        g = self._compute(batch, value=False, grad=True, out=out)[1]
        return batch.unflatten(g) if out is None else out

    def hess(self, pred, target, *, weight=None, **extra) -> np.ndarray:
        """The Hessian: its diagonal (input's shape) or per-sample blocks ``(n, m, m)``."""
        batch = _prepare(self, pred, target, weight, extra, defer=True)
        h = self._compute(batch, value=False, grad=False, hess=True)[2]
        return batch.unflatten(h) if self.separable else h

    def value_and_grad(self, pred, target, *, weight=None, out=None, **extra):
        """``(L(pred, target), L.grad(pred, target))`` in one pass.

        The inputs are validated block by block as they are evaluated, and value and
        gradient come from one fused kernel that computes their shared subexpressions
        once.  ``out`` receives the gradient, as in :meth:`grad`.
        """
        batch = _prepare(self, pred, target, weight, extra, defer=True)
        value, g, _ = self._compute(batch, value=True, grad=True, out=out)
        return value, (batch.unflatten(g) if out is None else out)


@dataclass
class _Batch:
    """Validated inputs of one call, laid out for the kernels."""

    arrays: dict[str, np.ndarray]
    sizes: dict[Symbol, int]
    shape: tuple[int, ...]  # the input's shape as the kernels see it
    value_shape: tuple[int, ...]
    original_shape: tuple[int, ...]
    count: float  # what the reduction divides by
    weight: np.ndarray | None  # per-sample factor (weights, ignored rows), or None
    sample_keys: frozenset = frozenset()  # arrays whose first axis is the samples
    #: Element-wise checks still to run, block by block (``_prepare(defer=True)``).
    validate: Callable[[Mapping[str, np.ndarray], int], None] | None = None
    #: The target holds integer labels, shape (n,), made one-hot rows by :meth:`block`.
    labels: bool = False
    ignore_index: int | None = None

    def buffer(self, out) -> np.ndarray:
        """*out* viewed in the kernels' layout, after checking it can hold the gradient."""
        if not isinstance(out, np.ndarray) or out.dtype != np.float64:
            raise TypeError("out must be a float64 numpy array")
        if out.shape != self.original_shape:
            raise ValueError(f"out has shape {out.shape}, the gradient has {self.original_shape}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be C-contiguous and writeable")
        return out.reshape(self.shape)  # a view: contiguous

    def block(self, arrays: dict[str, np.ndarray], target: str) -> dict[str, np.ndarray]:
        """A block's arrays for the kernels: integer labels made one-hot rows."""
        if not self.labels:
            return arrays
        labels = arrays[target]
        return {**arrays, target: _one_hot(labels, self.shape[-1], self.ignore_index)}

    def scale_rows(self, g: np.ndarray, start: int = 0) -> np.ndarray:
        """Apply per-sample weights and the reduction's count, in place (*g*'s rows
        are the samples from *start* on)."""
        if self.weight is not None:
            w = self.weight[start : start + g.shape[0]]
            g *= w.reshape((-1,) + (1,) * (g.ndim - 1))
        if self.count != 1:
            g /= self.count
        return g

    def unflatten(self, g: np.ndarray) -> np.ndarray:
        return g.reshape(self.original_shape) if g.shape != self.original_shape else g

    def unflatten_samples(self, per: np.ndarray) -> np.ndarray:
        if len(self.shape) == 1 and self.original_shape != self.shape:
            return per.reshape(self.original_shape)
        return per


def _prepare(loss: Loss, pred, target, weight, extra, defer: bool = False) -> _Batch:
    """Check and lay out one call's inputs.

    With *defer*, the element-wise checks (domains, row constraints) are not run
    here but left in the batch's ``validate``, for the blocked evaluation to run on
    each block while it is in cache.
    """
    name = loss.name
    role = _role(loss, loss.pred)
    p = np.asarray(pred, dtype=np.float64)
    t_raw = np.asarray(target)
    ndim = len(loss.input_indices)
    original = p.shape
    labels = None
    one_hot = any(c.name == "one_hot" for c in loss.constraints)
    if one_hot and p.ndim == 2 and t_raw.ndim == 1 and t_raw.dtype.kind in "iu":
        labels = np.asarray(t_raw, dtype=np.int64)
        if labels.shape[0] != p.shape[0]:
            raise ValueError(
                f"{name}: {role} shape {p.shape} and label shape {labels.shape} do not match"
            )
        bad = (labels < 0) | (labels >= p.shape[1])
        if loss.ignore_index is not None:
            bad &= labels != loss.ignore_index
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"{name}: label {int(labels[row])} at row {row} is not a class index "
                f"in [0, {p.shape[1]})"
            )
        # Deferred: one-hot rows are built block by block (in cache, on the workers).
        t = labels if defer else _one_hot(labels, p.shape[1], loss.ignore_index)
    else:
        if t_raw.dtype.kind not in "biuf":
            raise ValueError(f"{name}: target must be numeric, got dtype {t_raw.dtype}")
        t = np.asarray(t_raw, dtype=np.float64)
    if ndim == 1 and p.ndim != 1:
        p = p.reshape(-1)  # element-wise losses treat every element as a sample
        t = t.reshape(-1) if t.shape == original else t
    if p.ndim != ndim:
        raise ValueError(
            f"{name}: {role}s must have {ndim} dimension(s) "
            f"({', '.join(str(s) for _, s in loss.input_indices)}), got shape {original}"
        )
    if p.shape != t.shape and labels is None:
        raise ValueError(
            f"{name}: {role} shape {original} and target shape {np.shape(target)} do not match"
        )
    if p.size == 0:
        raise ValueError(f"{name}: empty input (shape {original}); the mean is undefined")
    arrays = {str(loss.pred.label): p, str(loss.target.label): t}
    for base in loss.extra_inputs:
        key = str(base.label)
        if key not in extra:
            raise TypeError(f"{name}: missing keyword input {key}= (shape {original})")
        arr = np.asarray(extra.pop(key), dtype=np.float64)
        arr = arr.reshape(-1) if ndim == 1 and arr.shape == original else arr
        if arr.shape != p.shape:
            raise ValueError(
                f"{name}: {key} shape {arr.shape} and {role} shape {original} do not match"
            )
        arrays[key] = arr
    if extra:
        raise TypeError(f"{name}: unexpected keyword input(s) {', '.join(sorted(extra))}")
    checks = tuple(
        (key, loss.domains[key])
        for key in arrays
        if loss.domains.get(key) is not None
        and not (labels is not None and key == str(loss.target.label))
    )
    constraints = tuple(
        (c, _CONSTRAINT_CHECKS[c.name])
        for c in (loss.constraints if labels is None else ())
        if c.name in _CONSTRAINT_CHECKS
    )
    validate = _Validator(loss, role, original, checks, constraints)
    if not defer:
        validate(arrays, 0)
    for prm in loss.params:
        value = loss.param_values[prm.name]
        if isinstance(prm.symbol, IndexedBase):
            vec = np.ones(p.shape[-1]) if value is None else np.asarray(value, dtype=np.float64)
            if vec.shape != (p.shape[-1],):
                raise ValueError(
                    f"{name}: {prm.name} has {vec.size} entries but there are {p.shape[-1]} classes"
                )
            arrays[str(prm.symbol.label)] = vec
        else:
            arrays[str(prm.symbol)] = np.float64(value)
    sizes = {size: p.shape[axis] for axis, (_, size) in enumerate(loss.input_indices)}
    for _, size in loss.indices:
        sizes.setdefault(size, p.shape[0])

    n = p.shape[0]
    w = None
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
        if w.shape != (n,):
            raise ValueError(f"{name}: weight shape {np.shape(weight)} does not match {n} samples")
        if not np.all(np.isfinite(w)) or (w < 0).any():
            raise ValueError(f"{name}: weights must be finite and non-negative")
    if labels is not None and loss.ignore_index is not None:
        keep = (labels != loss.ignore_index).astype(np.float64)
        w = keep if w is None else w * keep
    if loss.reduction in ("sum", "none"):
        count = 1.0
    elif loss.reduction == "batchmean":
        count = float(n)
    elif labels is not None and (loss.label_reduction or loss.ignore_index is not None):
        # PyTorch's mean for class labels: divide by the summed class weight of the
        # (non-ignored) labels; without class weights, by the number of kept rows.
        cw = next(
            (arrays[str(q.symbol.label)] for q in loss.params if isinstance(q.symbol, IndexedBase)),
            None,
        )
        per_row = (
            cw[np.clip(labels, 0, p.shape[1] - 1)]
            if cw is not None and loss.label_reduction
            else np.ones(n)
        )
        if loss.ignore_index is not None:
            per_row = per_row * (labels != loss.ignore_index)
        count = float(per_row.sum())
        if count == 0:
            raise ValueError(
                f"{name}: every row is ignored or has zero weight; the mean is undefined"
            )
    else:
        count = float(np.prod([sizes[s] for s in (loss.mean_over or (loss.indices[0][1],))]))
    value_shape = tuple(p.shape[: len(loss.indices)])
    sample_keys = frozenset({str(loss.pred.label), str(loss.target.label)}) | {
        str(b.label) for b in loss.extra_inputs
    }
    return _Batch(
        arrays,
        sizes,
        p.shape,
        value_shape,
        original,
        count,
        w,
        sample_keys,
        validate if defer else None,
        labels is not None and defer,
        loss.ignore_index,
    )


def _one_hot(labels: np.ndarray, m: int, ignore_index: int | None) -> np.ndarray:
    """One-hot rows of *m* classes for integer *labels*; a row whose label is
    *ignore_index* is any probability row (1/m each: its weight is 0)."""
    t = np.zeros((len(labels), m))
    ignored = labels == ignore_index if ignore_index is not None else None
    if ignored is None or not ignored.any():
        t.reshape(-1)[np.arange(len(labels)) * m + labels] = 1.0  # flat: 2x faster than t[r, c]
        return t
    rows = np.nonzero(~ignored)[0]
    t.reshape(-1)[rows * m + labels[rows]] = 1.0
    t[ignored] = 1.0 / m
    return t


@dataclass(frozen=True)
class _Validator:
    """The element-wise input checks, runnable on the whole input or a block of rows.

    ``validate(arrays, start)`` checks arrays whose first axis starts at sample
    *start*, and names the first offending element by its index in the caller's
    input.
    """

    loss: Loss
    role: str
    original: tuple[int, ...]
    domains: tuple[tuple[str, Domain], ...]
    constraints: tuple[tuple[Constraint, Callable], ...]

    def __call__(self, arrays: Mapping[str, np.ndarray], start: int) -> None:
        loss = self.loss
        for key, dom in self.domains:
            arr = arrays[key]
            if not dom.any_violation(arr):
                continue
            where = tuple(int(q) for q in np.argwhere(dom.violations(arr))[0])
            value = float(arr[where])
            where = (where[0] + start, *where[1:])
            if len(loss.input_indices) == 1 and len(self.original) != 1:
                where = tuple(int(q) for q in np.unravel_index(where[0], self.original))
            who = (
                "target"
                if key == str(loss.target.label)
                else self.role
                if key == str(loss.pred.label)
                else key
            )
            raise ValueError(
                f"{loss.name}: {who} {key}{list(where)} = {value!r} is outside the domain "
                f"{dom.text()}{' (' + dom.description + ')' if dom.description else ''}"
            )
        t = arrays.get(str(loss.target.label)) if self.constraints else None
        for c, check in self.constraints:
            check(loss, c, t, start)


def _pretty_eq(lhs, rhs) -> str:
    from sympy.printing.pretty.stringpict import prettyForm

    from ._printing import TextPrinter

    printer = TextPrinter({"use_unicode": True, "wrap_line": False})
    form = prettyForm(*printer._print(lhs).right(" = "))
    form = prettyForm(*form.right(printer._print(rhs)))
    return form.render(wrap_line=False)


def _role(loss: Loss, base: IndexedBase) -> str:
    if base == loss.target:
        return "target"
    return "logit" if loss.composition is not None else "prediction"


def _check_rows_sum_to_one(loss: Loss, c: Constraint, t: np.ndarray, start: int = 0) -> None:
    from . import _numeric

    sums = _numeric._reduce_rows(np.add, t)
    bad = ~(np.abs(sums - 1.0) <= 1e-9 * t.shape[-1])  # a NaN sum is bad too
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            # (12 digits: the last ones depend on the order the backend added in)
            f"{loss.name}: target row {row + start} sums to {float(f'{sums[row]:.12g}')!r}, "
            f"but {c.description}"
        )


_CONSTRAINT_CHECKS: dict[str, Callable[[Loss, Constraint, np.ndarray, int], None]] = {
    "one_hot": _check_rows_sum_to_one,
}


# ---------------------------------------------------------------------- registry
_REGISTRY: dict[str, Loss] = {}
_ALIASES: dict[str, str] = {}


def register(loss: Loss | Callable[..., Loss]) -> Loss:
    """Add a loss to the registry; duplicate names or aliases are refused.

    *loss* is a :class:`Loss`, or a builder: a function of keyword-only options
    (such as ``log_input`` or ``label_smoothing``) returning a Loss, called with
    no arguments for the registered default.
    """
    if not isinstance(loss, Loss):
        builder = loss
        loss = builder()
        if loss.builder is None:
            loss = replace(loss, builder=builder)
    for key in (loss.name, *loss.aliases):
        if key in _REGISTRY or key in _ALIASES:
            raise ValueError(f"a loss is already registered as {key!r}")
    _REGISTRY[loss.name] = loss
    for alias in loss.aliases:
        _ALIASES[alias] = loss.name
    return loss


def names() -> list[str]:
    """The registered canonical names, sorted."""
    _load()
    return sorted(_REGISTRY)


def get(name: str, **options) -> Loss:
    """The registered loss called *name* (canonical name or alias), with options bound.

    Hyperparameters (``delta=1.5``), structural options (``label_smoothing=0.1``,
    ``ignore_index=-100``) and ``reduction`` bind here.  Derivations are cached per
    loss structure, so binding numbers costs nothing symbolic.

    Raises
    ------
    KeyError
        For an unknown name; the message lists close matches.
    TypeError
        For an unknown option; the message names the valid ones.
    """
    _load(name)
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown loss {name!r}{hint} (see symloss.names())")
    if not options:
        return _REGISTRY[key]
    frozen = tuple(sorted((k, _freeze(v)) for k, v in options.items()))
    return _bind(key, frozen)


def _freeze(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))
    return value


@lru_cache(maxsize=256)
def _bind(key: str, frozen: tuple) -> Loss:
    base = _REGISTRY[key]
    options = dict(frozen)
    reduction = options.pop("reduction", base.reduction)
    params = {p.name: p for p in base.params}
    # A parameter the builder also takes, set to None, is a structural choice: the
    # builder drops its term (sigmoid_focal's alpha=None, as optax's default).
    structural = {
        k: v
        for k, v in options.items()
        if k not in params or (v is None and k in _builder_options(base))
    }
    valid = sorted({"reduction", *params, *_builder_options(base)})
    unknown = sorted(set(structural) - set(_builder_options(base)))
    if unknown:
        raise TypeError(
            f"{key} got unexpected option(s) {', '.join(map(repr, unknown))}; "
            f"valid options: {', '.join(valid)}"
        )
    loss = base.builder(**structural) if structural else base
    params = {p.name: p for p in loss.params}
    bound = dict(loss.bound)
    for k, v in options.items():
        if k in params:
            bound[k] = params[k].validate(v, key)
        elif k not in structural:
            raise TypeError(f"{key} got unexpected option {k!r}; valid options: {', '.join(valid)}")
    if reduction not in loss.reductions:
        raise ValueError(
            f"{key}: reduction must be one of {', '.join(loss.reductions)}, got {reduction!r}"
        )
    return replace(
        loss, bound=tuple(sorted(bound.items())), reduction=reduction, builder=base.builder
    )


def _builder_options(loss: Loss) -> list[str]:
    if loss.builder is None:
        return []
    return [
        p.name
        for p in inspect.signature(loss.builder).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]


def catalog() -> Iterator[Loss]:
    """Every registered loss, in name order."""
    return (get(k) for k in names())


def _load(name: str | None = None) -> None:
    """Import the loss families (which register their losses): all of them, or, with
    *name*, those up to the one that defines it."""
    from .losses import FAMILIES

    for family in FAMILIES:
        if name is not None and (name in _REGISTRY or name in _ALIASES):
            return
        importlib.import_module(f"symloss.losses.{family}")

"""The Loss value and the registry.

A loss is one SymPy expression, kept in three explicit parts so that each later step
is exact and cheap:

* ``term``, the summand for one element, written over ``Indexed`` elements;
* ``coef``, the reduction in front of the sums (``-1/n`` for a mean, ``1/2`` ...);
* ``indices``, the sums themselves as ``(index, size)`` pairs, outermost first.

``Loss.expr`` assembles the full :math:`E` from them.  Gradients come from
differentiating the summand and collapsing the Kronecker deltas against the sums
(:mod:`symloss._calculus`); kernels come from lifting the summand to arrays
(:mod:`symloss._numeric`); LaTeX comes from the printers (:mod:`symloss._printing`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp
from sympy import Indexed, IndexedBase, Sum, Symbol

from . import _calculus, _numeric
from ._calculus import Constraint
from ._printing import STYLES, latex_expr
from ._symbols import logsumexp, softmax

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
    coef : sympy.Expr
        Factor in front of the sums: ``-1/n`` for the article's mean, ``1/2`` for SSE.
    indices : tuple of (Symbol, Symbol)
        The sums as ``(index, size)``, outermost first: ``((i, n),)`` or ``((i, n), (j, m))``.
    pred, target : IndexedBase
        The input the user passes (predictions ``y`` or logits ``z``) and the target ``t``.
    domains : mapping
        :class:`Domain` of each of ``pred`` and ``target``, by array name.
    constraints : tuple of Constraint
        Facts about the data that derivations may use (``\sum_j t_{ij} = 1``).
    aliases, references : tuple of str
    conventions : str
        Stated conventions: the 1/2 factor, mean vs sum, natural log, edge values.
    composition : Composition, optional
        For a loss on logits: which activation feeds which base loss.

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
    coef: sp.Expr
    indices: tuple[tuple[Symbol, Symbol], ...]
    pred: IndexedBase
    target: IndexedBase
    domains: Mapping[str, Domain] = field(default_factory=dict)
    constraints: tuple[Constraint, ...] = ()
    aliases: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    conventions: str = ""
    composition: Composition | None = None

    def __post_init__(self):
        allowed = {self.pred.label, self.target.label}
        allowed |= {v for v, _ in self.indices} | {s for _, s in self.indices}
        undeclared = {
            s
            for s in self.expr.free_symbols
            if not isinstance(s, (Indexed, IndexedBase)) and s not in allowed
        }
        if undeclared:
            names = ", ".join(sorted(map(str, undeclared)))
            raise ValueError(f"loss {self.name!r} uses undeclared symbols: {names}")
        if not self.indices:
            raise ValueError(f"loss {self.name!r} has no sum over the samples")

    # ------------------------------------------------------------------ symbolic
    @property
    def expr(self) -> sp.Expr:
        """The full loss :math:`E`, as the article writes it (sums over Indexed elements)."""
        limits = [(v, 1, size) for v, size in reversed(self.indices)]
        return sp.Mul(self.coef, Sum(self.term, *limits), evaluate=False)

    @property
    def element(self) -> Indexed:
        """The input element the gradient is taken by, e.g. ``y[i]`` or ``z[i, j]``."""
        return self.pred[tuple(v for v, _ in self.indices)]

    @property
    def separable(self) -> bool:
        """True when each element of the loss depends on a single input element."""
        coupled = self.term.has(softmax, logsumexp, Sum)
        return not coupled

    @cached_property
    def _summand(self) -> sp.Expr:
        """``coef * term`` with the authored (unevaluated) order dropped, for calculus."""
        return (self.coef * self.term).doit()

    @cached_property
    def _gradient(self) -> tuple[sp.Expr, sp.Expr, tuple[Constraint, ...]]:
        """(raw, clean, constraints used) for the gradient by :attr:`element`."""
        if self.separable:
            raw = sp.diff(self._summand, self.element)
            used: tuple[Constraint, ...] = ()
        else:
            raw, used = _calculus.derivative(
                self._summand, self.indices, self.pred, self.constraints
            )
        return raw, self._clean(raw), used

    def _clean(self, expr: sp.Expr) -> sp.Expr:
        # A point inside every domain, to orient signs: predictions and probabilities
        # at 3/10, so (y - 1) reads as -(1 - y).  Targets are left free.
        sample: dict = {s: sp.Integer(7) for _, s in self.indices}
        for node in sp.preorder_traversal(expr):
            if isinstance(node, Indexed) and node.base == self.pred:
                sample[node] = sp.Rational(3, 10)
            elif isinstance(node, softmax):
                sample[node] = sp.Rational(3, 10)
        from ._symbols import sigmoid

        for node in sp.preorder_traversal(expr):
            if isinstance(node, sigmoid):
                sample[node] = sp.Rational(3, 10)
        return _calculus.clean(expr, sample=sample, fixed_sign=frozenset({self.target}))

    def gradient(self) -> sp.Expr:
        r""":math:`\partial E / \partial x_{i\ldots}` by one input element, in closed form.

        The input is the prediction, or the logits for a loss on logits.  The result
        holds no ``KroneckerDelta``, index ``Piecewise`` or evaluable ``Sum``.  See
        :meth:`constraints_used` for the facts it relies on.
        """
        return self._gradient[1]

    def constraints_used(self) -> tuple[Constraint, ...]:
        """The constraints that :meth:`gradient` (and :meth:`hessian`) rely on."""
        return self._gradient[2]

    def general_gradient(self) -> sp.Expr:
        """The gradient without applying any constraint."""
        if self.separable:
            return self.gradient()
        raw, _ = _calculus.derivative(self._summand, self.indices, self.pred, ())
        return self._clean(raw)

    @property
    def hessian_index(self) -> Symbol | None:
        """The extra index of the per-sample Hessian block (``None`` when diagonal)."""
        if self.separable:
            return None
        taken = {str(v) for v, _ in self.indices}
        return next(sp.Symbol(c, integer=True) for c in "klpq" if c not in taken)

    @cached_property
    def _hessian(self) -> tuple[sp.Expr, sp.Expr]:
        raw_grad = self._gradient[0]
        if self.separable:
            raw = sp.diff(raw_grad, self.element)
        else:
            *outer, (last, _) = self.indices
            other = self.pred[tuple(v for v, _ in outer) + (self.hessian_index,)]
            raw = sp.diff(raw_grad, other)
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
            other = self.pred[tuple(v for v, _ in self.indices[:-1]) + (self.hessian_index,)]
            return sp.Derivative(E, x, other), self.hessian()
        raise ValueError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")

    def pretty(self, part: str = "loss") -> str:
        """Unicode text for a part, as ``symloss show`` prints it."""
        lhs, rhs = self._part(part)
        return _pretty_eq(lhs, rhs)

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    # ------------------------------------------------------------------ numeric
    @cached_property
    def _layout(self):
        return self.indices

    @cached_property
    def _value_kernel(self) -> _numeric.Kernel:
        stable = _numeric.stabilize(self.term.doit(), frozenset({self.target}))
        return _numeric.Kernel(stable, self._layout)

    @cached_property
    def _grad_kernel(self) -> _numeric.Kernel:
        stable = _numeric.stabilize(self._gradient[0], frozenset({self.target}))
        return _numeric.Kernel(stable, self._layout)

    @cached_property
    def _hess_kernel(self) -> _numeric.Kernel:
        stable = _numeric.stabilize(self._hessian[0], frozenset({self.target}))
        layout = self._layout
        if not self.separable:
            layout = (*layout, (self.hessian_index, layout[-1][1]))
        return _numeric.Kernel(stable, layout)

    def _arrays(self, pred, target) -> tuple[dict[str, np.ndarray], dict[Symbol, int]]:
        p = np.asarray(pred, dtype=np.float64)
        t = np.asarray(target, dtype=np.float64)
        ndim = len(self.indices)
        if p.ndim != ndim:
            raise ValueError(
                f"{self.name}: {_role(self, self.pred)}s must have {ndim} dimension(s) "
                f"({', '.join(str(s) for _, s in self.indices)}), got shape {p.shape}"
            )
        if p.shape != t.shape:
            raise ValueError(
                f"{self.name}: {_role(self, self.pred)} shape {p.shape} and "
                f"target shape {t.shape} do not match"
            )
        if p.size == 0:
            raise ValueError(f"{self.name}: empty input (shape {p.shape}); the mean is undefined")
        for arr, base in ((p, self.pred), (t, self.target)):
            dom = self.domains.get(str(base.label))
            if dom is None:
                continue
            bad = dom.violations(arr)
            if bad.any():
                where = tuple(int(q) for q in np.argwhere(bad)[0])
                raise ValueError(
                    f"{self.name}: {_role(self, base)} {str(base.label)}{list(where)} = "
                    f"{float(arr[where])!r} is outside the domain {dom.text()}"
                    f"{' (' + dom.description + ')' if dom.description else ''}"
                )
        for c in self.constraints:
            check = _CONSTRAINT_CHECKS.get(c.name)
            if check is not None:
                check(self, c, t)
        sizes = {size: p.shape[axis] for axis, (_, size) in enumerate(self.indices)}
        return {str(self.pred.label): p, str(self.target.label): t}, sizes

    def __call__(self, pred, target) -> float:
        """The loss value :math:`E` (float64)."""
        arrays, sizes = self._arrays(pred, target)
        per = np.broadcast_to(self._value_kernel(arrays, sizes), arrays[str(self.pred.label)].shape)
        coef = float(self.coef.subs(sizes))
        return float(coef * np.sum(per)) + 0.0  # no negative zero

    def grad(self, pred, target) -> np.ndarray:
        """:math:`\\partial E / \\partial x`, an array of the input's shape."""
        arrays, sizes = self._arrays(pred, target)
        shape = arrays[str(self.pred.label)].shape
        return np.array(np.broadcast_to(self._grad_kernel(arrays, sizes), shape), dtype=np.float64)

    def hess(self, pred, target) -> np.ndarray:
        """The Hessian: its diagonal (input's shape) or per-sample blocks ``(n, m, m)``."""
        arrays, sizes = self._arrays(pred, target)
        shape = arrays[str(self.pred.label)].shape
        if not self.separable:
            shape = (*shape, shape[-1])
        return np.array(np.broadcast_to(self._hess_kernel(arrays, sizes), shape), dtype=np.float64)


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


def _check_rows_sum_to_one(loss: Loss, c: Constraint, t: np.ndarray) -> None:
    sums = t.sum(axis=-1)
    bad = ~np.isclose(sums, 1.0, rtol=0, atol=1e-9 * t.shape[-1])
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(
            f"{loss.name}: target row {row} sums to {float(sums[row])!r}, but {c.description}"
        )


_CONSTRAINT_CHECKS: dict[str, Callable[[Loss, Constraint, np.ndarray], None]] = {
    "one_hot": _check_rows_sum_to_one,
}


# ---------------------------------------------------------------------- registry
_REGISTRY: dict[str, Loss] = {}
_ALIASES: dict[str, str] = {}


def register(loss: Loss) -> Loss:
    """Add *loss* to the registry; duplicate names or aliases are refused."""
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


def get(name: str) -> Loss:
    """The registered loss called *name* (canonical name or alias).

    Raises
    ------
    KeyError
        For an unknown name; the message lists close matches.
    """
    _load()
    key = _ALIASES.get(name, name)
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(name, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"unknown loss {name!r}{hint} (see symloss.names())")


def catalog() -> Iterator[Loss]:
    """Every registered loss, in name order."""
    return (get(k) for k in names())


def _load() -> None:
    importlib.import_module("symloss.losses")  # registers the catalog on import


def describe_constraints(loss: Loss) -> list[str]:
    return [f"{c.name}: {c.description}" for c in loss.constraints]

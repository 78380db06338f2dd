"""The Loss value: a loss's expression, symbols, domains, parameters and metadata.

A loss is one SymPy expression, kept in three explicit parts so that each later step
is exact and cheap:

* ``term``, the summand for one element, written over ``Indexed`` elements;
* ``scale`` and ``reduction``, the factor in front of the sums (``-1`` over ``n`` for a
  mean, ``1/2`` for the article's half sum);
* ``indices``, the sums themselves as ``(index, size)`` pairs, outermost first.

``Loss.expr`` assembles the full :math:`E` from them.  :class:`Loss` holds data and
thin methods: its derivatives come from :mod:`symloss.symbolic.derivatives`, its
numbers from :mod:`symloss.numeric.evaluate`, its LaTeX from :mod:`symloss.printing`,
its derivation from :mod:`symloss.symbolic.derivation`.
"""

from __future__ import annotations

import html
import inspect
import reprlib
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import sympy as sp
from sympy import Indexed, IndexedBase, Sum, Symbol

from symloss.core.domain import Domain, Param, set_text
from symloss.errors import ArgumentError, DefinitionError, OptionError
from symloss.frameworks import lazy
from symloss.numeric import evaluate
from symloss.numeric.stabilize import expand_kernel_functions
from symloss.printing import STYLES, latex_expr, pretty_equation
from symloss.printing.mathml import mathml_block
from symloss.symbolic import derivation as derivation_steps
from symloss.symbolic import derivatives
from symloss.symbolic.calculus import Constraint
from symloss.symbolic.naming import Named
from symloss.symbols import logsumexp, softmax

#: Values in a repr: a per-class weight shows its first few entries, so it stays one line.
_SHORT = reprlib.Repr()
_SHORT.maxtuple = 4

PARTS = ("loss", "gradient", "hessian")
REDUCTIONS = ("mean", "sum", "none", "batchmean")

#: The groups a loss may belong to (its ``group``), in the docs' navigation order, each
#: with the sentence that introduces it.
GROUPS = {
    "regression": "Real-valued targets: residuals and their penalties.",
    "classification": "Class targets: cross-entropies, focal and margin losses, on "
    "probabilities or logits.",
    "segmentation": "Overlap of predicted and target masks, row by row.",
    "distributions": "Likelihoods of a distribution and divergences between distributions.",
    "similarity": "Agreement of whole vectors, such as embeddings.",
}

Index = tuple[Symbol, Symbol]


@dataclass(frozen=True)
class Composition:
    """``pred = activation(logits)``: how a loss on probabilities is fed from logits.

    ``element`` is the prediction element (``y[i]``), ``value`` its expression in the
    logits (``sigmoid(z[i])``), ``base`` the registry name of the loss on
    probabilities it composes, and ``base_loss`` that loss itself (so a derivation
    needs no registry look-up).
    """

    base: str
    element: Indexed
    value: sp.Expr
    name: str  # "sigmoid" | "softmax"
    base_loss: Loss | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, repr=False)
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
    group : str
        Where the docs list the loss: one of :data:`GROUPS` (``""``: not grouped).
        The catalog's families declare it once per module (``GROUP``), and the
        registry stamps it on their losses.
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
    named : tuple of Named
        Intermediate quantities its family names in derivations (the residual
        :math:`e_i = y_i - t_i`, TP/FP/FN, :math:`p_t`), declared once per family; see
        :mod:`symloss.symbolic.naming`.
    budget_seconds : float, optional
        Wall-clock budget for each derivation step of this loss.  Set for losses
        parsed from user text (see :mod:`symloss.symbolic.budget`); ``None`` (trusted
        registry losses) means no limit.

    ``help(loss)`` shows that loss: its formula, parameters, inputs, conventions and
    references, made from its data; ``repr(loss)`` is one line.

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
    group: str = ""
    budget_seconds: float | None = field(default=None, compare=False, repr=False)
    stable_term: sp.Expr | None = field(default=None, compare=False, repr=False)
    named: tuple[Named, ...] = field(default=(), compare=False, repr=False)
    builder: Callable[..., Loss] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if not self.indices:
            raise DefinitionError(f"loss {self.name!r} has no sum over the samples")
        if self.reduction not in self.reductions:
            raise DefinitionError(
                f"loss {self.name!r}: reduction {self.reduction!r} is not one of {self.reductions}"
            )
        if self.group and self.group not in GROUPS:
            raise DefinitionError(
                f"loss {self.name!r}: group {self.group!r} is not one of {', '.join(GROUPS)}"
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
            raise DefinitionError(f"loss {self.name!r} uses undeclared symbols: {names}")

    # ------------------------------------------------------------------ structure
    @property
    def coef(self) -> sp.Expr:
        """The factor in front of the sums: ``scale`` over the reduction's count."""
        return self.scale / self.count

    @property
    def count(self) -> sp.Expr:
        """What the reduction divides by: the sizes in ``mean_over`` for a mean, ``n``
        for ``batchmean``, else 1."""
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

    @property
    def options(self) -> dict[str, object]:
        """The structural options of the loss's builder, with its defaults: keyword-only
        arguments that change the expression (``label_smoothing``), bound at
        :func:`symloss.get`.  Empty for a loss without a builder."""
        if self.builder is None:
            return {}
        return {
            p.name: p.default
            for p in inspect.signature(self.builder).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def bind(self, **values) -> Loss:
        """This loss with hyperparameter values bound by name (``L.bind(delta=1.0)``);
        a formula from :func:`symloss.from_latex` keeps its hyperparameters symbolic
        until then."""
        params = {p.name: p for p in self.params}
        bound = dict(self.bound)
        for key, value in values.items():
            if key not in params:
                valid = ", ".join(sorted(params)) or "none"
                raise ArgumentError(f"{self.name} has no hyperparameter {key!r}; it has: {valid}")
            bound[key] = params[key].validate(value, self.name)
        return replace(self, bound=tuple(sorted(bound.items())))

    def describe_params(self) -> list[str]:
        return [
            f"{p.name} = {self.param_values[p.name]!r}"
            + (f" in {set_text(p.domain)}" if p.domain is not None else "")
            + (f": {p.description}" if p.description else "")
            for p in self.params
        ]

    @property
    def kinks(self) -> tuple[sp.Expr, ...]:
        """Expressions whose zeros are the points where the loss is not twice differentiable.

        Collected from ``Abs``, ``sign``, ``Heaviside``, ``Max``/``Min`` and ``Piecewise``
        conditions in the summand, its gradient and its Hessian; at those points
        the gradient is a documented subgradient (see ``conventions``).
        """
        return derivatives.of(self).kinks

    # ------------------------------------------------------------------ symbolic
    def gradient(self) -> sp.Expr:
        r""":math:`\partial E / \partial x_{i\ldots}` by one input element, in closed form.

        The input is the prediction, or the logits for a loss on logits.  The result
        holds no ``KroneckerDelta``, index ``Piecewise`` or evaluable ``Sum``.  See
        :meth:`constraints_used` for the facts it relies on.  With ``reduction="none"``
        it is the gradient of the sum of the per-sample losses.
        """
        return derivatives.of(self).gradient[1]

    def constraints_used(self) -> tuple[Constraint, ...]:
        """The constraints that :meth:`gradient` (and :meth:`hessian`) rely on."""
        return derivatives.of(self).gradient[2]

    def general_gradient(self) -> sp.Expr:
        """The gradient without applying any constraint."""
        return derivatives.of(self).general_gradient()

    @property
    def hessian_index(self) -> Symbol | None:
        """The extra index of the per-sample Hessian block (``None`` when diagonal)."""
        return derivatives.of(self).hessian_index

    def hessian(self) -> sp.Expr:
        r"""The Hessian of :math:`E` in closed form.

        For a separable loss, the diagonal element :math:`\partial^2 E/\partial x_i^2`
        (all other entries are 0).  For a loss coupled across classes (softmax), the
        per-sample block :math:`\partial^2 E/\partial z_{ij}\partial z_{ik}`, written with
        :math:`\delta_{jk}`; blocks of different samples are 0.
        """
        return derivatives.of(self).hessian[1]

    # ------------------------------------------------------------------ printing
    def latex(self, style: str = "standard", part: str = "loss") -> str:
        r"""LaTeX for the loss, its gradient or its Hessian.

        ``style="article"`` reproduces the source article's notation (bare ``log``,
        ``\,`` spacing, braces around summands); ``"standard"`` is conventional LaTeX
        that KaTeX and pdflatex accept.
        """
        if style not in STYLES:
            raise OptionError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
        lhs, rhs = self.equation(part)
        return f"{latex_expr(lhs, style)} = {latex_expr(rhs, style)}"

    def equation(self, part: str = "loss") -> tuple[sp.Expr, sp.Expr]:
        """``(lhs, rhs)`` of a part: ``E = ...``, ``dE/dx = ...`` or the Hessian's."""
        E = Symbol("E")
        x = self.element
        if part == "loss":
            if self.reduction == "none":  # one value per sample: E_i, no sum over i
                (first, _), *inner = self.indices
                body = (
                    Sum(self.term, *((v, 1, s) for v, s in reversed(inner))) if inner else self.term
                )
                return sp.IndexedBase("E")[first], sp.Mul(self.scale, body, evaluate=False)
            return E, self.expr
        if part == "gradient":
            return sp.Derivative(E, x), self.gradient()
        if part == "hessian":
            if self.separable:
                return sp.Derivative(E, x, 2), self.hessian()
            return sp.Derivative(E, x, derivatives.of(self).hessian_partner), self.hessian()
        raise OptionError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")

    def pretty(self, part: str = "loss") -> str:
        """Unicode text for a part, as ``symloss show`` prints it."""
        return pretty_equation(*self.equation(part))

    def derivation(self, named: bool = True) -> list:
        """The gradient's derivation, step by step (see :mod:`symloss.symbolic.derivation`).

        For a loss on logits: the derivative by the prediction, the activation's
        Jacobian, the chain rule, and the simplification that names each constraint
        it uses.  The last gradient step ends at :meth:`gradient`; a final step shows
        what the NumPy kernel evaluates (the stabilised form it is compiled from).
        ``named=False`` writes every form expanded, without the family's named
        quantities.
        """
        stable = evaluate.of(self).stable_summand
        kernel = (stable, expand_kernel_functions(stable))
        return derivation_steps.derivation(self, named=named, kernel=kernel)

    def __repr__(self) -> str:
        """One short line, such as ``<Loss huber: Huber loss, delta=1.0, reduction='mean'>``
        (the dataclass's own repr prints every field, expressions included)."""
        values = [f"{k}={_SHORT.repr(v)}" for k, v in self.param_values.items()]
        title = " ".join(self.title.split())  # a title parsed from LaTeX may hold newlines
        return f"<Loss {self.name}: {', '.join([title, *values, f'reduction={self.reduction!r}'])}>"

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def _repr_html_(self) -> str:
        """Jupyter and VS Code: the title, the loss and its gradient, the hyperparameters'
        values and the conventions.  The formulas are presentation MathML (from SymPy's
        printer), which notebooks typeset natively: no JavaScript and no ``$$``, which
        VS Code's notebooks show as raw LaTeX inside HTML."""
        rows = [
            f"<div><strong>{html.escape(self.title)}</strong> "
            f"(<code>{html.escape(self.name)}</code>, reduction "
            f"<code>{html.escape(self.reduction)}</code>)</div>"
        ]
        for part in ("loss", "gradient"):
            rows.append(mathml_block(sp.Eq(*self.equation(part), evaluate=False)))
        values = self.param_values
        bound = []
        for prm in self.params:
            symbol = prm.symbol.label if isinstance(prm.symbol, IndexedBase) else prm.symbol
            value = values[prm.name]
            shown = (
                sp.Tuple(*value)
                if isinstance(value, tuple)
                else sp.Float(value, 6)
                if not float(value).is_integer()
                else sp.Float(value)  # (Param.validate made every value a float)
            )
            bound.append(mathml_block(sp.Eq(symbol, shown, evaluate=False), display=False))
        if bound:
            rows.append("<div>where " + ", ".join(bound) + "</div>")
        if self.conventions:
            rows.append(f"<p>{html.escape(self.conventions)}</p>")
        return "\n".join(rows)

    # ------------------------------------------------------------------ numeric
    def __call__(self, pred, target, *, weight=None, **extra) -> float | np.ndarray:
        """The loss value :math:`E` (float64); per-sample values for ``reduction="none"``.

        ``weight`` (shape ``(n,)``) multiplies each sample's loss; the mean still
        divides by ``n``, as PyTorch's ``weight`` does.  Dask arrays chunked along the
        samples give a lazy 0-d dask array, computed chunk by chunk and divided once
        (:mod:`symloss.frameworks.lazy`); so do :meth:`grad` and :meth:`value_and_grad`.
        """
        if lazy.is_lazy(pred, target, weight, *extra.values()):
            return lazy.value(self, pred, target, weight, **extra)
        return evaluate.value(self, pred, target, weight, **extra)

    def grad(self, pred, target, *, weight=None, out=None, **extra) -> np.ndarray:
        """:math:`\\partial E / \\partial x`, an array of the input's shape.

        ``out``, a C-contiguous float64 array of the input's shape, receives the
        gradient (and is returned), so a training loop allocates nothing per step.
        If the inputs are invalid, the error is raised and ``out``'s contents are
        unspecified (blocks are checked as they are evaluated).
        """
        if lazy.is_lazy(pred, target, weight, *extra.values()):
            return lazy.gradient(self, pred, target, weight, **_no_out(out, self), **extra)
        return evaluate.gradient(self, pred, target, weight, out, **extra)

    def hess(self, pred, target, *, weight=None, **extra) -> np.ndarray:
        """The Hessian: its diagonal (input's shape) or per-sample blocks ``(n, m, m)``."""
        return evaluate.hessian(self, pred, target, weight, **extra)

    def value_and_grad(self, pred, target, *, weight=None, out=None, **extra):
        """``(L(pred, target), L.grad(pred, target))`` in one pass.

        The inputs are validated block by block as they are evaluated, and value and
        gradient come from one fused kernel that computes their shared subexpressions
        once.  ``out`` receives the gradient, as in :meth:`grad`.
        """
        if lazy.is_lazy(pred, target, weight, *extra.values()):
            return lazy.value_and_gradient(
                self, pred, target, weight, **_no_out(out, self), **extra
            )
        return evaluate.value_and_gradient(self, pred, target, weight, out, **extra)

    # ------------------------------------------------------------------ frameworks
    def to_torch(self, backend: str = "auto"):
        """This loss as a ``torch.nn.Module``: ``crit(pred, target, weight=None, **extra)``.

        Its backward pass evaluates the closed-form gradient (a
        ``torch.autograd.Function``), not autograd through the forward code; with
        ``create_graph=True`` the gradient's own backward is the closed-form Hessian.
        Inputs keep their device and dtype; options, weights, integer labels and
        reductions behave as in ``L(pred, target)``.  CUDA tensors and ``torch.compile``
        run the code ``symloss export --format torch`` writes; CPU tensors in eager mode
        run symloss's own kernels (``backend="torch"``: the generated code everywhere).
        :mod:`symloss.frameworks.torch` says which path runs when, and the generated
        module's docstring what is checked.
        """
        from symloss.frameworks import torch as _torch

        return _torch.module(self, backend)

    def to_jax(self):
        """This loss as a JAX function ``f(pred, target, weight=None, **extra)``.

        A ``jax.custom_vjp`` function whose VJP evaluates the closed-form gradient
        (and whose gradient's VJP the closed-form Hessian); ``jax.jit``, ``jax.vmap``
        and ``jax.grad`` work.  It runs the code ``symloss export --format jax``
        writes (:mod:`symloss.frameworks`), which says what is checked.
        """
        from symloss.frameworks import jax as _jax

        return _jax.function(self)


def _no_out(out, loss: Loss) -> dict:
    """``out=`` with dask arrays: refused (the result is a lazy dask array)."""
    if out is not None:
        raise ArgumentError(f"{loss.name}: out= is for NumPy arrays; dask inputs give a dask array")
    return {}


# ---------------------------------------------------------------------- help()
def _wrapped(text: str, prefix: str = "") -> list[str]:
    # URLs and formulas are not cut: a long reference stays copyable.
    return textwrap.wrap(
        text,
        width=84,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_long_words=False,
        break_on_hyphens=False,
    )


def _section(title: str, lines: list[str]) -> list[str]:
    return ["", title, "-" * len(title), *lines] if lines else []


def _help_text(loss: Loss) -> str:
    """What ``help(loss)`` shows, made from the loss's data: its formula (LaTeX in the
    standard style, and as text), parameters and options with their values, inputs,
    conventions and references."""
    aliases = f"; aliases: {', '.join(loss.aliases)}" if loss.aliases else ""
    formula = [loss.latex(), "", *(line.rstrip() for line in loss.pretty().splitlines())]
    parameters = [*loss.describe_params()]
    parameters.append(
        f"reduction = {loss.reduction!r}: one of {', '.join(map(repr, loss.reductions))}"
    )
    options = ", ".join(f"{k}={v!r}" for k, v in loss.options.items())
    if options:
        options += " (the defaults; each changes the expression: set it at symloss.get)"
    inputs = [f"{label}: {dom.description}, in {dom.text()}" for label, dom in loss.domains.items()]
    inputs += [c.description for c in loss.constraints]
    references = [line for r in loss.references for line in _wrapped(r, "- ")]
    lines = [
        f"{loss.title} ({loss.name}{aliases})",
        *_section("Formula", formula),
        *_section("Parameters", parameters),
        *_section("Options", _wrapped(options)),
        *_section("Inputs", inputs),
        *_section("Conventions", _wrapped(loss.conventions)),
        *_section("References", references),
    ]
    return "\n".join(lines)


class _InstanceDoc:
    """``Loss.__doc__``: the class's docstring on the class, :func:`_help_text` on a loss.

    ``help(loss)`` and ``pydoc`` read ``loss.__doc__``.  Each loss's text is made on
    first use, not in ``__post_init__``: printing its LaTeX and text form takes about
    2 ms a loss (0.2 s for the catalog), which every loss built, bound or replaced
    would pay.  The text is kept in the instance's ``__dict__``, which wins over this
    (non-data) descriptor.
    """

    def __init__(self, class_doc: str | None):
        self.class_doc = class_doc

    def __get__(self, loss: Loss | None, owner: type | None = None) -> str | None:
        if loss is None:
            return self.class_doc
        text = _help_text(loss)
        loss.__dict__["__doc__"] = text
        return text


Loss.__doc__ = _InstanceDoc(Loss.__doc__)  # type: ignore[assignment]

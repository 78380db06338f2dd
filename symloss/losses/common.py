r"""What the loss families share, each stated once: arrays, domains, hyperparameters, shapes.

* the arrays ``y`` (prediction), ``t`` (target), ``z`` (logits) and ``w`` (class weights);
* the domains several families use (the real line and its roles, probabilities,
  binary, signed and one-hot targets, positive reals) and the one-hot row constraint;
* builders of hyperparameters, whose domain follows from their symbol's sign
  (:func:`param`), and of the common ones: :func:`eps_param`,
  :func:`class_weight_param`, :func:`label_smoothing_param`;
* builders of the common shapes, which fill a :class:`~symloss.core.loss.Loss`'s
  ``indices``, ``pred``, ``target`` and ``domains``: :func:`elementwise` (one term per
  sample, :math:`\sum_i f(y_i, t_i)`), :func:`rowwise` (one term per sample and class,
  :math:`\sum_i \sum_j f(y_{ij}, t_{ij})`) and :func:`per_row` (one term per sample,
  over its whole row); each on logits :math:`z` with ``logits=True``;
* :func:`mean_statement`, the reduction clause that opens several losses' conventions;
* the named quantities several families share (:data:`RESIDUAL`, :func:`named_margin`),
  which derivations print by name (:mod:`symloss.symbolic.naming`).

A domain or constraint used by one family only stays in that family's module.

Layer 5 (:mod:`symloss.losses`): imports :mod:`symloss.core` and below.
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp
from sympy import FiniteSet, IndexedBase, Interval, Symbol

from symloss.core.domain import Domain, Param
from symloss.core.loss import Index, Loss
from symloss.symbolic.calculus import Constraint
from symloss.symbolic.naming import Named
from symloss.symbols import array, i, j, m, n

# ---------------------------------------------------------------------- arrays
y, t, z = array("y"), array("t"), array("z")
#: Per-class weights, ``w[j]``; enters an expression only when a class weight is given.
class_weight_symbol = array("w")

#: The sums of the common shapes: over the samples, and over samples and classes.
SAMPLES: tuple[Index, ...] = ((i, n),)
ROWS: tuple[Index, ...] = ((i, n), (j, m))

# ---------------------------------------------------------------------- named quantities
#: The residual e = y - t, named in the derivations of the losses of a residual
#: (regression, Gaussian NLL, Tweedie, the article's SSE).
RESIDUAL = Named(array("e")[i], y[i] - t[i], "the residual")


def named_margin(x: IndexedBase) -> Named:
    r"""The margin :math:`\mu_i = t_i x_i` of a score ``x`` (``y`` or logits ``z``) and a
    target in {-1, 1}: the hinge and exponential losses are functions of it."""
    return Named(array("mu")[i], t[i] * x[i], "the margin")


# ---------------------------------------------------------------------- domains
#: The set of every real-line domain: finite values only (the numeric checks refuse
#: inf and NaN whatever the set).
REAL_LINE = Interval.open(-sp.oo, sp.oo)
NONNEGATIVE_REALS = Interval(0, sp.oo)


def real_line(description: str) -> Domain:
    """A domain on the whole real line, described for its role (logit, score, ...)."""
    return Domain(REAL_LINE, None, description)


REAL = real_line("finite real")
LOGIT = real_line("finite real logit")
POSITIVE = Domain(Interval.open(0, sp.oo), None, "positive real")
PROBABILITY = Domain(
    Interval.open(0, 1),
    Interval(0, 1),
    "probability in (0, 1); 0 and 1 give the limit, +inf where the loss is infinite",
)
BINARY_TARGET = Domain(Interval(0, 1), None, "class 0 or 1 (soft labels in [0, 1] allowed)")
SIGNED_LABEL = Domain(FiniteSet(-1, 1), None, "class label -1 or 1")
ONE_HOT_TARGET = Domain(Interval(0, 1), None, "one-hot row (probability rows allowed)")
ONE_HOT = Constraint(
    "one_hot",
    sp.Sum(t[i, j], (j, 1, m)),
    sp.S.One,
    "each target row sums to 1 (one-hot, or a probability distribution)",
)

# ---------------------------------------------------------------------- hyperparameters
#: epsilon as a positive guard (a floor under a denominator, a shift inside a log).
epsilon = Symbol("epsilon", positive=True)
#: epsilon where 0 is allowed (label smoothing, Dice's smooth term, cosine's eps).
epsilon_or_zero = Symbol("epsilon", nonnegative=True)


def param(name: str, symbol: Symbol, default, description: str, *, upper=sp.oo, sweep=()) -> Param:
    """A scalar hyperparameter whose domain follows its symbol's sign.

    ``(0, upper]`` for a positive symbol (``(0, oo)`` by default), ``[0, upper]`` for a
    non-negative one: the sign SymPy simplifies with and the values :func:`symloss.get`
    accepts are one fact.  *sweep*: values the docs compare in a plot.
    """
    if symbol.is_positive:
        domain = Interval.Lopen(0, upper)
    elif symbol.is_nonnegative:
        domain = Interval(0, upper)
    else:
        raise ValueError(f"{name}: give a Param its own domain; {symbol} has no sign")
    return Param(name, symbol, default, domain, description, tuple(sweep))


def eps_param(default: float, description: str) -> Param:
    """The positive guard ``eps`` (symbol :data:`epsilon`) with its default."""
    return param("eps", epsilon, default, description)


def class_weight_param(
    value, description: str = "per-class weight w_j of class j's term (PyTorch's weight)"
) -> Param:
    """PyTorch's ``weight``: one non-negative number per class, symbol ``w[j]``."""
    return Param("class_weight", class_weight_symbol, value, NONNEGATIVE_REALS, description)


def label_smoothing_param(value, description: str) -> Param:
    """The label smoothing epsilon in [0, 1] (symbol :data:`epsilon_or_zero`)."""
    return param("label_smoothing", epsilon_or_zero, value, description, upper=1)


# ---------------------------------------------------------------------- conventions
def mean_statement(indices: tuple[Index, ...]) -> str:
    """How a mean over the samples is stated, made from the loss's sums: ``Mean over
    the n samples``, and ``of the sum over the m classes`` for a sum over classes.

    The article's losses open their conventions with it, and a composition on logits
    states its base's reduction with it (from the base's sums, not from its prose).

    >>> mean_statement(ROWS)
    'Mean over the n samples of the sum over the m classes'
    """
    (_, samples), *inner = indices
    classes = "".join(f" of the sum over the {size} classes" for _, size in inner)
    return f"Mean over the {samples} samples{classes}"


# ---------------------------------------------------------------------- shapes
def build(
    name: str,
    title: str,
    term: sp.Expr,
    *,
    indices: tuple[Index, ...],
    target: Domain,
    pred: Domain | None = None,
    logits: bool = False,
    extra: Mapping[IndexedBase, Domain] | None = None,
    scale: sp.Expr = sp.S.One,
    **fields,
) -> Loss:
    """A :class:`Loss` on ``y`` (or ``z`` with *logits*) and ``t`` over *indices*.

    *pred* and *target* are the domains of the prediction and the target; *pred*
    defaults to :data:`REAL`, or :data:`LOGIT` on logits.  *extra* maps further input
    arrays (passed by keyword at call time) to their domains.  Every input has a
    domain, so every input is checked.  Other *fields* go to :class:`Loss` as they are.
    """
    x = z if logits else y
    if pred is None:
        pred = LOGIT if logits else REAL
    elif logits:
        raise ValueError(f"{name}: a loss on logits takes the LOGIT domain; do not give pred")
    extra = dict(extra or {})
    domains = {str(x.label): pred, str(t.label): target}
    domains.update({str(b.label): d for b, d in extra.items()})
    if extra:
        fields["extra_inputs"] = tuple(extra)
    return Loss(
        name=name,
        title=title,
        term=term,
        scale=scale,
        indices=indices,
        pred=x,
        target=t,
        domains=domains,
        **fields,
    )


def elementwise(name: str, title: str, term: sp.Expr, *, target=REAL, index=i, **fields) -> Loss:
    r"""One term per sample (element), :math:`\sum_i f(y_i, t_i)`; an input of any shape
    is flattened.  *index* is the summation letter (the article's SSE sums over ``k``);
    the target defaults to :data:`REAL`.  See :func:`build` for the other arguments."""
    return build(name, title, term, indices=((index, n),), target=target, **fields)


def rowwise(name: str, title: str, term: sp.Expr, *, target: Domain, **fields) -> Loss:
    r"""One term per sample and class, :math:`\sum_i \sum_j f(y_{ij}, t_{ij})`, over
    ``(n, m)`` arrays.  See :func:`build` for the other arguments."""
    return build(name, title, term, indices=ROWS, target=target, **fields)


def per_row(name: str, title: str, term: sp.Expr, *, target: Domain, **fields) -> Loss:
    r"""One term per sample over its whole row: the sum runs over :math:`i` only and the
    elements are :math:`y_{ij}` (cosine, Dice, the categorical hinge).  See :func:`build`
    for the other arguments."""
    return build(name, title, term, indices=SAMPLES, element_indices=ROWS, target=target, **fields)

"""The source article's three losses, and the two compositions with their activations.

Source: 9cubed, "Python - Deep learning - Loss functions" (2019-09-15), formulas copied
exactly in ``shared/ARTICLE.md``.  Sums are written with ``Add(..., evaluate=False)`` so
that the printed term order is the article's own.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp
from sympy import Add, Interval, Mul, Rational, Symbol, log

from .._calculus import Constraint
from .._core import Composition, Domain, Loss, Param, register
from .._symbols import array, i, j, k, m, n, sigmoid, softmax

y, t, z = array("y"), array("t"), array("z")

ARTICLE = '9cubed, "Python - Deep learning - Loss functions", 2019-09-15.'

PROBABILITY = Domain(
    Interval.open(0, 1),
    Interval(0, 1),
    "probability in (0, 1); 0 and 1 give the limit, +inf where the loss is infinite",
)
#: Element-wise predictions and targets on the whole real line (shared by the families).
REAL = Domain(Interval.open(-sp.oo, sp.oo), None, "finite real")
LOGIT = Domain(Interval.open(-sp.oo, sp.oo), None, "finite real logit")
BINARY_TARGET = Domain(Interval(0, 1), None, "class 0 or 1 (soft labels in [0, 1] allowed)")
ONE_HOT_TARGET = Domain(Interval(0, 1), None, "one-hot row (probability rows allowed)")
ONE_HOT = Constraint(
    "one_hot",
    sp.Sum(t[i, j], (j, 1, m)),
    sp.S.One,
    "each target row sums to 1 (one-hot, or a probability distribution)",
)

sse = register(
    Loss(
        name="sum_squared_error",
        title="Sum of squared errors",
        term=Add(y[k], -t[k], evaluate=False) ** 2,
        scale=Rational(1, 2),
        reduction="sum",
        indices=((k, n),),
        pred=y,
        target=t,
        domains={"y": Domain(Interval(-sp.oo, sp.oo), None, "real"), "t": REAL},
        aliases=("sse",),
        references=(ARTICLE,),
        conventions=(
            "Half the sum (not the mean) of squared residuals; the 1/2 cancels the 2 of "
            "the derivative, so the gradient is the residual y_k - t_k."
        ),
    )
)

bce = register(
    Loss(
        name="binary_cross_entropy",
        title="Binary cross-entropy",
        term=Add(t[i] * log(y[i]), (1 - t[i]) * log(1 - y[i]), evaluate=False),
        scale=sp.S.NegativeOne,
        indices=((i, n),),
        pred=y,
        target=t,
        domains={"y": PROBABILITY, "t": BINARY_TARGET},
        aliases=("bce",),
        references=(ARTICLE,),
        conventions=(
            "Mean over the n samples; natural log; t is the class (0 or 1), not one-hot. "
            "At y = 0 or 1 the convention 0 log 0 = 0 gives the finite limit; with the "
            "opposite target the loss is +inf (PyTorch clamps log at -100 instead)."
        ),
    )
)

cce = register(
    Loss(
        name="categorical_cross_entropy",
        title="Categorical cross-entropy",
        term=t[i, j] * log(y[i, j]),
        scale=sp.S.NegativeOne,
        indices=((i, n), (j, m)),
        pred=y,
        target=t,
        domains={"y": PROBABILITY, "t": ONE_HOT_TARGET},
        constraints=(ONE_HOT,),
        aliases=("cce",),
        references=(ARTICLE,),
        conventions=(
            "Mean over the n samples of the sum over the m classes; natural log; t one-hot "
            "(probability rows, e.g. label-smoothed, are accepted: each row must sum to 1)."
        ),
    )
)


def _substitute(expr, old, new):
    """``expr.xreplace({old: new})`` that keeps an authored (unevaluated) term order."""
    if expr == old:
        return new
    if not expr.args:
        return expr
    args = [_substitute(a, old, new) for a in expr.args]
    if isinstance(expr, (sp.Add, sp.Mul)):
        return expr.func(*args, evaluate=False)
    return expr.func(*args)


def _compose(base: Loss, name: str, title: str, element, value, act: str, aliases, extra):
    return Loss(
        name=name,
        title=title,
        term=_substitute(base.term, element, value),
        scale=base.scale,
        reduction=base.reduction,
        indices=base.indices,
        pred=z,
        target=t,
        domains={"z": LOGIT, "t": base.domains["t"]},
        constraints=base.constraints,
        aliases=aliases,
        references=base.references + extra,
        conventions=base.conventions.split(";")[0]
        + f"; the prediction is {act} of the logits, evaluated stably "
        "(softplus / log-sum-exp).",
        composition=Composition(base.name, element, value, act),
    )


#: Symbols of the options below; they enter an expression only when the option is given.
pos_weight_symbol = Symbol("w_p", nonnegative=True)
smoothing = Symbol("epsilon", nonnegative=True)
class_weight_symbol = array("w")

SMOOTHING_DOMAIN = Interval(0, 1)
WEIGHT_DOMAIN = Interval(0, sp.oo)


def sigmoid_binary_cross_entropy(*, pos_weight=None, label_smoothing=None) -> Loss:
    r"""Binary cross-entropy on logits, :math:`y_i = \sigma(z_i)`, with pos_weight and smoothing.

    Parameters
    ----------
    pos_weight : float, optional
        PyTorch's ``pos_weight`` (a scalar here): the positive term is multiplied by
        :math:`w_p`, :math:`-[w_p t \log\sigma(z) + (1 - t) \log(1 - \sigma(z))]`.
    label_smoothing : float in [0, 1], optional
        Keras's ``label_smoothing`` for binary cross-entropy: the target becomes
        :math:`t (1 - \epsilon) + \epsilon/2`, i.e. smoothed towards 1/2.

    Without options the expression is the article's BCE composed with the sigmoid;
    each option adds its symbol (``w_p``, ``epsilon``) to the expression and its value
    to :attr:`Loss.param_values`.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("bce_logits", pos_weight=3.0)
    >>> round(float(L([0.0], [1.0])), 6)  # 3 log 2
    2.079442
    """
    loss = _compose(
        bce,
        "sigmoid_binary_cross_entropy",
        "Binary cross-entropy on logits (sigmoid)",
        y[i],
        sigmoid(z[i]),
        "sigmoid",
        ("bce_logits",),
        (
            "PyTorch: torch.nn.functional.binary_cross_entropy_with_logits "
            "(https://pytorch.org/docs/stable/generated/"
            "torch.nn.functional.binary_cross_entropy_with_logits.html).",
        ),
    )
    if pos_weight is None and label_smoothing is None:
        return loss
    term, params, notes = loss.term, [], []
    if label_smoothing is not None:
        smoothed = Add(t[i] * (1 - smoothing), smoothing / 2, evaluate=False)
        term = _substitute(term, t[i], smoothed)
        params.append(
            Param(
                "label_smoothing",
                smoothing,
                label_smoothing,
                SMOOTHING_DOMAIN,
                "the target becomes t (1 - epsilon) + epsilon/2 (Keras BinaryCrossentropy)",
            )
        )
        notes.append(
            "label_smoothing epsilon replaces t by t (1 - epsilon) + epsilon/2, towards 1/2, "
            "as Keras's BinaryCrossentropy(label_smoothing=...) does; the gradient is "
            "(sigmoid(z) - t')/n with that smoothed t'."
        )
    if pos_weight is not None:
        positive, negative = term.args
        term = Add(Mul(pos_weight_symbol, positive, evaluate=False), negative, evaluate=False)
        params.append(
            Param(
                "pos_weight",
                pos_weight_symbol,
                pos_weight,
                WEIGHT_DOMAIN,
                "multiplies the positive term t log(sigmoid(z)) (PyTorch's pos_weight)",
            )
        )
        notes.append(
            "pos_weight w_p multiplies the positive term, -[w_p t log sigmoid(z) + (1 - t) "
            "log(1 - sigmoid(z))], as PyTorch's pos_weight (a scalar here; PyTorch also "
            "broadcasts a per-class vector)"
            + ("; it applies to the smoothed target." if label_smoothing is not None else ".")
        )
    return replace(
        loss,
        term=term,
        params=tuple(params),
        conventions=loss.conventions + " " + " ".join(notes),
    )


def softmax_cross_entropy(*, label_smoothing=None, class_weight=None, ignore_index=-100) -> Loss:
    r"""Categorical cross-entropy on logits, :math:`y_{ij} = \operatorname{softmax}(z)_{ij}`.

    Parameters
    ----------
    label_smoothing : float in [0, 1], optional
        PyTorch's ``label_smoothing``: the target becomes
        :math:`(1 - \epsilon) t_{ij} + \epsilon/m`.
    class_weight : sequence of float, optional
        PyTorch's ``weight``: class :math:`j`'s term is multiplied by :math:`w_j`.  With
        integer labels the mean divides by :math:`\sum_i w_{y_i}`, as PyTorch does.
    ignore_index : int or None
        With integer labels, rows labelled ``ignore_index`` count for nothing, neither
        in the sum nor in the mean's count (PyTorch's default, -100).

    Integer labels of shape ``(n,)`` are accepted as well as one-hot (or probability)
    rows of shape ``(n, m)``.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("cce_logits", label_smoothing=0.1)
    >>> round(float(L([[0.0, 0.0]], [1])), 6)  # log 2 for any target at equal logits
    0.693147
    """
    loss = _compose(
        cce,
        "softmax_cross_entropy",
        "Categorical cross-entropy on logits (softmax)",
        y[i, j],
        softmax(z, i, j),
        "softmax",
        ("cce_logits",),
        (
            "PyTorch: torch.nn.functional.cross_entropy "
            "(https://pytorch.org/docs/stable/generated/"
            "torch.nn.functional.cross_entropy.html).",
        ),
    )
    notes = [
        "Integer labels (shape (n,)) are one-hot encoded; "
        + (
            f"rows labelled ignore_index = {ignore_index!r} (PyTorch's default is -100) count "
            "for nothing, in the sum and in the mean's count, as PyTorch's ignore_index."
            if ignore_index is not None
            else "ignore_index=None: every label counts."
        )
    ]
    term, params = loss.term, []
    if label_smoothing is not None:
        smoothed = Add((1 - smoothing) * t[i, j], smoothing / m, evaluate=False)
        term = _substitute(term, t[i, j], smoothed)
        params.append(
            Param(
                "label_smoothing",
                smoothing,
                label_smoothing,
                SMOOTHING_DOMAIN,
                "the target becomes (1 - epsilon) t + epsilon/m (PyTorch's label_smoothing)",
            )
        )
        notes.append(
            "label_smoothing epsilon replaces t by (1 - epsilon) t + epsilon/m, as PyTorch's "
            "cross_entropy(label_smoothing=...) does for class labels and for probability "
            "targets; the gradient is still (softmax(z) - t')/n, since the smoothed rows "
            "also sum to 1."
        )
    if class_weight is not None:
        term = Mul(class_weight_symbol[j], term, evaluate=False)
        params.append(
            Param(
                "class_weight",
                class_weight_symbol,
                class_weight,
                WEIGHT_DOMAIN,
                "per-class weight w_j of class j's term (PyTorch's weight)",
            )
        )
        notes.append(
            "class_weight w multiplies class j's term by w_j.  With integer labels the "
            "mean divides by the summed weights of the (kept) labels, sum_i w_{y_i}, and "
            "with one-hot or probability rows by n: both as PyTorch's cross_entropy "
            "(weight=...).  With label_smoothing too, the weighted smoothed target "
            "-sum_j w_j t'_ij log softmax_ij is exactly PyTorch's "
            "(1 - epsilon) w_y nll + (epsilon/m) sum_j w_j (-log softmax_ij), over the "
            "same count."
        )
    return replace(
        loss,
        term=term,
        params=tuple(params),
        ignore_index=ignore_index,
        label_reduction=class_weight is not None,
        conventions=loss.conventions + " " + " ".join(notes),
    )


bce_logits = register(sigmoid_binary_cross_entropy)
cce_logits = register(softmax_cross_entropy)

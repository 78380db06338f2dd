"""The source article's three losses, and the two compositions with their activations.

Source: 9cubed, "Python - Deep learning - Loss functions" (2019-09-15), formulas copied
exactly in ``shared/ARTICLE.md``.  Sums are written with ``Add(..., evaluate=False)`` so
that the printed term order is the article's own.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp
from sympy import Add, Mul, Rational, Symbol, log

from symloss.core.loss import Composition, Loss
from symloss.losses.common import (
    BINARY_TARGET,
    ONE_HOT,
    ONE_HOT_TARGET,
    PROBABILITY,
    RESIDUAL,
    ROWS,
    SAMPLES,
    build,
    class_weight_param,
    class_weight_symbol,
    elementwise,
    label_smoothing_param,
    mean_statement,
    param,
    rowwise,
    t,
    y,
    z,
)

# LOGIT lived here before symloss.losses.common: re-exported for the imports of that time.
from symloss.losses.common import LOGIT as LOGIT
from symloss.losses.common import epsilon_or_zero as smoothing
from symloss.symbols import i, j, k, m, sigmoid, softmax

ARTICLE = '9cubed, "Python - Deep learning - Loss functions", 2019-09-15.'

#: The article's example table (section 2 of the article): ``(y_i, t_i)`` of each row,
#: by the loss it illustrates.  The docs and ``symloss table`` compute its columns.
ARTICLE_TABLES = {
    "binary_cross_entropy": ((0.2, 0.0), (0.8, 0.0), (0.2, 1.0), (0.8, 1.0)),
}

#: The standard sources for the article's losses, cited beside the article.
BISHOP = (
    "Bishop, 'Pattern Recognition and Machine Learning', Springer 2006: the sum-of-squares "
    "error with its 1/2 (eq. 1.2), the cross-entropy error (eqs. 4.90, 4.108) "
    "(https://www.microsoft.com/en-us/research/publication/"
    "pattern-recognition-machine-learning/)."
)
GOODFELLOW = (
    "Goodfellow, Bengio, Courville, 'Deep Learning', MIT Press 2016, section 6.2.2 "
    "(https://www.deeplearningbook.org/contents/mlp.html)."
)

sse = elementwise(
    "sum_squared_error",
    "Sum of squared errors",
    Add(y[k], -t[k], evaluate=False) ** 2,
    scale=Rational(1, 2),
    reduction="sum",
    index=k,
    named=(RESIDUAL,),
    aliases=("sse",),
    group="regression",
    references=(
        ARTICLE,
        BISHOP,
        "optax: optax.losses.l2_loss (0.5 (y - t)^2 element-wise; reduction='none') "
        "(https://optax.readthedocs.io/en/latest/api/losses.html).",
        "PyTorch: torch.nn.functional.mse_loss with reduction='sum', halved "
        "(https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html).",
    ),
    conventions=(
        "Half the sum (not the mean) of squared residuals; the 1/2 cancels the 2 of "
        "the derivative, so the gradient is the residual y_k - t_k."
    ),
)

bce = elementwise(
    "binary_cross_entropy",
    "Binary cross-entropy",
    Add(t[i] * log(y[i]), (1 - t[i]) * log(1 - y[i]), evaluate=False),
    scale=sp.S.NegativeOne,
    pred=PROBABILITY,
    target=BINARY_TARGET,
    aliases=("bce",),
    references=(
        ARTICLE,
        BISHOP,
        GOODFELLOW,
        "PyTorch: torch.nn.functional.binary_cross_entropy "
        "(https://pytorch.org/docs/stable/generated/torch.nn.BCELoss.html).",
        "Keras: keras.losses.BinaryCrossentropy "
        "(https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class).",
        "scikit-learn: sklearn.metrics.log_loss "
        "(https://scikit-learn.org/stable/modules/generated/sklearn.metrics.log_loss.html).",
    ),
    conventions=(
        mean_statement(SAMPLES) + "; natural log; t is the class (0 or 1), not one-hot. "
        "At y = 0 or 1 the convention 0 log 0 = 0 gives the finite limit; with the "
        "opposite target the loss is +inf (PyTorch clamps log at -100 instead)."
    ),
)

cce = rowwise(
    "categorical_cross_entropy",
    "Categorical cross-entropy",
    t[i, j] * log(y[i, j]),
    scale=sp.S.NegativeOne,
    pred=PROBABILITY,
    target=ONE_HOT_TARGET,
    constraints=(ONE_HOT,),
    aliases=("cce",),
    references=(
        ARTICLE,
        BISHOP,
        GOODFELLOW,
        "Keras: keras.losses.CategoricalCrossentropy "
        "(https://keras.io/api/losses/probabilistic_losses/#categoricalcrossentropy-class).",
        "scikit-learn: sklearn.metrics.log_loss with one-hot rows "
        "(https://scikit-learn.org/stable/modules/generated/sklearn.metrics.log_loss.html).",
    ),
    conventions=(
        mean_statement(ROWS) + "; natural log; t one-hot (probability rows, e.g. "
        "label-smoothed, are accepted: each row must sum to 1)."
    ),
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
    return build(
        name,
        title,
        _substitute(base.term, element, value),
        indices=base.indices,
        logits=True,
        target=base.domains["t"],
        scale=base.scale,
        reduction=base.reduction,
        constraints=base.constraints,
        aliases=aliases,
        # The base's sources, not its library calls: those take probabilities.
        references=tuple(r for r in base.references if not r.split(" ", 1)[0].endswith(":"))
        + extra,
        conventions=f"{mean_statement(base.indices)}; the prediction is {act} of the logits, "
        "evaluated stably (softplus / log-sum-exp).",
        composition=Composition(base.name, element, value, act, base),
    )


#: The symbol of the positive class's weight; it enters an expression only when the
#: option is given.
pos_weight_symbol = Symbol("w_p", nonnegative=True)


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
            "Keras: keras.losses.BinaryCrossentropy(from_logits=True) "
            "(https://keras.io/api/losses/probabilistic_losses/#binarycrossentropy-class).",
            "optax: optax.losses.sigmoid_binary_cross_entropy (element-wise; "
            "reduction='none') (https://optax.readthedocs.io/en/latest/api/losses.html).",
        ),
    )
    if pos_weight is None and label_smoothing is None:
        return loss
    term, params, notes = loss.term, [], []
    if label_smoothing is not None:
        smoothed = Add(t[i] * (1 - smoothing), smoothing / 2, evaluate=False)
        term = _substitute(term, t[i], smoothed)
        params.append(
            label_smoothing_param(
                label_smoothing,
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
            param(
                "pos_weight",
                pos_weight_symbol,
                pos_weight,
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
            "Keras: keras.losses.CategoricalCrossentropy(from_logits=True) "
            "(https://keras.io/api/losses/probabilistic_losses/#categoricalcrossentropy-class).",
            "optax: optax.losses.softmax_cross_entropy (per sample; reduction='none') "
            "(https://optax.readthedocs.io/en/latest/api/losses.html).",
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
            label_smoothing_param(
                label_smoothing,
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
        params.append(class_weight_param(class_weight))
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


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "classification"

CATALOG = (
    sse,
    bce,
    cce,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
)

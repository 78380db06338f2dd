r"""Margin losses on raw scores :math:`y`: hinge, squared hinge, categorical and multi-class.

Every hinge is written with :func:`~symloss.symbols.relu`, :math:`\max(0, x)`, whose
derivative is :math:`\mathbf{1}[x > 0]`: at the hinge point the gradient is 0, as
PyTorch's autograd gives for ``relu`` and as ``multi_margin_loss``'s backward gives
(it tests ``z > 0``).  Keras/TensorFlow's ``maximum`` sends the whole gradient to the
first argument at a tie and JAX's ``maximum`` half of it; each loss's ``conventions``
says what that means for it.

Examples
--------
>>> import symloss
>>> L = symloss.get("hinge")
>>> float(L([0.5, 2.0, -1.0], [1, 1, 1]))  # (0.5 + 0 + 2) / 3
0.8333333333333334
>>> L.gradient()
-step(-t[i]*y[i] + 1)*t[i]/n
"""

from __future__ import annotations

from sympy import Add, Mul, S, Sum, Symbol

from symloss.core.loss import Loss
from symloss.losses.common import (
    ONE_HOT,
    ONE_HOT_TARGET,
    SIGNED_LABEL,
    class_weight_param,
    class_weight_symbol,
    elementwise,
    named_margin,
    param,
    per_row,
    real_line,
    rowwise,
    t,
    y,
)
from symloss.symbols import i, j, k, m, relu, rowmax

margin = Symbol("Delta", nonnegative=True)

SCORE = real_line("finite real score (decision function)")

_SIGNED = (
    "t must be -1 or 1.  Keras's hinge converts a batch of {0, 1} labels to {-1, 1} "
    "when every label is 0 or 1, and scikit-learn's hinge_loss binarises any two labels; "
    "symloss refuses 0 rather than let a label's meaning depend on the rest of the batch "
    "(pass 2 t - 1).  "
)


def hinge() -> Loss:
    r"""Hinge loss, :math:`\frac{1}{n}\sum_i \max(0, 1 - t_i y_i)` with :math:`t_i = \pm 1`.

    As Keras's ``hinge``, optax's ``hinge_loss`` and scikit-learn's ``hinge_loss``.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("hinge")
    >>> L.grad([1.0, 0.0], [1, -1]) == [0.0, 0.5]  # at the hinge point t y = 1: 0
    array([ True,  True])
    """
    return elementwise(
        "hinge",
        "Hinge loss",
        relu(1 - t[i] * y[i]),
        pred=SCORE,
        target=SIGNED_LABEL,
        named=(named_margin(y),),
        aliases=("hinge_loss",),
        references=(
            "Keras: keras.losses.hinge (https://keras.io/api/losses/hinge_losses/).",
            "optax: optax.losses.hinge_loss.",
            "scikit-learn: sklearn.metrics.hinge_loss "
            "(https://scikit-learn.org/stable/modules/generated/sklearn.metrics.hinge_loss.html).",
        ),
        conventions=(
            "Mean over the n elements (an input of any shape is flattened; Keras averages "
            "the last axis, then the batch: the same mean).  "
            + _SIGNED
            + "At the hinge point t y = 1 the gradient is 0 (relu'(0) = 0, as PyTorch's "
            "autograd for relu); TensorFlow's maximum gives -t/n there and JAX's -t/(2n).  "
            "The Hessian is 0 (almost everywhere, and at the kink as autograd)."
        ),
    )


def squared_hinge() -> Loss:
    r"""Squared hinge loss, :math:`\frac{1}{n}\sum_i \max(0, 1 - t_i y_i)^2`, as Keras's.

    Examples
    --------
    >>> import symloss
    >>> float(symloss.get("squared_hinge")([0.5, -1.0], [1, 1]))  # (0.25 + 4) / 2
    2.125
    """
    return elementwise(
        "squared_hinge",
        "Squared hinge loss",
        relu(1 - t[i] * y[i]) ** 2,
        pred=SCORE,
        target=SIGNED_LABEL,
        named=(named_margin(y),),
        aliases=("squared_hinge_loss", "l2_hinge"),
        references=(
            "Keras: keras.losses.squared_hinge (https://keras.io/api/losses/hinge_losses/).",
        ),
        conventions=(
            "Mean over the n elements, without a 1/2 (Keras).  "
            + _SIGNED
            + "The gradient -2 t max(0, 1 - t y)/n is continuous; the Hessian "
            "2 t^2 1[1 - t y > 0]/n jumps at t y = 1, where it is 0 (relu'(0) = 0, as "
            "PyTorch's autograd; TensorFlow gives 2 t^2/n there)."
        ),
    )


def categorical_hinge() -> Loss:
    r"""Categorical hinge (Keras): :math:`\max(0, \text{neg} - \text{pos} + 1)` per sample.

    .. math::

        E = \frac{1}{n} \sum_i \max\left(0,\ \max_j\, (1 - t_{ij})\, y_{ij}
            - \sum_j t_{ij} y_{ij} + 1\right)

    ``pos`` is the score of the true class and ``neg`` the largest
    :math:`(1 - t_{ij}) y_{ij}`: as in Keras, the true class enters that maximum with
    the value 0, so ``neg`` is never below 0.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("categorical_hinge")
    >>> float(L([[0.3, 0.6, 0.1]], [[0, 1, 0]]))  # max(0, 0.3 - 0.6 + 1)
    0.7
    """
    neg = rowmax((1 - t[i, j]) * y[i, j], (j, 1, m))
    pos = Sum(t[i, j] * y[i, j], (j, 1, m))
    return per_row(
        "categorical_hinge",
        "Categorical hinge loss",
        relu(Add(neg, -pos, S.One, evaluate=False)),
        pred=SCORE,
        target=ONE_HOT_TARGET,
        constraints=(ONE_HOT,),
        aliases=("categorical_hinge_loss",),
        references=(
            "Keras: keras.losses.categorical_hinge (https://keras.io/api/losses/hinge_losses/).",
        ),
        conventions=(
            "Mean over the n samples of max(0, neg - pos + 1), pos = sum_j t_ij y_ij, "
            "neg = max_j (1 - t_ij) y_ij, as Keras (the true class counts in neg with "
            "the value 0).  t is a one-hot row (probability rows allowed) or an integer "
            "label of shape (n,).  Subgradients: at neg - pos + 1 = 0 the gradient is 0 "
            "(relu'(0) = 0, as PyTorch's autograd; TensorFlow gives the active branch); "
            "where several classes tie for neg, its gradient is split equally between "
            "them, as tf.reduce_max (Keras), jnp.max and torch.amax do."
        ),
    )


def multi_margin(*, p: int = 1, class_weight=None) -> Loss:
    r"""Multi-class margin loss, as PyTorch's ``multi_margin_loss``.

    .. math::

        E = \frac{1}{n} \sum_i \frac{1}{m} \sum_j (1 - t_{ij})
            \max\left(0,\ \Delta - \sum_k t_{ik} y_{ik} + y_{ij}\right)^p

    With a one-hot row :math:`t_i` (label :math:`y_i`), :math:`\sum_k t_{ik} y_{ik}` is
    the true class's score and :math:`1 - t_{ij}` drops :math:`j = y_i` from the sum.

    Parameters
    ----------
    p : {1, 2}
        The power (PyTorch's ``p``; structural: it changes the expression).
    class_weight : sequence of float, optional
        PyTorch's ``weight``: sample :math:`i`'s loss is multiplied by the weight of
        its class, :math:`\sum_k w_k t_{ik}`; the mean still divides by :math:`n`.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("multi_margin")
    >>> float(L([[0.1, 0.2, 0.4, 0.8]], [3]))  # PyTorch's docs example
    0.32499999999999996
    """
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"multi_margin: p must be 1 or 2 (as PyTorch), got {p!r}")
    score = Sum(t[i, k] * y[i, k], (k, 1, m))
    hinge_j = relu(Add(margin, -score, y[i, j], evaluate=False))
    term = Mul(1 - t[i, j], hinge_j**p, evaluate=False)
    params = [param("margin", margin, 1.0, "the margin Delta (PyTorch's margin)")]
    note = ""
    if class_weight is not None:
        term = Mul(Sum(class_weight_symbol[k] * t[i, k], (k, 1, m)), term, evaluate=False)
        params.append(
            class_weight_param(
                class_weight,
                "per-class weight; sample i's loss is multiplied by its class's w (PyTorch)",
            )
        )
        note = (
            "  class_weight: sample i's loss is multiplied by w_{y_i} = sum_k w_k t_ik, "
            "after the power, as PyTorch's kernel does (its docs write w inside the max); "
            "the mean divides by n."
        )
    return rowwise(
        "multi_margin",
        "Multi-class margin loss",
        term,
        scale=1 / m,
        pred=SCORE,
        target=ONE_HOT_TARGET,
        constraints=(ONE_HOT,),
        params=tuple(params),
        aliases=("multi_margin_loss",),
        references=(
            "PyTorch: torch.nn.functional.multi_margin_loss "
            "(https://pytorch.org/docs/stable/generated/torch.nn.MultiMarginLoss.html).",
        ),
        conventions=(
            "Each sample's loss is the sum over the classes j != y_i divided by m (all "
            "classes, as PyTorch), then the mean over the n samples.  t is a one-hot row or "
            "an integer label of shape (n,); for a probability row, sum_k t_ik y_ik is the "
            "expected score and (1 - t_ij) weighs class j (a generalisation PyTorch does "
            "not have).  p (1 or 2) is structural.  At Delta - y_y + y_j = 0 that class "
            "contributes 0 to the gradient, as PyTorch's backward (it tests z > 0)." + note
        ),
    )


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "classification"

CATALOG = (
    hinge(),
    squared_hinge(),
    categorical_hinge(),
    multi_margin,
)

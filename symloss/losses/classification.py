r"""Classification losses beyond the article's cross-entropies: focal, poly-1, soft margins.

Each loss is written on logits :math:`z` (``sigmoid`` or ``softmax`` of them is the
predicted probability), so that its kernel is evaluated stably through softplus and
log-sum-exp, and follows the library users know best for it, named in ``references``:

* ``sigmoid_focal``: torchvision's ``sigmoid_focal_loss`` (optax's with ``alpha``);
* ``softmax_focal``: Keras's ``categorical_focal_crossentropy`` on logits;
* ``poly1_cross_entropy``: optax's ``poly_loss_cross_entropy``;
* ``soft_margin`` and ``multilabel_soft_margin``: PyTorch's losses of those names.

Losses over classes take one-hot (or probability) target rows, or integer labels of
shape ``(n,)``, which are one-hot encoded.

Examples
--------
>>> import symloss
>>> L = symloss.get("sigmoid_focal")
>>> round(float(L([0.0], [1.0])), 6)  # 0.25 (1/2)^2 log 2
0.043322
>>> L.param_values
{'alpha': 0.25, 'gamma': 2.0}
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Interval, Mul, S, Symbol, log

from symloss.core.domain import Domain, Param
from symloss.core.loss import Loss
from symloss.losses.common import (
    BINARY_TARGET,
    ONE_HOT,
    ONE_HOT_TARGET,
    ROWS,
    SIGNED_LABEL,
    class_weight_param,
    class_weight_symbol,
    elementwise,
    mean_statement,
    named_margin,
    param,
    rowwise,
    t,
    z,
)
from symloss.symbolic.naming import Named
from symloss.symbols import array, i, j, m, sigmoid, softmax

alpha_symbol = Symbol("alpha", nonnegative=True)
gamma = Symbol("gamma", nonnegative=True)
poly_epsilon = Symbol("epsilon", real=True)

MULTILABEL_TARGET = Domain(Interval(0, 1), None, "label 0 or 1 per class (soft labels allowed)")

GAMMA = param(
    "gamma",
    gamma,
    2.0,
    "focusing exponent of the modulating factor (1 - p_t)^gamma",
    sweep=(0, 0.5, 1, 2, 5),  # the values of Lin et al.'s Fig. 1
)

_CLASS_ROWS = (
    mean_statement(ROWS) + "; natural log; t is a one-hot row (probability rows allowed) "
    "or an integer label of shape (n,). "
)


# ---------------------------------------------------------------------- focal losses
#: What the focal losses' derivations name: the probability p, and the class-balanced
#: alpha_t and p_t of Lin et al.; their modulating base (1 - t) p + t (1 - p) is 1 - p_t.
_p, _p_t, _alpha_t = array("p")[i], array("p_t")[i], array("alpha_t")[i]
FOCAL_NAMED = (
    Named(_p, sigmoid(z[i]), "the predicted probability"),
    Named(
        _alpha_t,
        alpha_symbol * t[i] + (1 - alpha_symbol) * (1 - t[i]),
        "the class balance",
    ),
    Named(
        _p_t,
        _p * t[i] + (1 - _p) * (1 - t[i]),
        "the probability of the true class",
        also=(((1 - _p) * t[i] + (1 - t[i]) * _p, 1 - _p_t),),
    ),
)
#: The softmax losses' name for the softmax: p_ij = softmax(z)_ij.
SOFTMAX_NAMED = (Named(array("p")[i, j], softmax(z, i, j), "the softmax probability"),)


def sigmoid_focal(*, alpha: float | None = 0.25) -> Loss:
    r"""Sigmoid focal loss (Lin et al. 2017), as torchvision's ``sigmoid_focal_loss``.

    .. math::

        E = -\frac{1}{n} \sum_i \alpha_t\, (1 - p_t)^\gamma
            \left(t_i \log \sigma(z_i) + (1 - t_i) \log(1 - \sigma(z_i))\right)

    with :math:`p = \sigma(z)`, :math:`p_t = p t + (1 - p)(1 - t)` and
    :math:`\alpha_t = \alpha t + (1 - \alpha)(1 - t)`.  The modulating factor is written
    as :math:`1 - p_t = (1 - t)\,\sigma(z) + t\,(1 - \sigma(z))`, the same function
    without the cancellation of ``1 - p_t`` near :math:`p_t = 1`.

    Parameters
    ----------
    alpha : float in [0, 1] or None
        Balance of positives and negatives (torchvision's default 0.25).  ``None``
        drops :math:`\alpha_t` altogether, as optax's default and torchvision's
        ``alpha=-1`` do.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("sigmoid_focal", alpha=None, gamma=0.0)  # plain BCE on logits
    >>> round(float(L([0.0], [1.0])), 6)
    0.693147
    """
    p = sigmoid(z[i])
    modulating = Add((1 - t[i]) * p, t[i] * (1 - p), evaluate=False) ** gamma
    cross_entropy = Add(t[i] * log(p), (1 - t[i]) * log(1 - p), evaluate=False)
    factors = [modulating, cross_entropy]
    params = [GAMMA]
    if alpha is not None:
        factors.insert(0, Add(alpha_symbol * t[i], (1 - alpha_symbol) * (1 - t[i]), evaluate=False))
        params.insert(
            0,
            param(
                "alpha",
                alpha_symbol,
                alpha,
                "weight alpha of the positives, 1 - alpha of the negatives (None: no weight)",
                upper=1,
            ),
        )
    return elementwise(
        "sigmoid_focal",
        "Sigmoid focal loss",
        Mul(*factors, evaluate=False),
        scale=S.NegativeOne,
        logits=True,
        target=BINARY_TARGET,
        params=tuple(params),
        named=FOCAL_NAMED,
        aliases=("focal", "sigmoid_focal_loss"),
        references=(
            "torchvision: torchvision.ops.sigmoid_focal_loss "
            "(https://pytorch.org/vision/stable/generated/"
            "torchvision.ops.sigmoid_focal_loss.html).",
            "optax: optax.losses.sigmoid_focal_loss (alpha=None by default).",
            "Lin, Goyal, Girshick, He, Dollar, 'Focal Loss for Dense Object Detection', "
            "ICCV 2017 (arXiv:1708.02002).",
        ),
        conventions=(
            "Mean over the n elements (an input of any shape is flattened), as torchvision's "
            "reduction='mean'; torchvision's default reduction is 'none' and optax returns "
            "per-element values: use reduction='none' for those.  Natural log; the "
            "cross-entropy is BCE on logits, evaluated through softplus.  alpha = None "
            "drops alpha_t (optax's default; torchvision's alpha < 0).  Soft targets in "
            "[0, 1] are accepted, as torchvision and optax accept them.  For gamma < 1 "
            "(gamma < 2 for the Hessian) the derivative of (1 - p_t)^gamma is infinite where "
            "1 - p_t underflows to 0 (|z| > 745 in float64), times a factor that underflows "
            "with it: the kernels return the float64 value there, 0 (the true one is below "
            "the smallest double), not NaN (0 * inf); torchvision computes 1 - p_t with "
            "cancellation and returns NaN from |z| ~ 37."
        ),
    )


def softmax_focal() -> Loss:
    r"""Softmax (categorical) focal loss, as Keras's ``categorical_focal_crossentropy``.

    .. math::

        E = -\frac{1}{n} \sum_i \sum_j \alpha\, (1 - p_{ij})^\gamma\, t_{ij} \log p_{ij},
        \qquad p_{ij} = \operatorname{softmax}(z)_{ij}

    Lin et al.'s focal loss extended to :math:`m` classes; with a one-hot row it is
    :math:`-\alpha (1 - p_y)^\gamma \log p_y`.  ``alpha = 1`` gives the form without
    the balancing factor.

    Examples
    --------
    >>> import symloss, numpy as np
    >>> L = symloss.get("softmax_focal")
    >>> round(float(L(np.log([[0.05, 0.9, 0.05]]), [[0, 1, 0]])), 7)  # Keras's docs
    0.0002634
    """
    p = softmax(z, i, j)
    return rowwise(
        "softmax_focal",
        "Softmax focal loss",
        Mul(alpha_symbol, (1 - p) ** gamma, t[i, j] * log(p), evaluate=False),
        scale=S.NegativeOne,
        logits=True,
        target=ONE_HOT_TARGET,
        constraints=(ONE_HOT,),
        params=(
            param(
                "alpha", alpha_symbol, 0.25, "weight of every class's term (Keras's scalar alpha)"
            ),
            GAMMA,
        ),
        named=SOFTMAX_NAMED,
        aliases=("categorical_focal", "categorical_focal_crossentropy", "focal_softmax"),
        references=(
            "Keras: keras.losses.categorical_focal_crossentropy / "
            "CategoricalFocalCrossentropy(from_logits=True) "
            "(https://keras.io/api/losses/probabilistic_losses/).",
            "Lin, Goyal, Girshick, He, Dollar, 'Focal Loss for Dense Object Detection', "
            "ICCV 2017 (arXiv:1708.02002), extended to the softmax over m classes.",
        ),
        conventions=(
            _CLASS_ROWS + "alpha (default 0.25) multiplies every term, as Keras's scalar "
            "alpha (Keras also takes a per-class list; here one number).  Keras clips the "
            "probabilities to [1e-7, 1 - 1e-7]; symloss does not: log p is z - logsumexp(z), "
            "finite for every finite logit.  Where p_ij rounds to 1 in float64 (the other "
            "logits more than ~37 below), 1 - p_ij is 0 and so is that term, whose true "
            "value is below 1e-16 ** gamma.  For gamma < 1 the derivative of "
            "(1 - p_ij)^gamma is infinite there, times log p_ij = 0: the gradient is the "
            "float64 value, not NaN; the Hessian is NaN there for gamma < 1."
        ),
    )


def poly1_cross_entropy() -> Loss:
    r"""Poly-1 cross-entropy (Leng et al. 2022), as optax's ``poly_loss_cross_entropy``.

    .. math::

        E = \frac{1}{n} \sum_i \sum_j t_{ij} \left(-\log p_{ij}
            + \epsilon\, (1 - p_{ij})\right),
        \qquad p_{ij} = \operatorname{softmax}(z)_{ij}

    that is the cross-entropy plus :math:`\epsilon (1 - p_t)` with
    :math:`p_t = \sum_j t_{ij} p_{ij}` (a row sums to 1).

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("poly1_cross_entropy", epsilon=2.0)
    >>> round(float(L([[0.0, 0.0]], [[1.0, 0.0]])), 6)  # log 2 + 2 (1 - 1/2)
    1.693147
    """
    p = softmax(z, i, j)
    return rowwise(
        "poly1_cross_entropy",
        "Poly-1 cross-entropy",
        Mul(t[i, j], Add(-log(p), poly_epsilon * (1 - p), evaluate=False), evaluate=False),
        logits=True,
        target=ONE_HOT_TARGET,
        constraints=(ONE_HOT,),
        params=(
            Param(
                "epsilon",
                poly_epsilon,
                2.0,
                Interval(-1, sp.oo),
                "coefficient of the first polynomial term, epsilon (1 - p_t)",
            ),
        ),
        named=SOFTMAX_NAMED,
        aliases=("poly1", "poly_loss", "poly_loss_cross_entropy"),
        references=(
            "optax: optax.losses.poly_loss_cross_entropy (epsilon=2.0) "
            "(https://optax.readthedocs.io/en/latest/api/losses.html).",
            "Leng et al., 'PolyLoss: A Polynomial Expansion Perspective of Classification "
            "Loss Functions', ICLR 2022 (arXiv:2204.12511).",
        ),
        conventions=(
            _CLASS_ROWS + "epsilon defaults to 2.0 (optax; the paper's ImageNet value) and "
            "lies in [-1, oo): from -1 on, the leading coefficient epsilon + 1 of the "
            "expansion in (1 - p_t) is >= 0 and the loss is >= 0 (optax takes any "
            "epsilon).  optax returns per-sample values: reduction='none'.  Where "
            "p_ij rounds to 1 in float64, 1 - p_ij is computed as 0 (true value below 1e-16)."
        ),
    )


# ---------------------------------------------------------------------- soft margins
def soft_margin() -> Loss:
    r"""Soft margin loss, as PyTorch's ``soft_margin_loss``.

    .. math::

        E = \frac{1}{n} \sum_i \log\left(1 + e^{-t_i z_i}\right)
          = -\frac{1}{n} \sum_i \log \sigma(t_i z_i),
        \qquad t_i \in \{-1, 1\}

    written with the sigmoid, so that the kernel evaluates it as a softplus.

    Examples
    --------
    >>> import symloss
    >>> round(float(symloss.get("soft_margin")([0.0, 2.0], [1, -1])), 6)
    1.410038
    """
    return elementwise(
        "soft_margin",
        "Soft margin loss",
        log(sigmoid(t[i] * z[i])),
        scale=S.NegativeOne,
        logits=True,
        target=SIGNED_LABEL,
        named=(named_margin(z),),
        aliases=("soft_margin_loss",),
        references=(
            "PyTorch: torch.nn.functional.soft_margin_loss "
            "(https://pytorch.org/docs/stable/generated/torch.nn.SoftMarginLoss.html).",
        ),
        conventions=(
            "Mean over all n elements (an input of any shape is flattened), as PyTorch; "
            "natural log; t must be -1 or 1.  log(1 + exp(-t z)) = -log sigmoid(t z) is "
            "evaluated as softplus(-t z): finite for every finite z, where exp(-t z) "
            "overflows from -t z > 709."
        ),
    )


def multilabel_soft_margin(*, class_weight=None) -> Loss:
    r"""Multi-label soft margin loss, as PyTorch's ``multilabel_soft_margin_loss``.

    .. math::

        E = -\frac{1}{n} \sum_i \frac{1}{m} \sum_j
            \left(t_{ij} \log \sigma(z_{ij}) + (1 - t_{ij}) \log(1 - \sigma(z_{ij}))\right)

    Parameters
    ----------
    class_weight : sequence of float, optional
        PyTorch's ``weight``: class :math:`j`'s term is multiplied by :math:`w_j`.

    Examples
    --------
    >>> import symloss
    >>> L = symloss.get("multilabel_soft_margin")
    >>> round(float(L([[0.0, 0.0]], [[1, 0]])), 6)  # log 2
    0.693147
    """
    term = Add(
        t[i, j] * log(sigmoid(z[i, j])), (1 - t[i, j]) * log(1 - sigmoid(z[i, j])), evaluate=False
    )
    params: tuple[Param, ...] = ()
    note = ""
    if class_weight is not None:
        term = Mul(class_weight_symbol[j], term, evaluate=False)
        params = (class_weight_param(class_weight),)
        note = "  class_weight w_j multiplies class j's term; the mean still divides by n m."
    return rowwise(
        "multilabel_soft_margin",
        "Multi-label soft margin loss",
        term,
        scale=-1 / m,
        logits=True,
        target=MULTILABEL_TARGET,
        params=params,
        aliases=("multilabel_soft_margin_loss",),
        references=(
            "PyTorch: torch.nn.functional.multilabel_soft_margin_loss "
            "(https://pytorch.org/docs/stable/generated/"
            "torch.nn.MultiLabelSoftMarginLoss.html).",
        ),
        conventions=(
            "Each sample's loss is the mean over its m classes (the 1/m belongs to the "
            "sample, so reduction='sum' adds per-sample means and 'none' returns them), "
            "then the mean over the n samples, as PyTorch.  Natural log; PyTorch's "
            "log sigmoid(-z) is written log(1 - sigmoid(z)), and both logs are evaluated as "
            "softplus.  Labels are 0 or 1 per class; soft labels in [0, 1] "
            "are accepted (PyTorch does not check)." + note
        ),
    )


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "classification"

CATALOG = (
    sigmoid_focal,
    softmax_focal(),
    poly1_cross_entropy(),
    soft_margin(),
    multilabel_soft_margin,
)

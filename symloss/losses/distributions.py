r"""Divergences between distributions: Kullback-Leibler and the generalised (I-) divergence.

``kl_divergence`` is PyTorch's ``F.kl_div``: the prediction is a row of
*log*-probabilities :math:`y_{ij} = \log q_{ij}` and the target a row of probabilities
:math:`t_{ij}`, and each element contributes :math:`t_{ij}(\log t_{ij} - y_{ij})`.  The term
is written expanded, :math:`t \log t - t y`, which is PyTorch's own
``xlogy(target, target) - target * input``: the stable kernel then evaluates
:math:`t \log t` as ``xlogy`` (:math:`0 \log 0 = 0`).

``generalized_kl`` is the I-divergence of non-negative arrays that need not sum to 1
(Lee & Seung's NMF objective), element-wise as ``scipy.special.kl_div``.
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Interval, exp, log

from symloss.core.domain import Domain
from symloss.core.loss import Loss
from symloss.losses.common import NONNEGATIVE_REALS, elementwise, real_line, rowwise, t, y
from symloss.symbols import i, j, m, n

LOG_PROBABILITY = real_line("log-probability, log q (any finite real is accepted, as in PyTorch)")
PROBABILITY_TARGET = Domain(
    Interval(0, 1), None, "probability p in [0, 1]; p = 0 contributes 0 (0 log 0 = 0)"
)
LOG_PROBABILITY_TARGET = Domain(
    Interval(-sp.oo, 0), None, "log-probability log p <= 0 (log_target=True)"
)

_PYTORCH_KL = (
    "PyTorch: torch.nn.functional.kl_div / torch.nn.KLDivLoss "
    "(https://pytorch.org/docs/stable/generated/torch.nn.KLDivLoss.html)."
)
_KERAS_KL = (
    "Keras: keras.losses.KLDivergence (takes probabilities, not log-probabilities, and "
    "clips them to [1e-7, 1]; otherwise equal to reduction='batchmean')."
)


def kl_divergence(*, log_target: bool = False) -> Loss:
    r"""Kullback-Leibler divergence :math:`\mathrm{KL}(t \,\|\, e^{y})`, as ``F.kl_div``.

    Parameters
    ----------
    log_target : bool
        ``False`` (default): the target holds probabilities :math:`t`, and each element
        is :math:`t \log t - t y`.  ``True``: the target holds log-probabilities too,
        and each element is :math:`e^{t}(t - y)`.

    Returns
    -------
    Loss
        Over ``(n, m)`` arrays: ``n`` samples of ``m`` outcomes each.  The default
        reduction is ``"batchmean"``: the sum over all elements divided by ``n``, which
        is the KL divergence of each row averaged over the rows.

    Notes
    -----
    PyTorch's default reduction is ``"mean"``, which divides by :math:`n m` and is not a
    KL divergence; PyTorch warns whenever it is used, recommends ``"batchmean"`` and
    announces that ``"mean"`` will behave as ``"batchmean"`` in its next major release.
    ``"batchmean"`` is also what Keras's ``KLDivergence`` and optax's ``kl_divergence``
    (followed by a mean over the batch) compute.  We therefore default to
    ``"batchmean"``; ``reduction="mean"`` gives PyTorch's default.

    References
    ----------
    PyTorch ``torch.nn.KLDivLoss``; S. Kullback and R. A. Leibler, "On information and
    sufficiency", Ann. Math. Statist. 22 (1951).

    Examples
    --------
    >>> import numpy as np, symloss
    >>> L = symloss.get("kl_divergence")
    >>> p, q = np.array([[0.5, 0.5]]), np.array([[0.25, 0.75]])
    >>> round(L(np.log(q), p), 12)  # 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75)
    0.143841036226
    """
    if log_target:
        term = exp(t[i, j]) * Add(t[i, j], -y[i, j], evaluate=False)
        target = LOG_PROBABILITY_TARGET
        edge = (
            "log_target=True: each element is exp(t)(t - y); t = -inf (probability 0) is "
            "refused as non-finite (PyTorch returns NaN there: 0 * -inf)."
        )
    else:
        # Expanded, t log t - t y, so that the kernel evaluates t log t as xlogy (0 at t = 0).
        term = Add(t[i, j] * log(t[i, j]), -t[i, j] * y[i, j], evaluate=False)
        target = PROBABILITY_TARGET
        edge = (
            "Each element is t log t - t y with 0 log 0 = 0 (PyTorch's xlogy), so a zero "
            "target contributes 0 whatever the prediction; a negative target is refused "
            "(PyTorch returns NaN)."
        )
    return rowwise(
        "kl_divergence",
        "Kullback-Leibler divergence (log-probability input)",
        term,
        pred=LOG_PROBABILITY,
        target=target,
        aliases=("kl_div", "kld"),
        references=(_PYTORCH_KL, _KERAS_KL),
        conventions=(
            "As PyTorch's F.kl_div(input, target): the prediction y is a LOG-probability, "
            "the target t a probability; natural log. " + edge + " Reductions: 'batchmean' "
            "(default: the sum over all elements divided by the n rows, the true KL "
            "divergence per sample, as PyTorch recommends and Keras/optax compute), 'mean' "
            "(PyTorch's default: divides by n*m), 'sum', and 'none' (one KL value per row; "
            "PyTorch's 'none' is element-wise instead). The value is >= 0 only when the "
            "rows of t and exp(y) are distributions, which is not enforced (PyTorch does not "
            "either). Smooth everywhere: the gradient is -t/n (batchmean), the Hessian 0."
        ),
        reduction="batchmean",
        reductions=("batchmean", "mean", "sum", "none"),
        mean_over=(n, m),
        nonnegative=False,
    )


generalized_kl = elementwise(
    "generalized_kl",
    "Generalised Kullback-Leibler (I-) divergence",
    Add(t[i] * log(t[i] / y[i]), -t[i], y[i], evaluate=False),
    pred=Domain(
        Interval.open(0, sp.oo),
        NONNEGATIVE_REALS,
        "non-negative intensity; y = 0 gives 0 where t = 0 and +inf elsewhere",
    ),
    target=Domain(NONNEGATIVE_REALS, None, "non-negative (t = 0 contributes y)"),
    aliases=("i_divergence",),
    references=(
        'D. D. Lee and H. S. Seung, "Algorithms for non-negative matrix factorization", '
        "NIPS 13 (2001): D(A||B) = sum A log(A/B) - A + B.",
        "SciPy: scipy.special.kl_div(t, y), the element-wise value "
        "(https://docs.scipy.org/doc/scipy/reference/generated/scipy.special.kl_div.html).",
        "scikit-learn: sklearn.decomposition.NMF(beta_loss='kullback-leibler'), the sum.",
    ),
    conventions=(
        "Element-wise t log(t/y) - t + y, natural log, as scipy.special.kl_div(t, y); "
        "any shape is flattened. Default reduction 'sum', as Lee & Seung and "
        "scikit-learn's NMF define the divergence ('mean' divides by the number of "
        "elements, 'none' returns scipy's element-wise values). For rows that sum to 1 "
        "it equals the KL divergence. Edges as SciPy: t = 0 contributes y (0 log 0 = 0); "
        "y = 0 with t = 0 gives 0, with t > 0 gives +inf. The kernel evaluates "
        "log(t/y), exact while t/y stays inside the float64 range (about 1e+-308); "
        "near t = y the value is a difference of O(t) terms, so its absolute (not "
        "relative) error is about 1e-16 t. Smooth: gradient 1 - t/y, Hessian t/y^2; at "
        "t = 0 the gradient is 1 (autograd through xlogy(t, t/y) gives NaN there)."
    ),
    reduction="sum",
)


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "distributions"

CATALOG = (
    kl_divergence,
    generalized_kl,
)

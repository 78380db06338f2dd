r"""Similarity and overlap losses: cosine distance, Dice and Tversky.

Each is a per-sample loss over vectors: the sum runs over the samples :math:`i` only,
the inputs are ``(n, m)`` arrays with elements :math:`y_{ij}`, and the summand holds
sums over the row, :math:`\sum_{k=1}^{m} y_{ik} t_{ik}`.  The gradient by :math:`y_{ij}`
keeps those row sums (they are the loss's own quantities, not sums left to evaluate),
and the Hessian is the per-sample :math:`m \times m` block
:math:`\partial^2 E / \partial y_{ij} \partial y_{il}`.

References
----------
PyTorch ``torch.nn.CosineEmbeddingLoss``; F. Milletari et al., "V-Net", 3DV 2016 (Dice);
S. S. M. Salehi et al., "Tversky loss function for image segmentation", MLMI 2017.

Examples
--------
>>> import numpy as np, symloss
>>> y = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.1]])
>>> t = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
>>> L = symloss.get("dice", smooth=0)
>>> round(L(y, t), 12)  # rows: 1 - 3.4/3.8 and 1 - 1.4/2
0.202631578947
>>> L.hess(y, t).shape  # one 3 x 3 block per sample
(2, 3, 3)
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Interval, Mul, Pow, S, Sum, Symbol

from symloss.core.domain import Domain
from symloss.losses.common import REAL, epsilon_or_zero, param, per_row, t, y
from symloss.symbolic.naming import Named
from symloss.symbols import array, i, k, m

SCORE = Domain(
    Interval.open(0, 1),
    Interval(0, 1),
    "predicted probability in [0, 1] (after a sigmoid or softmax)",
)
MASK = Domain(Interval(0, 1), None, "mask value 0 or 1 (soft labels in [0, 1] allowed)")


def _row_sum(expr: sp.Expr) -> Sum:
    """:math:`\\sum_{k=1}^{m}` of *expr*, an expression in the row elements ``[i, k]``."""
    return Sum(expr, (k, 1, m))


def _one_minus_ratio(num: sp.Expr, den: sp.Expr) -> sp.Expr:
    """``1 - num/den``, unevaluated so that it prints as written (one fraction)."""
    ratio = Mul(S.NegativeOne, num, Pow(den, -1, evaluate=False), evaluate=False)
    return Add(S.One, ratio, evaluate=False)


# ---------------------------------------------------------------------- cosine
eps = epsilon_or_zero
_dot = _row_sum(Mul(y[i, k], t[i, k], evaluate=False))
_norms = Mul(
    Add(_row_sum(y[i, k] ** 2), eps, evaluate=False),
    Add(_row_sum(t[i, k] ** 2), eps, evaluate=False),
    evaluate=False,
)

cosine_distance = per_row(
    "cosine_distance",
    "Cosine distance",
    # 1 - cos, with the square root of the product kept whole for printing.
    _one_minus_ratio(_dot, Pow(_norms, S.Half, evaluate=False)),
    target=REAL,
    params=(param("eps", eps, 1e-12, "added to each squared norm (PyTorch's fixed EPSILON)"),),
    aliases=("cosine",),
    group="similarity",
    references=(
        "PyTorch: torch.nn.CosineEmbeddingLoss / F.cosine_embedding_loss with every "
        "target +1 (https://pytorch.org/docs/stable/generated/"
        "torch.nn.CosineEmbeddingLoss.html); its C++ kernel adds EPSILON = 1e-12 to "
        "each squared norm.",
        "optax: optax.losses.cosine_distance (1 - cosine similarity; epsilon, default 0, "
        "is a minimum for each norm).",
        "Keras: keras.losses.CosineSimilarity (-cos of l2-normalised vectors: this loss minus 1).",
    ),
    conventions=(
        "PyTorch's CosineEmbeddingLoss with target +1: per row 1 - sum_k y_k t_k / "
        "sqrt((sum_k y_k^2 + eps)(sum_k t_k^2 + eps)), eps = 1e-12 added to each squared "
        "norm; mean over the n rows (PyTorch's default reduction). PyTorch's EPSILON is "
        "a C++ float, 9.999999960041972e-13 as a double: pass eps=float(np.float32(1e-12)) "
        "to match it bit for bit (the difference shows only near a zero row, at 1e-9). "
        "optax clips each norm below at epsilon instead (default 0, which eps = 0 "
        "reproduces exactly) and Keras returns -cos: for norms far above sqrt(eps) all "
        "agree to O(eps/|y|^2). The eps inside the square root keeps the loss smooth "
        "(a clip would add a kink), so the gradient and Hessian are the plain "
        "derivatives, as PyTorch's autograd computes them. A zero row gives 1 and the "
        "finite gradient -t/(n sqrt(eps) |t|) with eps > 0; with eps = 0 it gives NaN "
        "(0/0), as optax does. Near parallel rows value and gradient are differences of "
        "O(1) terms: their error is about 1e-16 absolute, not relative. Entries up to "
        "about 1e100 (the gradient's (sum_k y_k^2)^(3/2) overflows beyond; the value "
        "holds to about 1e150)."
    ),
)


# ---------------------------------------------------------------------- dice, tversky
smooth = epsilon_or_zero
_SMOOTH = param("smooth", smooth, 1.0, "added to numerator and denominator")
_overlap = _row_sum(Mul(y[i, k], t[i, k], evaluate=False))
_OVERLAP_REFS = (
    'F. Milletari, N. Navab and S.-A. Ahmadi, "V-Net: fully convolutional neural '
    'networks for volumetric medical image segmentation", 3DV 2016 (Dice loss; V-Net '
    "squares the terms of the denominator).",
    "MONAI: monai.losses.DiceLoss (smooth_nr, smooth_dr; per sample by default, batch=False).",
)

# False positives and false negatives, as sums of non-negative terms: 1 - (TP + s)/D
# computed as (FP + FN)/D has no cancellation (1 - y is exact near y = 1).
_false_pos = _row_sum(Mul(y[i, k], 1 - t[i, k], evaluate=False))
_false_neg = _row_sum(Mul(1 - y[i, k], t[i, k], evaluate=False))
_dice_den = Add(_row_sum(y[i, k]), _row_sum(t[i, k]), smooth, evaluate=False)

#: What this family's derivations name: a row's true positives, false positives and
#: false negatives (soft counts), as Salehi et al. write the Tversky index.
NAMED = (
    Named(array("TP")[i], Sum(y[i, k] * t[i, k], (k, 1, m)), "true positives of row i"),
    Named(array("FP")[i], Sum(y[i, k] * (1 - t[i, k]), (k, 1, m)), "false positives"),
    Named(array("FN")[i], Sum((1 - y[i, k]) * t[i, k], (k, 1, m)), "false negatives"),
)

dice = per_row(
    "dice",
    "Dice loss",
    _one_minus_ratio(Add(2 * _overlap, smooth, evaluate=False), _dice_den),
    stable_term=(_false_pos + _false_neg) / _dice_den,
    pred=SCORE,
    target=MASK,
    params=(_SMOOTH,),
    named=NAMED,
    aliases=("dice_loss",),
    references=_OVERLAP_REFS,
    conventions=(
        "Per row (sample) i: 1 - (2 sum_k y_ik t_ik + eps) / (sum_k y_ik + sum_k t_ik + "
        "eps), with eps the smooth parameter (default 1) in numerator and denominator, "
        "as the common Kaggle/segmentation form (MONAI's smooth_nr = smooth_dr); mean over "
        "the rows. Per sample, as MONAI's DiceLoss (batch=False): the Dice of the whole "
        "batch (segmentation_models_pytorch, keras.losses.Dice) is this loss on "
        "pred.reshape(1, -1). Linear sums in the denominator (V-Net squares them). An "
        "empty prediction and mask give 0 with smooth > 0 and NaN (0/0) with smooth = 0. "
        "The loss lies in [0, 1] for y, t in [0, 1] and is smooth there."
    ),
)

alpha = Symbol("alpha", nonnegative=True)
beta = Symbol("beta", nonnegative=True)

tversky = per_row(
    "tversky",
    "Tversky loss",
    _one_minus_ratio(
        Add(_overlap, smooth, evaluate=False),
        Add(_overlap, Mul(alpha, _false_pos), Mul(beta, _false_neg), smooth, evaluate=False),
    ),
    stable_term=(alpha * _false_pos + beta * _false_neg)
    / (_overlap + alpha * _false_pos + beta * _false_neg + smooth),
    pred=SCORE,
    target=MASK,
    params=(
        param("alpha", alpha, 0.5, "weight of false positives"),
        param("beta", beta, 0.5, "weight of false negatives"),
        _SMOOTH,
    ),
    named=NAMED,
    aliases=("tversky_loss",),
    references=(
        'S. S. M. Salehi, D. Erdogmus and A. Gholipour, "Tversky loss function for '
        'image segmentation using 3D fully convolutional deep networks", MLMI 2017.',
        "MONAI: monai.losses.TverskyLoss (alpha on false positives, beta on false negatives).",
    ),
    conventions=(
        "Per row i: 1 - (TP + eps)/(TP + alpha FP + beta FN + eps) with TP = sum_k y t, "
        "FP = sum_k y (1 - t), FN = sum_k (1 - y) t: Salehi et al.'s alpha on false "
        "positives and beta on false negatives (defaults 1/2), with the smooth parameter "
        "eps (default 1, as dice) added to numerator and denominator (Salehi et al. add "
        "none: smooth = 0); mean over the rows. With alpha = beta = 1/2 it is the Dice "
        "loss with smooth 2 eps (the same loss only when smooth = 0); alpha = beta = 1 "
        "gives the soft Jaccard (IoU) loss. In [0, 1] for y, t in [0, 1]; smooth there."
    ),
)


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "segmentation"

CATALOG = (
    cosine_distance,
    dice,
    tversky,
)

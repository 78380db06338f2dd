r"""Probabilistic and GLM losses: negative log-likelihoods, deviances, the exponential loss.

The prediction :math:`y_i` is the distribution's mean (a rate or a log-rate for the
Poisson NLL, a score for the exponential loss) and :math:`t_i` the observation.  Each
loss is a mean over the :math:`n` elements by default (PyTorch's ``reduction="mean"``,
scikit-learn's ``mean_*`` metrics).  The gradient is by the prediction only; Gaussian
NLL's variance is an extra input that the gradient treats as data.

Structural options are builder arguments, bound at :func:`symloss.get`:
``get("poisson_nll", log_input=False, full=True)``, ``get("gaussian_nll", full=True)``.

Examples
--------
>>> import numpy as np, symloss
>>> L = symloss.get("gaussian_nll")
>>> float(L(np.array([0.0, 1.0]), np.array([1.0, 1.0]), var=np.array([1.0, 4.0])))
0.5965735902799727
>>> print(symloss.get("poisson_nll").latex(part="gradient"))
\frac{\partial E}{\partial y_{i}} = \frac{e^{y_{i}} - t_{i}}{n}
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Interval, Max, Mul, Piecewise, Rational, S, Symbol, exp, log, pi
from sympy.codegen.cfunctions import expm1

from symloss.core.domain import Domain, Param
from symloss.core.loss import Loss
from symloss.losses.common import (
    NONNEGATIVE_REALS,
    POSITIVE,
    REAL,
    RESIDUAL,
    SIGNED_LABEL,
    elementwise,
    eps_param,
    epsilon,
    named_margin,
    t,
    y,
)
from symloss.symbols import array, i

var = array("var")

COUNT = Domain(NONNEGATIVE_REALS, None, "non-negative count (need not be an integer)")

_MEAN = "Mean over the n elements (reduction='mean'); natural log. "


# ---------------------------------------------------------------------- Poisson
#: log(t!) by Stirling, as PyTorch's full=True adds it: only where t > 1 (0 elsewhere).
STIRLING = Piecewise(
    (t[i] * log(t[i]) - t[i] + Rational(1, 2) * log(2 * pi * t[i]), t[i] > 1), (0, True)
)


def poisson_nll(*, log_input: bool = True, full: bool = False) -> Loss:
    r"""Poisson negative log-likelihood, as PyTorch's ``poisson_nll_loss``.

    Parameters
    ----------
    log_input : bool, default True
        The prediction is the log-rate :math:`y = \log\lambda` and the summand is
        :math:`e^{y} - t y`; with False it is the rate, and the summand is
        :math:`y - t \log(y + \epsilon)`.
    full : bool, default False
        Add Stirling's :math:`t \log t - t + \frac{1}{2}\log(2\pi t)` for
        :math:`\log t!` where :math:`t > 1`, so the value is the full negative
        log-likelihood (up to Stirling's error).

    Returns
    -------
    Loss
        Registered as ``poisson_nll`` with the defaults; ``symloss.get`` calls this.

    References
    ----------
    PyTorch, ``torch.nn.functional.poisson_nll_loss``.
    """
    if log_input:
        term = Add(exp(y[i]), -t[i] * y[i], evaluate=False)
        pred_domain = REAL
        how = "y is the log-rate: exp(y) - t y"
    else:
        term = Add(y[i], -t[i] * log(y[i] + epsilon), evaluate=False)
        pred_domain = Domain(NONNEGATIVE_REALS, None, "rate >= 0 (eps keeps the log finite)")
        how = "y is the rate: y - t log(y + eps), eps = 1e-8 by default"
    if full:
        term = Add(*term.args, STIRLING, evaluate=False)
    return elementwise(
        "poisson_nll",
        "Poisson negative log-likelihood",
        term,
        pred=pred_domain,
        target=COUNT,
        params=(
            eps_param(
                1e-8,
                "added to the rate inside the log; used with log_input=False only, as in PyTorch",
            ),
        ),
        aliases=("poisson_nll_loss",),
        references=(
            "PyTorch: torch.nn.functional.poisson_nll_loss "
            "(https://pytorch.org/docs/stable/generated/torch.nn.PoissonNLLLoss.html).",
        ),
        conventions=(
            _MEAN + f"log_input={log_input}: {how}; full={full}.  Without full the "
            "constant log t! is dropped, so the value can be negative.  full=True adds "
            "Stirling's t log t - t + log(2 pi t)/2 where t > 1 and 0 where t <= 1 (PyTorch's "
            "mask), which does not change the gradient.  Keras's keras.losses.Poisson is "
            "log_input=False with eps = 1e-7."
        ),
        nonnegative=full,
    )


# ---------------------------------------------------------------------- Gaussian
_clamped_var = Max(var[i], epsilon)


def gaussian_nll(*, full: bool = False) -> Loss:
    r"""Gaussian negative log-likelihood with a given variance, as PyTorch's ``gaussian_nll_loss``.

    Parameters
    ----------
    full : bool, default False
        Add the constant :math:`\frac{1}{2}\log 2\pi`.

    Returns
    -------
    Loss
        Registered as ``gaussian_nll`` with the defaults; ``symloss.get`` calls this.

    References
    ----------
    PyTorch, ``torch.nn.functional.gaussian_nll_loss``.
    """
    parts = [log(_clamped_var), (y[i] - t[i]) ** 2 / _clamped_var]
    if full:
        parts.append(log(2 * pi))
    return elementwise(
        "gaussian_nll",
        "Gaussian negative log-likelihood",
        Add(*parts, evaluate=False),
        scale=Rational(1, 2),
        extra={var: Domain(NONNEGATIVE_REALS, None, "variance >= 0 (clamped below at eps)")},
        params=(eps_param(1e-6, "lower clamp on the variance, as in PyTorch"),),
        named=(RESIDUAL,),
        aliases=("gaussian_nll_loss",),
        references=(
            "PyTorch: torch.nn.functional.gaussian_nll_loss "
            "(https://pytorch.org/docs/stable/generated/torch.nn.GaussianNLLLoss.html).",
        ),
        conventions=(
            _MEAN + "The summand is 1/2 (log max(var, eps) + (y - t)^2 / max(var, eps)), "
            f"plus log(2 pi)/2 with full=True (here full={full}), as PyTorch.  y is the "
            "mean and var the variance, passed as L(mean, target, var=v) with the shape "
            "of the mean "
            "(PyTorch also broadcasts a variance of shape (N, 1)).  The gradient and "
            "Hessian are by the mean only, with var treated as data."
        ),
        nonnegative=False,
    )


# ---------------------------------------------------------------------- deviances
gamma_deviance = elementwise(
    "gamma_deviance",
    "Gamma deviance",
    Add(log(y[i]), -log(t[i]), t[i] / y[i], S.NegativeOne, evaluate=False),
    scale=S(2),
    pred=POSITIVE,
    target=POSITIVE,
    named=(RESIDUAL,),
    aliases=("mean_gamma_deviance",),
    references=(
        "scikit-learn: sklearn.metrics.mean_gamma_deviance "
        "(https://scikit-learn.org/stable/modules/generated/"
        "sklearn.metrics.mean_gamma_deviance.html).",
    ),
    conventions=(
        _MEAN + "The unit deviance 2 (log(y/t) + t/y - 1) of scikit-learn's "
        "mean_gamma_deviance (not the half deviance of its HalfGammaLoss), with "
        "y, t > 0.  The log of the ratio is written log y - log t, so that ratios "
        "beyond the float64 range do not overflow.  The gradient kernel evaluates "
        "2 (y - t) / y / y (and the Hessian 2 (2t - y) / y / y / y): one numerator, "
        "divided step by step, so that it is exact at y = t and overflows to -inf "
        "only where the true value does, down to the smallest subnormal y."
    ),
)

power = Symbol("p", positive=True)


def _expm1_ratio(s: sp.Expr, x: sp.Expr) -> sp.Expr:
    r""":math:`(e^{s x} - 1)/s` through ``expm1``: no cancellation; :math:`x` as :math:`s \to 0`."""
    return expm1(s * x) / s


# The kernels' form of the deviance (tests/test_numeric.py proves it equal).  With
# L = log t - log y and (L)_s = expm1(s L)/s, which tends to L as s -> 0, the half
# deviance is
#     t^(2-p) (L)_(p-1) - (t^(2-p) - y^(2-p))/(2-p),
# free of the 1/((1-p)(2-p)) whose numerator cancels near p = 1 and p = 2.  The second
# term is y^(2-p) (L)_(2-p) for p < 2 (finite at t = 0), and t^(2-p) (L)_(p-2) for
# p > 2, where both terms are kept over the common factor t^(2-p): at t = 0 that is inf
# times a positive bracket, the deviance's own limit.
_log_ratio = log(t[i]) - log(y[i])
_tweedie_stable = Piecewise(
    (
        t[i] ** (2 - power) * _expm1_ratio(power - 1, _log_ratio)
        - y[i] ** (2 - power) * _expm1_ratio(2 - power, _log_ratio),
        power < 2,
    ),
    (
        t[i] ** (2 - power)
        * (_expm1_ratio(power - 1, _log_ratio) - _expm1_ratio(power - 2, _log_ratio)),
        True,
    ),
)

tweedie = elementwise(
    "tweedie",
    "Tweedie deviance",
    # scikit-learn's three terms, regrouped as the Bregman divergence of
    # y^(2-p)/((1-p)(2-p)) (tests/test_probabilistic.py proves them equal): exactly 0
    # at y = t in floating point too, where the three terms leave a rounding residue.
    Add(
        t[i] ** (2 - power),
        -(y[i] ** (2 - power)),
        Mul(-1, 2 - power, y[i] ** (1 - power), t[i] - y[i], evaluate=False),
        evaluate=False,
    )
    / ((1 - power) * (2 - power)),
    stable_term=_tweedie_stable,
    scale=S(2),
    pred=POSITIVE,
    target=COUNT,
    params=(
        Param(
            "power",
            power,
            1.5,
            sp.Union(Interval.open(1, 2), Interval.open(2, sp.oo)),
            "Tweedie power p; p = 1 is poisson_nll's deviance, p = 2 gamma_deviance, "
            "p = 0 the squared error",
        ),
    ),
    named=(RESIDUAL,),
    aliases=("mean_tweedie_deviance", "tweedie_deviance"),
    references=(
        "scikit-learn: sklearn.metrics.mean_tweedie_deviance "
        "(https://scikit-learn.org/stable/modules/generated/"
        "sklearn.metrics.mean_tweedie_deviance.html).",
        "XGBoost / LightGBM: objective reg:tweedie / tweedie, variance power 1.5 by default.",
    ),
    conventions=(
        _MEAN + "scikit-learn's mean_tweedie_deviance for power p in (1, 2) U (2, oo), "
        "where one formula holds: 2 (t^(2-p)/((1-p)(2-p)) - t y^(1-p)/(1-p) "
        "+ y^(2-p)/(2-p)), y > 0, t >= 0, written as the equal 2 (t^(2-p) - y^(2-p) "
        "- (2-p) y^(1-p) (t - y))/((1-p)(2-p)), which is exactly 0 at y = t.  Other "
        "powers raise ValueError (scikit-learn switches formula at p = 0, 1, 2 and "
        "allows p <= 0): use mean_squared_error (p = 0) or gamma_deviance (p = 2).  "
        "The default p = 1.5 is XGBoost's and LightGBM's (scikit-learn's default 0 "
        "is the squared error).  The kernels evaluate the equal 2 (t^(2-p) "
        "expm1((p-1) L)/(p-1) - (t^(2-p) - y^(2-p))/(2-p)), L = log t - log y, the "
        "difference as y^(2-p) expm1((2-p) L)/(2-p) (t^(2-p) expm1((p-2) L)/(p-2) for "
        "p > 2): no 1/((1-p)(2-p)), so the value keeps ~1e-13 relative accuracy next "
        "to p = 1 and p = 2 too, where the definition's form loses up to 1e-4.  For "
        "p > 2 a target of 0 gives +inf, the limit (scikit-learn refuses it), and a "
        "NaN gradient; so does a target small enough that t^(2-p) overflows (below "
        "1e-205 at p = 3.5), where the value overflows too."
    ),
)

exponential = elementwise(
    "exponential",
    "Exponential loss",
    exp(-t[i] * y[i]),
    target=SIGNED_LABEL,
    named=(named_margin(y),),
    aliases=("exponential_loss",),
    references=(
        "scikit-learn: sklearn.ensemble.GradientBoostingClassifier(loss='exponential') "
        "(sklearn._loss.loss.ExponentialLoss), "
        "https://scikit-learn.org/stable/modules/ensemble.html#loss-functions.",
        "Friedman, Hastie and Tibshirani (2000), Additive logistic regression: a "
        "statistical view of boosting, Ann. Statist. 28(2) (AdaBoost).",
    ),
    conventions=(
        "Mean over the n samples of exp(-t y), with labels t in {-1, +1} and a real "
        "score y, as AdaBoost.  scikit-learn's ExponentialLoss writes the same loss "
        "with labels t' = (t + 1)/2 in {0, 1}: t' exp(-y) + (1 - t') exp(y).  exp "
        "overflows to +inf beyond t y < -709, the true value's overflow."
    ),
)


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "distributions"

CATALOG = (
    poisson_nll,
    gaussian_nll,
    gamma_deviance,
    tweedie,
    exponential,
)

r"""Regression losses: element-wise functions of the prediction :math:`y_i` and target :math:`t_i`.

Every loss here is a mean over the :math:`n` elements by default (PyTorch's and Keras's
``reduction="mean"``; an input of any shape is flattened, so the mean runs over all of
its elements, as theirs does); ``"sum"`` and ``"none"`` are available too.  Each
definition follows the library users know best, named in ``references``; where the
libraries differ, ``conventions`` says which one is followed and how to get the other.

Kinks are handled as autograd handles them: :math:`\operatorname{sign}(0) = 0`, the
derivative of a kink is taken almost everywhere (no Dirac delta in a Hessian), and a
``Max`` whose arguments tie splits the gradient evenly, as ``torch.maximum`` does.

Examples
--------
>>> import symloss
>>> L = symloss.get("huber", delta=1.0)
>>> float(L([-2.0, 0.5, 4.0], [0.0, 1.0, 2.0]))  # (1.5 + 0.125 + 1.5) / 3
1.0416666666666667
>>> L.gradient()
Piecewise((-t[i] + y[i], delta > Abs(t[i] - y[i])), (-delta*sign(t[i] - y[i]), True))/n
"""

from __future__ import annotations

import sympy as sp
from sympy import Abs, Add, Interval, Max, Piecewise, Rational, S, Symbol, cosh, log

from symloss.core.domain import Domain
from symloss.losses.common import RESIDUAL, elementwise, eps_param, epsilon, param, t, y
from symloss.symbols import i

ABOVE_MINUS_ONE = Domain(Interval.open(-1, sp.oo), None, "greater than -1, so log(1 + x) exists")

#: The residual as PyTorch writes it (input - target), kept in that order for printing.
residual = Add(y[i], -t[i], evaluate=False)

#: What this family's derivations name: the residual e = y - t.
NAMED = (RESIDUAL,)

_REDUCTION = "Mean over the n elements (reduction='mean', as PyTorch and Keras); "


mean_squared_error = elementwise(
    "mean_squared_error",
    "Mean squared error",
    residual**2,
    named=NAMED,
    aliases=("mse", "mse_loss"),
    references=(
        "PyTorch: torch.nn.functional.mse_loss "
        "(https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html).",
        "Keras: keras.losses.MeanSquaredError; optax: optax.losses.squared_error "
        "(element-wise, reduction='none').",
    ),
    conventions=(
        _REDUCTION + "no 1/2 factor, so the gradient is 2(y_i - t_i)/n "
        "(optax.l2_loss is half of this)."
    ),
)

mean_absolute_error = elementwise(
    "mean_absolute_error",
    "Mean absolute error",
    Abs(residual),
    named=NAMED,
    aliases=("mae", "l1", "l1_loss"),
    references=(
        "PyTorch: torch.nn.functional.l1_loss "
        "(https://pytorch.org/docs/stable/generated/torch.nn.L1Loss.html).",
        "Keras: keras.losses.MeanAbsoluteError.",
    ),
    conventions=(
        _REDUCTION + "at y_i = t_i the gradient is sign(0) = 0, as PyTorch's l1_loss "
        "backward gives; the Hessian is 0 almost everywhere (and taken as 0 at the kink)."
    ),
)

delta = Symbol("delta", positive=True)
huber = elementwise(
    "huber",
    "Huber loss",
    Piecewise(
        (Rational(1, 2) * residual**2, Abs(residual) < delta),
        (delta * (Abs(residual) - delta / 2), True),
    ),
    params=(param("delta", delta, 1.0, "where the square turns linear", sweep=(0.5, 1, 2)),),
    named=NAMED,
    aliases=("huber_loss",),
    references=(
        "PyTorch: torch.nn.functional.huber_loss "
        "(https://pytorch.org/docs/stable/generated/torch.nn.HuberLoss.html).",
        "optax: optax.losses.huber_loss (element-wise, delta = 1; reduction='none').",
        "Keras: keras.losses.Huber.",
    ),
    conventions=(
        _REDUCTION + "1/2 e^2 for |e| < delta and delta (|e| - delta/2) otherwise, with "
        "e = y - t, as PyTorch's huber_loss.  The gradient is continuous (e, clipped to "
        "[-delta, delta]); at |e| = delta the Hessian is 0, as PyTorch's double backward "
        "gives (the quadratic branch holds for |e| < delta only).  The two branches are "
        "evaluated separately, so |e| up to 1e308 gives a finite value."
    ),
)

beta = Symbol("beta", positive=True)
smooth_l1 = elementwise(
    "smooth_l1",
    "Smooth L1 loss",
    Piecewise(
        (residual**2 / (2 * beta), Abs(residual) < beta),
        (Abs(residual) - beta / 2, True),
    ),
    params=(param("beta", beta, 1.0, "where the square turns linear"),),
    named=NAMED,
    aliases=("smooth_l1_loss",),
    references=(
        "PyTorch: torch.nn.functional.smooth_l1_loss "
        "(https://pytorch.org/docs/stable/generated/torch.nn.SmoothL1Loss.html).",
    ),
    conventions=(
        _REDUCTION + "e^2/(2 beta) for |e| < beta and |e| - beta/2 otherwise, as PyTorch's "
        "smooth_l1_loss; equal to huber(delta=beta)/beta.  beta = 0 (PyTorch's plain L1) "
        "is not accepted: use mean_absolute_error.  At |e| = beta the Hessian is 0, as "
        "PyTorch's double backward gives."
    ),
)

log_cosh = elementwise(
    "log_cosh",
    "Log-cosh loss",
    log(cosh(residual)),
    named=NAMED,
    aliases=("logcosh",),
    references=(
        "Keras: keras.losses.LogCosh / keras.losses.log_cosh "
        "(https://keras.io/api/losses/regression_losses/#logcosh-function).",
        "optax: optax.losses.log_cosh (element-wise; reduction='none').",
    ),
    conventions=(
        _REDUCTION + "natural log.  The gradient is tanh(y - t)/n and the Hessian "
        "1/(n cosh^2(y - t)).  The kernel evaluates log cosh e as log1p(2 sinh^2(e/2)) "
        "for |e| < 1 and |e| - log 2 + log1p(exp(-2|e|)) beyond, both proven equal to "
        "log cosh e: finite for every finite e and accurate to a few ulp, also near 0, "
        "where Keras's e + softplus(-2e) - log 2 loses its relative accuracy."
    ),
)

tau = Symbol("tau", nonnegative=True)
pinball = elementwise(
    "pinball",
    "Pinball (quantile) loss",
    Add(tau * Max(t[i] - y[i], 0), (1 - tau) * Max(y[i] - t[i], 0), evaluate=False),
    params=(
        param(
            "quantile",
            tau,
            0.5,
            "the quantile tau that the prediction estimates (scikit-learn's alpha)",
            upper=1,
        ),
    ),
    named=NAMED,
    aliases=("quantile", "pinball_loss", "mean_pinball_loss", "quantile_loss"),
    references=(
        "scikit-learn: sklearn.metrics.mean_pinball_loss (parameter alpha) "
        "(https://scikit-learn.org/stable/modules/generated/"
        "sklearn.metrics.mean_pinball_loss.html).",
        "Keras/TensorFlow Addons: tfa.losses.PinballLoss (parameter tau).",
    ),
    conventions=(
        _REDUCTION + "tau max(t - y, 0) + (1 - tau) max(y - t, 0), as scikit-learn's "
        "mean_pinball_loss; with tau = 0.5 it is half the mean absolute error.  At "
        "y_i = t_i the gradient is (1/2 - tau)/n: each max contributes half its slope "
        "(Heaviside(0) = 1/2), as autograd's tie rule for torch.maximum gives for "
        "max(tau (t - y), (tau - 1)(t - y)); it is the midpoint of the subdifferential "
        "[-tau, 1 - tau]/n and is 0 for the median, as for the absolute error."
    ),
)

mean_squared_log_error = elementwise(
    "mean_squared_log_error",
    "Mean squared logarithmic error",
    (log(1 + y[i]) - log(1 + t[i])) ** 2,
    pred=ABOVE_MINUS_ONE,
    target=ABOVE_MINUS_ONE,
    named=NAMED,
    aliases=("msle", "mean_squared_logarithmic_error"),
    references=(
        "scikit-learn: sklearn.metrics.mean_squared_log_error "
        "(https://scikit-learn.org/stable/modules/generated/"
        "sklearn.metrics.mean_squared_log_error.html).",
        "Keras: keras.losses.MeanSquaredLogarithmicError.",
    ),
    conventions=(
        _REDUCTION + "natural log; y, t > -1 as in scikit-learn.  Keras first clips y "
        "and t below at 1e-7, so the two differ only for inputs below 1e-7.  The kernel "
        "evaluates log(1 + x) as log1p(x), accurate for small x."
    ),
)

mean_absolute_percentage_error = elementwise(
    "mean_absolute_percentage_error",
    "Mean absolute percentage error",
    Abs(t[i] - y[i]) / Max(Abs(t[i]), epsilon),
    scale=S(100),
    params=(eps_param(1e-7, "lower bound on |t| in the denominator (Keras's backend.epsilon())"),),
    named=NAMED,
    aliases=("mape",),
    references=(
        "Keras: keras.losses.MeanAbsolutePercentageError "
        "(https://keras.io/api/losses/regression_losses/"
        "#meanabsolutepercentageerror-class).",
        "scikit-learn: sklearn.metrics.mean_absolute_percentage_error.",
    ),
    conventions=(
        _REDUCTION + "100 |t - y| / max(|t|, eps) in percent, with eps = 1e-7, as Keras.  "
        "scikit-learn returns a fraction (1/100 of this) with eps = 2.22e-16: the value "
        "of get('mape', eps=np.finfo(float).eps), divided by 100, matches it.  "
        "At y_i = t_i the gradient is sign(0) = 0, as for the absolute error."
    ),
)


#: This family's losses, and builders of losses with options, for the registry (see
#: symloss.losses).
#: Where the docs list this family's losses (a loss may declare its own ``group``).
GROUP = "regression"

CATALOG = (
    mean_squared_error,
    mean_absolute_error,
    huber,
    smooth_l1,
    log_cosh,
    pinball,
    mean_squared_log_error,
    mean_absolute_percentage_error,
)

r"""A collection of loss formulas written as their sources write them (issue 15).

Each entry: the source, the LaTeX as printed there (notation kept: N, K, C, |D|, sums
without limits, \hat{y}^{(i)}, cases, indicators, positive parts ...), how the arrays
are named, the kind of inputs, hyperparameter values for evaluation (the formula keeps
them symbolic), an independent NumPy reference for the loss value, and the catalog
loss it equals where one does (``None``: not checked).

The NumPy references are written from the formula's definition in the source (not
from symloss), element-wise, with ``mean`` over the samples where the formula has
``1/N``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit, log_softmax, softmax


@dataclass(frozen=True)
class Formula:
    source: str
    tex: str
    inputs: str  # reg, pos, prob, margin, logit, cat, catlogit, count, unit
    ref: object  # (y, t, **params) -> float
    params: dict = field(default_factory=dict)
    names: dict = field(default_factory=dict)  # pred=, target=
    identify: str | None = None


def mean(a):
    return float(np.mean(a))


def row_mean(a):
    return float(np.mean(np.sum(a, axis=-1)))


F = Formula
FORMULAS = [
    # -- regression -----------------------------------------------------------------------
    F(
        "Bishop, PRML (2006), eq. 1.2: sum-of-squares error",
        r"E(\mathbf{w}) = \frac{1}{2}\sum_{n=1}^{N}\{y_n - t_n\}^2",
        "reg",
        lambda y, t: 0.5 * float(np.sum((y - t) ** 2)),
        identify="sum_squared_error",
    ),
    F(
        "Goodfellow et al., Deep Learning (2016), eq. 5.4: MSE on the test set",
        r"\mathrm{MSE} = \frac{1}{m}\sum_{i}(\hat{y}^{(i)} - y^{(i)})^2",
        "reg",
        lambda y, t: mean((y - t) ** 2),
        names=dict(pred=r"\hat{y}", target="y"),
        identify="mean_squared_error",
    ),
    F(
        "Ng, CS229 lecture notes (2018), part I: least-squares cost (a sum, with 1/2)",
        r"J(\theta) = \frac{1}{2}\sum_{i=1}^{m}\left(h^{(i)} - y^{(i)}\right)^2",
        "reg",
        lambda y, t: 0.5 * float(np.sum((y - t) ** 2)),
        names=dict(pred="h", target="y"),
        identify="sum_squared_error",
    ),
    F(
        "Wikipedia, 'Mean absolute error'",
        r"\mathrm{MAE} = \frac{1}{n}\sum_{i=1}^{n}\lvert y_i - x_i\rvert",
        "reg",
        lambda y, t: mean(np.abs(y - t)),
        names=dict(pred="y", target="x"),
        identify="mean_absolute_error",
    ),
    F(
        "Hastie, Tibshirani & Friedman, ESL (2009), Table 10.2: absolute loss",
        r"L = \frac{1}{N}\sum_{i=1}^{N}|t_i - y_i|",
        "reg",
        lambda y, t: mean(np.abs(y - t)),
        identify="mean_absolute_error",
    ),
    F(
        "Huber (1964), as Wikipedia 'Huber loss' writes it (<= at the boundary)",
        r"L_\delta = \frac{1}{n}\sum_{i=1}^{n}\begin{cases}\frac{1}{2}(y_i - t_i)^2 & "
        r"\text{for } |y_i - t_i| \le \delta, \\ \delta\left(|y_i - t_i| - \frac{1}{2}\delta\right)"
        r" & \text{otherwise.}\end{cases}",
        "reg",
        lambda y, t, delta: mean(
            np.where(
                np.abs(y - t) <= delta, 0.5 * (y - t) ** 2, delta * (np.abs(y - t) - 0.5 * delta)
            )
        ),
        params=dict(delta=1.3),
        identify="huber",
    ),
    F(
        "Huber loss as the catalog's LaTeX writes it (< at the boundary)",
        r"\frac{1}{n}\sum_{i=1}^{n}\begin{cases}\frac{(y_i - t_i)^2}{2} & |y_i - t_i| < \delta"
        r" \\ \delta\left(|y_i - t_i| - \frac{\delta}{2}\right) & \text{otherwise}\end{cases}",
        "reg",
        lambda y, t, delta: mean(
            np.where(
                np.abs(y - t) < delta, 0.5 * (y - t) ** 2, delta * (np.abs(y - t) - 0.5 * delta)
            )
        ),
        params=dict(delta=0.7),
        identify="huber",
    ),
    F(
        "Girshick, Fast R-CNN (2015), eq. 3: smooth L1",
        r"\frac{1}{N}\sum_{i}\begin{cases}0.5 (y_i - t_i)^2 & \text{if } |y_i - t_i| < 1 \\"
        r" |y_i - t_i| - 0.5 & \text{otherwise,}\end{cases}",
        "reg",
        lambda y, t: mean(np.where(np.abs(y - t) < 1, 0.5 * (y - t) ** 2, np.abs(y - t) - 0.5)),
    ),
    F(
        "Chen et al. (2019), 'Log-cosh loss' / TensorFlow docs",
        r"L = \frac{1}{n}\sum_{i=1}^{n}\log\cosh(y_i - t_i)",
        "reg",
        lambda y, t: mean(np.log(np.cosh(y - t))),
        identify="log_cosh",
    ),
    F(
        "Black & Anandan (1996): Cauchy / Lorentzian loss",
        r"\frac{1}{N}\sum_{i=1}^{N}\log\left(1 + \frac{(y_i - t_i)^2}{c^2}\right)",
        "reg",
        lambda y, t, c: mean(np.log1p((y - t) ** 2 / c**2)),
        params=dict(c=1.5),
    ),
    F(
        "Barron (2019), eq. 1 with alpha = 2: scaled L2",
        r"\frac{1}{N}\sum_{i=1}^{N}\frac{1}{2}\left(\frac{y_i - t_i}{c}\right)^2",
        "reg",
        lambda y, t, c: mean(0.5 * ((y - t) / c) ** 2),
        params=dict(c=0.8),
    ),
    F(
        "Charbonnier et al. (1994): the Charbonnier penalty",
        r"\frac{1}{N}\sum_{i=1}^{N}\sqrt{(y_i - t_i)^2 + \epsilon^2}",
        "reg",
        lambda y, t, epsilon: mean(np.sqrt((y - t) ** 2 + epsilon**2)),
        params=dict(epsilon=1e-3),
    ),
    F(
        "Geman & McClure (1987): robust penalty",
        r"\frac{1}{N}\sum_{i=1}^{N}\frac{(y_i - t_i)^2}{(y_i - t_i)^2 + \sigma^2}",
        "reg",
        lambda y, t, sigma: mean((y - t) ** 2 / ((y - t) ** 2 + sigma**2)),
        params=dict(sigma=0.9),
    ),
    F(
        "Welsch / Leclerc loss (Dennis & Welsch 1978)",
        r"\frac{1}{N}\sum_{i=1}^{N}\frac{c^2}{2}\left(1 - e^{-\left(\frac{y_i - t_i}{c}\right)^2}\right)",
        "reg",
        lambda y, t, c: mean(c**2 / 2 * (1 - np.exp(-(((y - t) / c) ** 2)))),
        params=dict(c=1.1),
    ),
    F(
        "Fair loss (Fair 1974; Zhang, 'Parameter estimation techniques' 1997)",
        r"\frac{1}{N}\sum_{i=1}^{N}c^2\left(\frac{|y_i - t_i|}{c} - \log\left(1 + \frac{|y_i - t_i|}{c}\right)\right)",
        "reg",
        lambda y, t, c: mean(c**2 * (np.abs(y - t) / c - np.log1p(np.abs(y - t) / c))),
        params=dict(c=1.4),
    ),
    F(
        "Varian (1975): LINEX loss",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(e^{a(y_i - t_i)} - a(y_i - t_i) - 1\right)",
        "reg",
        lambda y, t, a: mean(np.exp(a * (y - t)) - a * (y - t) - 1),
        params=dict(a=0.6),
    ),
    F(
        "Koenker & Bassett (1978): check (pinball) loss with the positive part",
        r"\frac{1}{n}\sum_{i=1}^{n}\left(\tau [t_i - y_i]_+ + (1 - \tau)[y_i - t_i]_+\right)",
        "reg",
        lambda y, t, tau: mean(tau * np.maximum(t - y, 0) + (1 - tau) * np.maximum(y - t, 0)),
        params=dict(tau=0.3),
        identify="pinball",
    ),
    F(
        "Koenker (2005), 'Quantile Regression', eq. 1.4: rho_tau as a maximum",
        r"\frac{1}{n}\sum_{i=1}^{n}\max(\tau (t_i - y_i), (\tau - 1)(t_i - y_i))",
        "reg",
        lambda y, t, tau: mean(np.maximum(tau * (t - y), (tau - 1) * (t - y))),
        params=dict(tau=0.8),
        identify="pinball",
    ),
    F(
        "Koenker (2005): check loss with an indicator",
        r"\frac{1}{n}\sum_{i=1}^{n}(t_i - y_i)\left(\tau - \mathbb{1}\{t_i - y_i < 0\}\right)",
        "reg",
        lambda y, t, tau: mean((t - y) * (tau - (t - y < 0))),
        params=dict(tau=0.25),
        identify="pinball",
    ),
    F(
        "Newey & Powell (1987): expectile (asymmetric squared) loss",
        r"\frac{1}{n}\sum_{i=1}^{n}\left|\tau - \mathbb{I}(t_i - y_i < 0)\right|(t_i - y_i)^2",
        "reg",
        lambda y, t, tau: mean(np.abs(tau - (t - y < 0)) * (t - y) ** 2),
        params=dict(tau=0.7),
    ),
    F(
        "Vapnik (1995), SVR: epsilon-insensitive loss",
        r"\frac{1}{N}\sum_{i=1}^{N}\max(0, |y_i - t_i| - \varepsilon)",
        "reg",
        lambda y, t, varepsilon: mean(np.maximum(0, np.abs(y - t) - varepsilon)),
        params=dict(varepsilon=0.4),
    ),
    F(
        "Smola & Schoelkopf (2004), tutorial on SVR: squared epsilon-insensitive",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(|y_i - t_i| - \varepsilon\right)_+^2",
        "reg",
        lambda y, t, varepsilon: mean(np.maximum(0, np.abs(y - t) - varepsilon) ** 2),
        params=dict(varepsilon=0.4),
    ),
    F(
        "Tukey biweight (Beaton & Tukey 1974), as in Zhang (1997)",
        r"\frac{1}{N}\sum_{i=1}^{N}\begin{cases}\frac{c^2}{6}\left(1 - \left(1 - \left(\frac{y_i - t_i}{c}\right)^2\right)^3\right)"
        r" & |y_i - t_i| \le c \\ \frac{c^2}{6} & \text{otherwise}\end{cases}",
        "reg",
        lambda y, t, c: mean(
            np.where(np.abs(y - t) <= c, c**2 / 6 * (1 - (1 - ((y - t) / c) ** 2) ** 3), c**2 / 6)
        ),
        params=dict(c=1.7),
    ),
    F(
        "|r| written as sign(r) r (subgradient notation, Boyd & Vandenberghe 2004, 6.1)",
        r"\frac{1}{N}\sum_{i=1}^{N}\operatorname{sign}(y_i - t_i)(y_i - t_i)",
        "reg",
        lambda y, t: mean(np.sign(y - t) * (y - t)),
        identify="mean_absolute_error",
    ),
    F(
        "Feng et al., Wing loss (CVPR 2018), eq. 5",
        r"\frac{1}{N}\sum_{i=1}^{N}\begin{cases} w\ln(1 + |y_i - t_i|/\epsilon) & \text{if } |y_i - t_i| < w \\"
        r" |y_i - t_i| - C & \text{otherwise}\end{cases}",
        "reg",
        lambda y, t, w, epsilon, C: mean(
            np.where(np.abs(y - t) < w, w * np.log1p(np.abs(y - t) / epsilon), np.abs(y - t) - C)
        ),
        params=dict(w=1.0, epsilon=0.5, C=1.0 - 1.0 * np.log1p(1.0 / 0.5)),
    ),
    F(
        "Wikipedia, 'Mean squared logarithmic error' (scikit-learn docs)",
        r"\frac{1}{n}\sum_{i=1}^{n}(\log(1 + y_i) - \log(1 + t_i))^2",
        "pos",
        lambda y, t: mean((np.log1p(y) - np.log1p(t)) ** 2),
        identify="mean_squared_log_error",
    ),
    F(
        "scikit-learn docs: mean absolute percentage error (targets kept away from 0)",
        r"\frac{1}{n}\sum_{i=1}^{n}\frac{|t_i - y_i|}{|t_i|}",
        "pos",
        lambda y, t: mean(np.abs(t - y) / np.abs(t)),
    ),
    F(
        "McCullagh & Nelder (1989): Poisson deviance on the rate, as in PyTorch's PoissonNLLLoss",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(y_i - t_i\log y_i\right)",
        "count",
        lambda y, t: mean(y - t * np.log(y)),
    ),
    F(
        "McCullagh & Nelder (1989): gamma deviance",
        r"\frac{2}{N}\sum_{i=1}^{N}\left(\log\frac{y_i}{t_i} + \frac{t_i}{y_i} - 1\right)",
        "pos",
        lambda y, t: mean(2 * (np.log(y / t) + t / y - 1)),
        identify="gamma_deviance",
    ),
    F(
        "Lee & Seung (2001): generalised KL (I-) divergence",
        r"D(t \| y) = \sum_{i=1}^{n}\left(t_i\log\frac{t_i}{y_i} - t_i + y_i\right)",
        "pos",
        lambda y, t: float(np.sum(t * np.log(t / y) - t + y)),
        identify="generalized_kl",
    ),
    F(
        "Nix & Weigend (1994): Gaussian negative log-likelihood with a variance input",
        r"\frac{1}{2N}\sum_{i=1}^{N}\left(\log\mathrm{var}_i + \frac{(y_i - t_i)^2}{\mathrm{var}_i}\right)",
        "reg",
        lambda y, t, var: mean(0.5 * (np.log(var) + (y - t) ** 2 / var)),
    ),
    F(
        "Laplace negative log-likelihood with scale b (Murphy, PML 2022, 2.6.4)",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(\log(2b) + \frac{|y_i - t_i|}{b}\right)",
        "reg",
        lambda y, t, b: mean(np.log(2 * b) + np.abs(y - t) / b),
        params=dict(b=0.9),
    ),
    # -- binary classification on probabilities -------------------------------------------
    F(
        "Bishop, PRML (2006), eq. 4.90: cross-entropy error",
        r"E(\mathbf{w}) = -\sum_{n=1}^{N}\{t_n\ln y_n + (1 - t_n)\ln(1 - y_n)\}",
        "prob",
        lambda y, t: -float(np.sum(t * np.log(y) + (1 - t) * np.log(1 - y))),
    ),
    F(
        "Goodfellow et al. (2016), 6.2.2.2 / Ng CS229: logistic regression's cost, averaged",
        r"J(\theta) = -\frac{1}{m}\sum_{i=1}^{m}\left[y^{(i)}\log h^{(i)} + (1 - y^{(i)})\log(1 - h^{(i)})\right]",
        "prob",
        lambda y, t: -mean(t * np.log(y) + (1 - t) * np.log(1 - y)),
        names=dict(pred="h", target="y"),
        identify="binary_cross_entropy",
    ),
    F(
        "Wikipedia, 'Cross entropy' (binary, with \\hat{y})",
        r"L = -\frac{1}{N}\sum_{n=1}^{N}\left[y_n\log\hat{y}_n + (1 - y_n)\log(1 - \hat{y}_n)\right]",
        "prob",
        lambda y, t: -mean(t * np.log(y) + (1 - t) * np.log(1 - y)),
        names=dict(pred=r"\hat{y}", target="y"),
        identify="binary_cross_entropy",
    ),
    F(
        "Binary cross-entropy by cases (course notes, e.g. Stanford CS231n)",
        r"\frac{1}{N}\sum_{i=1}^{N}\begin{cases} -\log y_i & \text{if } t_i = 1, \\ -\log(1 - y_i) & \text{otherwise.}\end{cases}",
        "prob",
        lambda y, t: mean(np.where(t == 1, -np.log(y), -np.log(1 - y))),
    ),
    F(
        "Lin et al., Focal loss (ICCV 2017), eq. 5 written out with alpha-balance",
        r"\mathcal{L}_{\text{focal}} = -\frac{1}{N}\sum_{i=1}^{N}\left[\alpha t_i (1 - y_i)^{\gamma}\log y_i"
        r" + (1 - \alpha)(1 - t_i) y_i^{\gamma}\log(1 - y_i)\right]",
        "prob",
        lambda y, t, alpha, gamma: (
            -mean(
                alpha * t * (1 - y) ** gamma * np.log(y)
                + (1 - alpha) * (1 - t) * y**gamma * np.log(1 - y)
            )
        ),
        params=dict(alpha=0.25, gamma=2.0),
    ),
    F(
        "Lin et al. (2017), eq. 4: focal loss without alpha",
        r"FL = -\frac{1}{N}\sum_{i=1}^{N}\left[t_i (1 - y_i)^{\gamma}\log y_i + (1 - t_i) y_i^{\gamma}\log(1 - y_i)\right]",
        "prob",
        lambda y, t, gamma: (
            -mean(t * (1 - y) ** gamma * np.log(y) + (1 - t) * y**gamma * np.log(1 - y))
        ),
        params=dict(gamma=1.5),
    ),
    F(
        "King & Zeng (2001): class-weighted cross-entropy",
        r"-\frac{1}{N}\sum_{i=1}^{N}\left(w_1 t_i\log y_i + w_0 (1 - t_i)\log(1 - y_i)\right)",
        "prob",
        lambda y, t, w_1, w_0: -mean(w_1 * t * np.log(y) + w_0 * (1 - t) * np.log(1 - y)),
        params=dict(w_1=2.0, w_0=0.5),
    ),
    F(
        "Brier (1950): the Brier score for binary outcomes",
        r"BS = \frac{1}{N}\sum_{t=1}^{N}(f_t - o_t)^2",
        "prob",
        lambda y, t: mean((y - t) ** 2),
        names=dict(pred="f", target="o"),
        identify="mean_squared_error",
    ),
    F(
        "Zhang & Sabuncu (2018), eq. 6: generalised cross-entropy L_q (binary, true class)",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(t_i\frac{1 - y_i^{q}}{q} + (1 - t_i)\frac{1 - (1 - y_i)^{q}}{q}\right)",
        "prob",
        lambda y, t, q: mean(t * (1 - y**q) / q + (1 - t) * (1 - (1 - y) ** q) / q),
        params=dict(q=0.7),
    ),
    F(
        "Ghosh et al. (2017): MAE on probabilities is robust to label noise",
        r"\frac{1}{N}\sum_{i=1}^{N}\left|t_i - y_i\right|",
        "prob",
        lambda y, t: mean(np.abs(t - y)),
        identify="mean_absolute_error",
    ),
    # -- margins (t in {-1, +1}) ----------------------------------------------------------
    F(
        "Cortes & Vapnik (1995): hinge loss with the positive part",
        r"\frac{1}{N}\sum_{i=1}^{N}[1 - t_i y_i]_+",
        "margin",
        lambda y, t: mean(np.maximum(0, 1 - t * y)),
        identify="hinge",
    ),
    F(
        "Rosasco et al. (2004): hinge loss as a maximum",
        r"\frac{1}{n}\sum_{i=1}^{n}\max(0, 1 - t_i y_i)",
        "margin",
        lambda y, t: mean(np.maximum(0, 1 - t * y)),
        identify="hinge",
    ),
    F(
        "Hinge loss with \\operatorname{ReLU} (deep-learning notation)",
        r"\frac{1}{n}\sum_{i=1}^{n}\operatorname{ReLU}(1 - t_i y_i)",
        "margin",
        lambda y, t: mean(np.maximum(0, 1 - t * y)),
        identify="hinge",
    ),
    F(
        "Squared hinge, L2-SVM (Lee & Mangasarian 2001)",
        r"\frac{1}{N}\sum_{i=1}^{N}[1 - t_i y_i]_+^2",
        "margin",
        lambda y, t: mean(np.maximum(0, 1 - t * y) ** 2),
        identify="squared_hinge",
    ),
    F(
        "Squared hinge as a maximum squared",
        r"\frac{1}{N}\sum_{i=1}^{N}\max(0, 1 - t_i y_i)^2",
        "margin",
        lambda y, t: mean(np.maximum(0, 1 - t * y) ** 2),
        identify="squared_hinge",
    ),
    F(
        "Rennie & Srebro (2005): smooth hinge",
        r"\frac{1}{N}\sum_{i=1}^{N}\begin{cases}\frac{1}{2} - t_i y_i & t_i y_i \le 0 \\"
        r" \frac{1}{2}(1 - t_i y_i)^2 & 0 < t_i y_i < 1 \\ 0 & t_i y_i \ge 1\end{cases}",
        "margin",
        lambda y, t: mean(
            np.where(t * y <= 0, 0.5 - t * y, np.where(t * y < 1, 0.5 * (1 - t * y) ** 2, 0.0))
        ),
    ),
    F(
        "Zhang (2004): modified Huber loss",
        r"\frac{1}{N}\sum_{i=1}^{N}\begin{cases}\max(0, 1 - t_i y_i)^2 & t_i y_i \ge -1 \\ -4 t_i y_i & \text{otherwise}\end{cases}",
        "margin",
        lambda y, t: mean(np.where(t * y >= -1, np.maximum(0, 1 - t * y) ** 2, -4 * t * y)),
    ),
    F(
        "Freund & Schapire (1997); ESL (2009) eq. 10.8: exponential loss",
        r"\frac{1}{N}\sum_{i=1}^{N}\exp\left(-t_i y_i\right)",
        "margin",
        lambda y, t: mean(np.exp(-t * y)),
        identify="exponential",
    ),
    F(
        "ESL (2009) Table 10.2: binomial deviance (logistic loss) in the margin",
        r"\frac{1}{N}\sum_{i=1}^{N}\log\left(1 + e^{-t_i y_i}\right)",
        "margin",
        lambda y, t: mean(np.log1p(np.exp(-t * y))),
    ),
    F(
        "Logistic loss with \\mathrm{softplus}",
        r"\frac{1}{N}\sum_{i=1}^{N}\mathrm{softplus}(-t_i y_i)",
        "margin",
        lambda y, t: mean(np.log1p(np.exp(-t * y))),
    ),
    F(
        "Soft-margin loss as PyTorch's SoftMarginLoss writes it, with \\ln",
        r"\frac{1}{N}\sum_{i=1}^{N}\ln(1 + \exp(-t_i y_i))",
        "margin",
        lambda y, t: mean(np.log1p(np.exp(-t * y))),
    ),
    F(
        "Masnadi-Shirazi & Vasconcelos (2009): Savage loss",
        r"\frac{1}{N}\sum_{i=1}^{N}\frac{1}{(1 + e^{2 t_i y_i})^2}",
        "margin",
        lambda y, t: mean(1 / (1 + np.exp(2 * t * y)) ** 2),
    ),
    F(
        "Sigmoid loss (Mason et al. 2000), with \\tanh",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(1 - \tanh(t_i y_i)\right)",
        "margin",
        lambda y, t: mean(1 - np.tanh(t * y)),
    ),
    F(
        "0-1 loss with an indicator (ESL 2.4)",
        r"\frac{1}{N}\sum_{i=1}^{N}\mathbb{1}[t_i y_i < 0]",
        "margin",
        lambda y, t: mean(t * y < 0),
    ),
    F(
        "0-1 loss with an Iverson bracket (Knuth's notation)",
        r"\frac{1}{N}\sum_{i=1}^{N}[\![t_i y_i \le 0]\!]",
        "margin",
        lambda y, t: mean(t * y <= 0),
    ),
    F(
        "Ramp loss (Collobert et al. 2006)",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(\max(0, 1 - t_i y_i) - \max(0, s - t_i y_i)\right)",
        "margin",
        lambda y, t, s: mean(np.maximum(0, 1 - t * y) - np.maximum(0, s - t * y)),
        params=dict(s=-1.0),
    ),
    # -- on logits ------------------------------------------------------------------------
    F(
        "Binary cross-entropy on logits with \\sigma (Goodfellow et al. 2016, eq. 6.20)",
        r"-\frac{1}{N}\sum_{i=1}^{N}\left(t_i\log\sigma(z_i) + (1 - t_i)\log(1 - \sigma(z_i))\right)",
        "logit",
        lambda z, t: -mean(t * np.log(expit(z)) + (1 - t) * np.log(expit(-z))),
        identify="sigmoid_binary_cross_entropy",
    ),
    F(
        "Logistic loss on logits, labels in {0, 1}, softplus form (Murphy PML, 10.2.3)",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(\log(1 + e^{z_i}) - t_i z_i\right)",
        "logit",
        lambda z, t: mean(np.logaddexp(0, z) - t * z),
        identify="sigmoid_binary_cross_entropy",
    ),
    F(
        "Lin et al. (2017): focal loss on logits",
        r"-\frac{1}{N}\sum_{i=1}^{N}\left[\alpha t_i (1 - \sigma(z_i))^{\gamma}\log\sigma(z_i)"
        r" + (1 - \alpha)(1 - t_i)\sigma(z_i)^{\gamma}\log(1 - \sigma(z_i))\right]",
        "logit",
        lambda z, t, alpha, gamma: (
            -mean(
                alpha * t * expit(-z) ** gamma * np.log(expit(z))
                + (1 - alpha) * (1 - t) * expit(z) ** gamma * np.log(expit(-z))
            )
        ),
        params=dict(alpha=0.25, gamma=2.0),
    ),
    # -- categorical ----------------------------------------------------------------------
    F(
        "Bishop, PRML (2006), eq. 4.108: multiclass cross-entropy",
        r"E = -\sum_{n=1}^{N}\sum_{k=1}^{K} t_{nk}\ln y_{nk}",
        "cat",
        lambda y, t: -float(np.sum(t * np.log(y))),
    ),
    F(
        "Goodfellow et al. (2016): categorical cross-entropy, mean over the batch, C classes",
        r"\mathcal{L} = -\frac{1}{N}\sum_{i=1}^{N}\sum_{c=1}^{C} t_{ic}\log y_{ic}",
        "cat",
        lambda y, t: -row_mean(t * np.log(y)),
        identify="categorical_cross_entropy",
    ),
    F(
        "Cross-entropy over a data set |D| (Murphy PML, 4.2)",
        r"-\frac{1}{|D|}\sum_{i=1}^{|D|}\sum_{k=1}^{K} t_{ik}\log y_{ik}",
        "cat",
        lambda y, t: -row_mean(t * np.log(y)),
        identify="categorical_cross_entropy",
    ),
    F(
        "Cross-entropy with sums written without limits (course notes)",
        r"-\frac{1}{N}\sum_i\sum_k t_{ik}\log y_{ik}",
        "cat",
        lambda y, t: -row_mean(t * np.log(y)),
        identify="categorical_cross_entropy",
    ),
    F(
        "Softmax cross-entropy with \\operatorname{softmax} (Goodfellow et al. 2016, 6.2.2.3)",
        r"-\frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{K} t_{ij}\log\operatorname{softmax}(z)_{ij}",
        "catlogit",
        lambda z, t: -row_mean(t * log_softmax(z, axis=-1)),
        identify="softmax_cross_entropy",
    ),
    F(
        "Kullback & Leibler (1951): KL(t || y) of rows",
        r"D_{\mathrm{KL}}(t \,\|\, y) = \frac{1}{N}\sum_{i=1}^{N}\sum_{k=1}^{K} t_{ik}\log\frac{t_{ik}}{y_{ik}}",
        "catsoft",
        lambda y, t: row_mean(t * np.log(t / y)),
    ),
    F(
        "Szegedy et al. (2016), 7: label-smoothed cross-entropy",
        r"-\frac{1}{N}\sum_{i=1}^{N}\sum_{k=1}^{K}\left((1 - \epsilon) t_{ik} + \frac{\epsilon}{K}\right)\log y_{ik}",
        "cat",
        lambda y, t, epsilon: -row_mean(((1 - epsilon) * t + epsilon / t.shape[-1]) * np.log(y)),
        params=dict(epsilon=0.1),
    ),
    F(
        "Multiclass Brier score (Brier 1950)",
        r"\frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{R}(f_{ij} - o_{ij})^2",
        "cat",
        lambda y, t: row_mean((y - t) ** 2),
        names=dict(pred="f", target="o"),
    ),
    F(
        "Hellinger distance squared between rows (Pollard 2002), halved",
        r"\frac{1}{2N}\sum_{i=1}^{N}\sum_{k=1}^{K}\left(\sqrt{y_{ik}} - \sqrt{t_{ik}}\right)^2",
        "catsoft",
        lambda y, t: row_mean(0.5 * (np.sqrt(y) - np.sqrt(t)) ** 2),
    ),
    F(
        "Hinton et al. (2015): distillation cross-entropy at temperature T",
        r"-\frac{1}{N}\sum_{i}\sum_{j} t_{ij}\log\mathrm{softmax}(z)_{ij}",
        "catsoftlogit",
        lambda z, t: -row_mean(t * log_softmax(z, axis=-1)),
        identify="softmax_cross_entropy",
    ),
    # -- written out: canonicalised to the named functions before anything is derived ----
    F(
        "Bishop, PRML (2006), eq. 4.90 with the sigmoid of eq. 4.59 written out",
        r"E = -\frac{1}{N}\sum_{n=1}^{N}\left\{t_n\ln\frac{1}{1 + e^{-z_n}}"
        r" + (1 - t_n)\ln\left(1 - \frac{1}{1 + e^{-z_n}}\right)\right\}",
        "logit",
        lambda z, t: -mean(t * np.log(expit(z)) + (1 - t) * np.log(expit(-z))),
        identify="sigmoid_binary_cross_entropy",
    ),
    F(
        "Bishop, PRML (2006), eq. 4.108 with the softmax of eq. 4.104 written out",
        r"E = -\frac{1}{N}\sum_{n=1}^{N}\sum_{k=1}^{K} t_{nk}\ln\frac{e^{z_{nk}}}{\sum_{j=1}^{K} e^{z_{nj}}}",
        "catlogit",
        lambda z, t: -row_mean(t * log_softmax(z, axis=-1)),
        identify="softmax_cross_entropy",
    ),
    F(
        "Stanford CS231n notes, 'Softmax classifier': log-sum-exp minus the score, one-hot rows",
        r"\frac{1}{N}\sum_{i}\sum_{j} t_{ij}\left(\log\sum_{k} e^{z_{ik}} - z_{ij}\right)",
        "catlogit",
        lambda z, t: -row_mean(t * log_softmax(z, axis=-1)),
        identify="softmax_cross_entropy",
    ),
    F(
        "Goodfellow et al. (2016), eq. 6.33 per sample: log-sum-exp minus the true class's score",
        r"\frac{1}{N}\sum_{i=1}^{N}\left(\log\sum_{j=1}^{K} e^{z_{ij}} - \sum_{j=1}^{K} t_{ij} z_{ij}\right)",
        "catlogit",
        lambda z, t: -row_mean(t * log_softmax(z, axis=-1)),
        identify="softmax_cross_entropy",
    ),
    F(
        "Lin et al. (2017): focal loss on logits with p = (1 + \\exp(-z))^{-1} written out",
        r"-\frac{1}{N}\sum_{i=1}^{N}\left[t_i\left(1 - (1 + \exp(-z_i))^{-1}\right)^{\gamma}"
        r"\log\left((1 + \exp(-z_i))^{-1}\right) + (1 - t_i)(1 + \exp(-z_i))^{-\gamma}"
        r"\log\left(1 - (1 + \exp(-z_i))^{-1}\right)\right]",
        "logit",
        lambda z, t, gamma: (
            -mean(
                t * expit(-z) ** gamma * np.log(expit(z))
                + (1 - t) * expit(z) ** gamma * np.log(expit(-z))
            )
        ),
        params=dict(gamma=2.0),
    ),
    F(
        "Murphy, PML (2022), 11.2: multi-output least squares, the squared norm of each row",
        r"\frac{1}{N}\sum_{i=1}^{N}\lVert y_i - t_i\rVert_2^2",
        "cat",
        lambda y, t: row_mean((y - t) ** 2),
    ),
    F(
        "Row-wise L1 norm, as Ghosh et al. (2017) write MAE for label vectors",
        r"\frac{1}{N}\sum_{i=1}^{N}\left\| y_i - t_i \right\|_1",
        "cat",
        lambda y, t: row_mean(np.abs(y - t)),
    ),
    F(
        "Multi-class L1 over rows (Ghosh et al. 2017)",
        r"\frac{1}{N}\sum_{i=1}^{N}\sum_{j=1}^{K}\lvert y_{ij} - t_{ij}\rvert",
        "cat",
        lambda y, t: row_mean(np.abs(y - t)),
    ),
]


def inputs(kind: str, seed: int = 0):
    """Random inputs of each kind, away from kinks by chance (7 samples, 4 classes)."""
    rng = np.random.default_rng(seed)
    n, k = 7, 4
    if kind == "reg":
        return rng.normal(0, 2, n), rng.normal(0, 2, n)
    if kind == "pos":
        return rng.uniform(0.2, 3, n), rng.uniform(0.2, 3, n)
    if kind == "count":
        return rng.uniform(0.2, 6, n), rng.integers(0, 8, n).astype(float)
    if kind == "prob":
        return rng.uniform(0.05, 0.95, n), rng.integers(0, 2, n).astype(float)
    if kind == "margin":
        return rng.normal(0, 1.5, n), rng.choice([-1.0, 1.0], n)
    if kind == "logit":
        return rng.normal(0, 3, n), rng.integers(0, 2, n).astype(float)
    if kind in ("cat", "catsoft"):
        y = softmax(rng.normal(0, 1, (n, k)), axis=-1)
        t = (
            np.eye(k)[rng.integers(0, k, n)]
            if kind == "cat"
            else softmax(rng.normal(0, 1, (n, k)), axis=-1)
        )
        return y, t
    if kind in ("catlogit", "catsoftlogit"):
        z = rng.normal(0, 2, (n, k))
        t = (
            np.eye(k)[rng.integers(0, k, n)]
            if kind == "catlogit"
            else softmax(rng.normal(0, 1, (n, k)), axis=-1)
        )
        return z, t
    raise ValueError(kind)

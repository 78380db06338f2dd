"""Probabilistic and GLM losses: PyTorch and scikit-learn references, proofs, extremes, options."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from shared import _naive, _unstabilize, numeric_grad, reference

import symloss
from symloss.numeric.stabilize import stabilize
from symloss.symbolic import derivatives
from symloss.symbols import array, i, n

y, t = array("y"), array("t")

# ------------------------------------------------------------------ PyTorch 2.13 values
# Computed once with PyTorch 2.13.0+cpu in float64: torch.nn.functional.poisson_nll_loss
# and gaussian_nll_loss (reduction="mean"), value and input.grad after backward().
COUNTS = np.array([0.0, 1.0, 3.0, 2.0, 7.0])
LOG_RATES = np.array([0.3, -1.2, 2.0, 0.0, 1.1])
RATES = np.abs(LOG_RATES)
POISSON_2_13 = {
    (True, False): (
        0.1088550284730577,
        [0.26997176151520064, -0.13976115761755958, 0.8778112197861301, -0.2, -0.7991667952107134],
    ),
    (True, True): (
        2.294685564326481,
        [0.26997176151520064, -0.13976115761755958, 0.8778112197861301, -0.2, -0.7991667952107134],
    ),
    (False, False): (
        7.702485408766195,
        [0.2, 0.03333333472222219, -0.09999999850000008, -39999999.8, -1.072727261157025],
    ),
    (False, True): (
        9.888315944619617,
        [0.2, 0.03333333472222219, -0.09999999850000008, -39999999.8, -1.072727261157025],
    ),
}


@pytest.mark.parametrize(("log_input", "full"), POISSON_2_13)
def test_poisson_nll_matches_pytorch_2_13(log_input, full):
    value, grad = POISSON_2_13[log_input, full]
    L = symloss.get("poisson_nll", log_input=log_input, full=full)
    pred = LOG_RATES if log_input else RATES
    assert L(pred, COUNTS) == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(L.grad(pred, COUNTS), grad, rtol=1e-13)


@pytest.mark.parametrize(
    ("full", "value"), [(False, 124998.28681118025), (True, 124999.20574971347)]
)
def test_gaussian_nll_matches_pytorch_2_13(full, value):
    # The third variance, 1e-8, is below eps = 1e-6 and is clamped to it.
    mean, target = np.array([0.3, -1.2, 2.0, 0.0]), np.array([0.5, -1.0, 1.0, 0.1])
    var = np.array([0.5, 2.0, 1e-8, 1.0])
    L = symloss.get("gaussian_nll", full=full)
    assert L(mean, target, var=var) == pytest.approx(value, rel=1e-14)
    np.testing.assert_allclose(
        L.grad(mean, target, var=var), [-0.1, -0.025, 250000.0, -0.025], rtol=1e-13
    )


# ------------------------------------------------------------------ scikit-learn
def _mp_gamma(mu, tt):
    # scikit-learn's mean_gamma_deviance summand 2 (log(mu/t) + t/mu - 1); near mu = t
    # written 2 (d - log1p(d)) with d = t/mu - 1, so that mpmath does not cancel.
    d = (tt - mu) / mu
    if abs(d) > 0.5:
        return 2 * (mpmath.log(mu / tt) + tt / mu - 1)
    return 2 * (d - mpmath.log1p(d))


def _mp_tweedie(p):
    # scikit-learn's mean_tweedie_deviance summand for p not in {0, 1, 2}, as its docs write it.
    def f(mu, tt):
        return 2 * (
            tt ** (2 - p) / ((1 - p) * (2 - p))
            - tt * mu ** (1 - p) / (1 - p)
            + mu ** (2 - p) / (2 - p)
        )

    return f


def test_gamma_deviance_matches_scikit_learn_docstring_example():
    # sklearn.metrics.mean_gamma_deviance([2, 0.5, 1, 4], [0.5, 0.5, 2., 2.]) -> 1.0568...
    tt, mu = np.array([2.0, 0.5, 1.0, 4.0]), np.array([0.5, 0.5, 2.0, 2.0])
    got = symloss.get("mean_gamma_deviance")(mu, tt)
    assert 1.0568 <= got < 1.0569
    expected = sum(reference(_mp_gamma, a, b) for a, b in zip(mu, tt)) / 4
    assert got == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("p", [1.1, 1.5, 1.9, 2.5, 3.0])
def test_tweedie_matches_scikit_learn_formula_in_mpmath(p):
    tt, mu = np.array([2.0, 0.0, 1.0, 4.0, 0.3]), np.array([0.5, 0.5, 2.0, 2.0, 0.3])
    if p > 2:
        tt[1] = 0.7  # scikit-learn requires t > 0 for p > 2
    L = symloss.get("tweedie", power=p, reduction="none")
    # The formula cancels completely at y = t (the last pair); it is checked apart.
    expected = [reference(_mp_tweedie(mpmath.mpf(p)), a, b) for a, b in zip(mu[:-1], tt[:-1])]
    np.testing.assert_allclose(L(mu, tt)[:-1], expected, rtol=1e-12)
    assert L(mu, tt)[-1] == 0.0  # y = t: exactly 0 in the regrouped form


@pytest.mark.parametrize("p", [1.000001, 1.001, 1.999999, 2.000001])
def test_tweedie_next_to_powers_one_and_two_keeps_full_accuracy(p):
    # The definition's 1/((1-p)(2-p)) divides a numerator that cancels to O(1e-6) here
    # (relative errors up to 1e-4 before the kernels took the expm1 form).
    tt = np.array([2.0, 0.0, 1.0, 4.0, 1e-12, 1e12, 3.0])
    mu = np.array([0.5, 0.5, 2.0, 2.0, 1e12, 1e-12, 2.9])
    if p > 2:
        tt[1] = 0.7
    L = symloss.get("tweedie", power=p, reduction="sum")

    def deep(f, a, b):  # the formula cancels ~1e24 between its terms at 1e-12 vs 1e12
        with mpmath.workdps(100):
            low = f(mpmath.mpf(p), mpmath.mpf(a), mpmath.mpf(b))
        with mpmath.workdps(200):
            high = f(mpmath.mpf(p), mpmath.mpf(a), mpmath.mpf(b))
        assert abs(low - high) <= mpmath.mpf(10) ** -30 * abs(high), "reference not stable"
        return float(high)

    values = symloss.get("tweedie", power=p, reduction="none")(mu, tt)
    expected = [deep(lambda q, a, b: _mp_tweedie(q)(a, b), a, b) for a, b in zip(mu, tt)]
    np.testing.assert_allclose(values, expected, rtol=1e-12)
    grad = [deep(lambda q, a, b: 2 * (a - b) * a**-q, a, b) for a, b in zip(mu, tt)]
    np.testing.assert_allclose(L.grad(mu, tt), grad, rtol=1e-12)


def test_tweedie_with_zero_target_and_power_above_two_is_infinite():
    L = symloss.get("tweedie", power=3.0)
    assert L(np.array([1.0]), np.array([0.0])) == np.inf
    # The documented convention (the loss's conventions text): the value is +inf, the
    # limit, and the gradient there is NaN (inf * 0 in the kernel's expm1 form); the
    # other samples' gradients are unaffected.
    assert "NaN gradient" in L.conventions
    g = L.grad(np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    assert np.isnan(g[0])
    # d/dy of 2 (t^(2-p)/((1-p)(2-p)) - t y^(1-p)/(1-p) + y^(2-p)/(2-p)) at p = 3, by hand:
    # 2 (y^(1-p) - t y^(-p)) = 2 (1/4 - 1/8) = 1/4 at y = 2, t = 1; over n = 2: 1/8.
    assert g[1] == pytest.approx(0.125, rel=1e-14)


@pytest.mark.parametrize("p", [2.0, 1.0, 0.5, 0.0, -1.0])
def test_tweedie_refuses_powers_outside_its_formula(p):
    with pytest.raises(ValueError, match=r"power = .* is outside \(1, 2\) U \(2, oo\)"):
        symloss.get("tweedie", power=p)


def test_exponential_matches_scikit_learn_zero_one_labels():
    # sklearn's ExponentialLoss: y' exp(-f) + (1 - y') exp(f) with y' in {0, 1}.
    f = np.array([-2.0, -0.5, 0.0, 0.7, 3.0])
    labels = np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    expected = np.mean(labels * np.exp(-f) + (1 - labels) * np.exp(f))
    assert symloss.get("exponential")(f, 2 * labels - 1) == pytest.approx(expected, rel=1e-15)
    with pytest.raises(ValueError, match=r"target t\[0\] = 0\.0 is outside"):
        symloss.get("exponential")(f, labels)


# ------------------------------------------------------------------ symbolic proofs
def test_tweedie_bregman_form_equals_scikit_learns_three_terms():
    L = symloss.get("tweedie")
    p = L.params[0].symbol
    mu, tt = sp.Symbol("mu", positive=True), sp.Symbol("t", positive=True)
    ours = L.term.doit().subs({y[i]: mu, t[i]: tt})
    sklearn = tt ** (2 - p) / ((1 - p) * (2 - p)) - tt * mu ** (1 - p) / (1 - p)
    sklearn += mu ** (2 - p) / (2 - p)
    assert sp.simplify(ours - sklearn) == 0


def test_gamma_log_split_equals_scikit_learns_log_ratio():
    mu, tt = sp.Symbol("mu", positive=True), sp.Symbol("t", positive=True)
    ours = derivatives.of(symloss.get("gamma_deviance")).kernel_summand.subs({y[i]: mu, t[i]: tt})
    assert sp.expand_log(ours - 2 * (sp.log(mu / tt) + tt / mu - 1)) == 0


def test_gradients_are_the_textbook_forms():
    e = y[i] - t[i]
    eps = sp.Symbol("epsilon", positive=True)
    var = array("var")
    p = symloss.get("tweedie").params[0].symbol
    expected = {
        ("poisson_nll", ()): (sp.exp(y[i]) - t[i]) / n,
        ("poisson_nll", (("log_input", False),)): (1 - t[i] / (y[i] + eps)) / n,
        ("gaussian_nll", ()): e / (n * sp.Max(var[i], eps)),
        ("gamma_deviance", ()): 2 * e / (n * y[i] ** 2),
        ("tweedie", ()): 2 * e / (n * y[i] ** p),
        ("exponential", ()): -t[i] * sp.exp(-t[i] * y[i]) / n,
    }
    for (name, options), grad in expected.items():
        got = symloss.get(name, **dict(options)).gradient()
        assert sp.simplify(got - grad) == 0, (name, got)


def test_stirling_term_is_pytorchs_masked_approximation():
    # PyTorch: t log t - t + 0.5 log(2 pi t), masked to 0 where t <= 1.
    L, base = symloss.get("poisson_nll", full=True), symloss.get("poisson_nll")
    yy, tt = np.zeros(5), np.array([0.0, 0.5, 1.0, 1.5, 10.0])
    extra = symloss.get("poisson_nll", full=True, reduction="none")(yy, tt) - symloss.get(
        "poisson_nll", reduction="none"
    )(yy, tt)
    stirling = [x * math.log(x) - x + 0.5 * math.log(2 * math.pi * x) if x > 1 else 0 for x in tt]
    np.testing.assert_allclose(extra, stirling, rtol=1e-14, atol=0)
    assert L.gradient() == base.gradient()


BUILDER_VARIANTS = [
    ("poisson_nll", {"log_input": False}),
    ("poisson_nll", {"full": True}),
    ("poisson_nll", {"log_input": False, "full": True}),
    ("gaussian_nll", {"full": True}),
]


@pytest.mark.parametrize(("name", "options"), BUILDER_VARIANTS, ids=str)
def test_builder_variants_have_stable_forms_proven_equal(name, options):
    # The registry-wide proof (tests/test_numeric.py) covers the default variants only.
    L = symloss.get(name, **options)
    for expr in (L.term.doit(), derivatives.of(L).gradient[0], derivatives.of(L).hessian[0]):
        diff = sp.expand_log(
            _unstabilize(stabilize(expr, frozenset({t}))) - _naive(expr), force=True
        )
        assert sp.simplify(diff) == 0


@pytest.mark.parametrize(("name", "options"), BUILDER_VARIANTS, ids=str)
def test_builder_variants_gradient_and_hessian_match_differences(name, options):
    L = symloss.get(name, **options)
    rng = np.random.default_rng(3)
    pred = rng.uniform(0.2, 3.0, 6)
    target = np.array([0.0, 0.5, 1.0, 2.0, 3.5, 7.0])
    kw = {"var": rng.uniform(0.1, 2.0, 6)} if name == "gaussian_nll" else {}
    np.testing.assert_allclose(
        L.grad(pred, target, **kw), numeric_grad(L, pred, target, **kw), rtol=1e-6
    )
    h = 1e-6
    fd = (L.grad(pred + h, target, **kw) - L.grad(pred - h, target, **kw)) / (2 * h)
    np.testing.assert_allclose(L.hess(pred, target, **kw), fd, rtol=1e-5)
    if L.nonnegative:
        assert np.all(L(pred, target, **kw) >= 0)


# ------------------------------------------------------------------ extremes vs mpmath
@pytest.mark.parametrize("z", [-745.0, -700.0, -30.0, 0.0, 30.0, 700.0])
@pytest.mark.parametrize("count", [0.0, 1.0, 40.0])
def test_poisson_nll_at_extreme_log_rates_matches_mpmath(z, count):
    L = symloss.get("poisson_nll", reduction="sum")
    value = reference(lambda a, b: mpmath.exp(a) - b * a, z, count)
    assert L(np.array([z]), np.array([count])) == pytest.approx(value, rel=1e-15, abs=1e-300)
    grad = reference(lambda a, b: mpmath.exp(a) - b, z, count)
    assert L.grad(np.array([z]), np.array([count]))[0] == pytest.approx(grad, rel=1e-15, abs=1e-300)


def test_poisson_nll_rate_zero_with_zero_count_is_zero_not_nan():
    L = symloss.get("poisson_nll", log_input=False, reduction="none")
    v = L(np.array([0.0, 0.0]), np.array([0.0, 2.0]))
    np.testing.assert_allclose(v, [0.0, -2.0 * math.log(1e-8)], rtol=1e-15)
    assert symloss.get("poisson_nll", log_input=False, full=True)(np.zeros(1), np.zeros(1)) == 0.0


@pytest.mark.parametrize(
    ("mu", "tt"),
    [(1e-200, 1e200), (1e200, 1e-200), (1e-300, 1e-300), (1e-150, 1e150), (3.0, 3.0 + 3e-15)],
)
def test_gamma_deviance_at_extreme_ratios_matches_mpmath(mu, tt):
    L = symloss.get("gamma_deviance", reduction="sum")
    value = reference(_mp_gamma, mu, tt)
    got = L(np.array([mu]), np.array([tt]))
    if value > 1e308:
        assert got == np.inf  # t/y beyond the float64 range: the true value overflows
    else:
        # log y - log t keeps the ratio's log finite; near y = t the value is ~1e-30 and
        # the float64 sum of log terms carries an absolute error of ~1e-15.
        assert got == pytest.approx(value, rel=1e-14, abs=1e-14)
    grad = reference(lambda a, b: 2 * (a - b) / a**2, mu, tt)
    assert L.grad(np.array([mu]), np.array([tt]))[0] == pytest.approx(grad, rel=1e-14)


# (y, t) where 2/y and 2t/y^2 leave the float64 range before their sum does: y^2
# underflows (y < 1e-154), y is the smallest subnormal (5e-324, where the two terms
# were inf - inf), y = t (true gradient 0), and large y.
TINY_Y = [
    (5e-324, 1.0),
    (5e-324, 5e-324),
    (1e-310, 3e-310),
    (2.2250738585072014e-308, 1.0),
    (1e-200, 1e-200),
    (1e-200, 2e-200),
    (1e-160, 1.0000001e-160),
    (1e-100, 1.0),
    (1.0, 5e-324),
    (3.0, 3.0 + 3e-15),
    (1e300, 1.0),
]


def _as_float64(x):
    """An mpmath number rounded to float64, ±inf beyond the range (as IEEE rounds)."""
    return float(x) if abs(x) < mpmath.mpf(2) ** 1024 else math.copysign(math.inf, x)


@pytest.mark.parametrize("backend", ["fused", "c", "lambdify"])
@pytest.mark.parametrize(("mu", "tt"), TINY_Y, ids=str)
def test_gamma_deviance_gradient_and_hessian_at_tiny_predictions_match_mpmath(
    mu, tt, backend, configure, request
):
    if backend == "c":
        request.getfixturevalue("backend_c")
    else:
        configure(backend=backend)
    # Hand derivation: d/dy 2 (log y - log t + t/y - 1) = 2 (y - t) / y^2, and
    # d2/dy2 = 2 (2t - y) / y^3; mpmath at 50 and 100 digits (no overflow there).
    with mpmath.workdps(100):
        a, b = mpmath.mpf(mu), mpmath.mpf(tt)
        grad, hess = _as_float64(2 * (a - b) / a**2), _as_float64(2 * (2 * b - a) / a**3)
    L = symloss.get("gamma_deviance", reduction="sum")
    g = L.grad(np.array([mu]), np.array([tt]))[0]
    h = L.hess(np.array([mu]), np.array([tt]))[0]
    # The numerator y - t is exact (Sterbenz or the larger term); each division rounds
    # once, and a subnormal y's quotient keeps ~1e-13 relative accuracy.
    for got, want in ((g, grad), (h, hess)):
        if math.isinf(want):
            assert got == want
        else:
            assert got == pytest.approx(want, rel=1e-13, abs=1e-300)


def test_a_rational_gradient_of_a_user_loss_stays_finite_at_tiny_predictions():
    # Itakura-Saito divergence t/y - log(t/y) - 1 from LaTeX, not in the catalog: the
    # same rewrite applies to any array whose domain excludes 0 (here y > 0, from the
    # log).  Gradient (y - t)/y^2 by hand: 0 at y = t, -1e200 at (1e-200, 2e-200).
    L = symloss.from_latex(r"\sum_{i=1}^{n}\left(\frac{t_i}{y_i} - \log\frac{t_i}{y_i} - 1\right)")
    y_ = np.array([1e-200, 1e-200, 5e-324, 1e300])
    t_ = np.array([1e-200, 2e-200, 5e-324, 1.0])
    np.testing.assert_array_equal(L.grad(y_, t_), [0.0, -1e200, 0.0, 1e-300])
    # Where 0 is in the domain the sum keeps its terms: 1/y + t/y^2 at y = t = 0 is
    # -1/y^2 - 2t/y^3 = -inf, not the 0/0 of a common numerator.
    M = symloss.from_latex(r"\sum_{i=1}^{n}\left(\frac{t_i}{y_i^2} + \frac{1}{y_i}\right)")
    assert M.grad(np.array([0.0]), np.array([0.0]))[0] == -np.inf


@pytest.mark.parametrize("margin", [-745.0, -30.0, 0.0, 30.0, 709.0])
def test_exponential_at_extreme_margins_matches_mpmath(margin):
    L = symloss.get("exponential", reduction="sum")
    for label in (-1.0, 1.0):
        value = reference(lambda a, b: mpmath.exp(-a * b), margin * label, label)
        got = L(np.array([margin * label]), np.array([label]))
        assert got == pytest.approx(value, rel=1e-15, abs=1e-300)


# ------------------------------------------------------------------ options and errors
def test_poisson_eps_is_a_parameter_used_with_rates_only():
    rate = symloss.get("poisson_nll", log_input=False, eps=1e-3)
    assert rate(np.array([0.0]), np.array([2.0])) == pytest.approx(-2 * math.log(1e-3))
    # As in PyTorch, eps is accepted with log_input=True and has no effect there.
    log_rate = symloss.get("poisson_nll", eps=1e-3)
    assert log_rate(np.array([0.0]), np.array([2.0])) == 1.0
    with pytest.raises(TypeError, match="valid options: eps, full, log_input, reduction"):
        symloss.get("poisson_nll", log_inputs=False)


def test_nonnegativity_is_declared_where_it_holds():
    assert not symloss.get("poisson_nll").nonnegative
    assert symloss.get("poisson_nll", full=True).nonnegative
    assert not symloss.get("gaussian_nll").nonnegative
    assert symloss.get("poisson_nll")(np.array([1.0]), np.array([5.0])) < 0


def test_gaussian_nll_needs_a_non_negative_variance():
    L = symloss.get("gaussian_nll")
    with pytest.raises(TypeError, match="missing keyword input var="):
        L(np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match=r"var\[1\] = -1\.0 is outside the domain \[0, oo\)"):
        L(np.zeros(2), np.zeros(2), var=np.array([1.0, -1.0]))
    # A zero variance is clamped to eps, as PyTorch's clamp_(min=eps).
    assert L(np.zeros(1), np.ones(1), var=np.zeros(1)) == pytest.approx(
        0.5 * (math.log(1e-6) + 1e6)
    )
    bigger = symloss.get("gaussian_nll", eps=0.5)
    assert bigger(np.zeros(1), np.ones(1), var=np.zeros(1)) == pytest.approx(
        0.5 * (math.log(0.5) + 2)
    )


def test_aliases_resolve_to_the_canonical_losses():
    for alias, name in {
        "poisson_nll_loss": "poisson_nll",
        "gaussian_nll_loss": "gaussian_nll",
        "mean_gamma_deviance": "gamma_deviance",
        "mean_tweedie_deviance": "tweedie",
        "exponential_loss": "exponential",
    }.items():
        assert symloss.get(alias) is symloss.get(name)

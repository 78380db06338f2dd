"""Issue 15: reading formulas as papers write them (names, messages, sizes, domains,
hyperparameters).  The formula collection with values and gradients is in
``test_paper_formulas.py``."""

from __future__ import annotations

import numpy as np
import pytest

import symloss


# -- (7) pred="z" means it ----------------------------------------------------------------
def test_pred_named_z_is_the_prediction():
    L = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n}(z_i - t_i)^2", pred="z")
    assert L.pred.label.name == "y"  # the prediction, not logits
    assert L(np.array([1.0, 3.0]), np.array([0.0, 0.0])) == pytest.approx(5.0)


def test_only_explicit_names_clash():
    with pytest.raises(symloss.ParseError, match="repeated array name"):
        symloss.from_latex(r"\sum_{i=1}^{n} z_i", pred="z", logits="z")


# -- (6) messages that say what is wrong ---------------------------------------------------
def test_rmse_is_refused_because_the_sum_is_inside_a_root():
    tex = r"\mathrm{RMSE} = \sqrt{\frac{1}{N}\sum_{i=1}^{N}(y_i - t_i)^2}"
    with pytest.raises(symloss.ParseError) as info:
        symloss.from_latex(tex)
    assert "not a constant times a sum over the samples" in info.value.reason
    assert "square root" in info.value.reason
    assert "no sum" not in info.value.reason
    assert info.value.position == tex.index(r"\sqrt")


def test_unindexed_prediction_message_does_not_contradict_itself():
    tex = r"\frac{1}{n}\sum_{i=1}^{n}(\hat{y} - t_i)^2"
    with pytest.raises(symloss.ParseError) as info:
        symloss.from_latex(tex, pred=r"\hat{y}")
    assert "is neither" not in info.value.reason
    assert "not indexed" in info.value.reason
    assert info.value.position == tex.index(r"\hat")


# -- (2) size letters and sums without limits ----------------------------------------------
@pytest.mark.parametrize(
    "tex",
    [
        r"-\frac{1}{N}\sum_{i=1}^{N}\sum_{k=1}^{K} t_{ik}\log y_{ik}",  # Bishop PRML (4.108)
        r"-\frac{1}{N}\sum_{i=1}^{N}\sum_{c=1}^{C} t_{ic}\log y_{ic}",
        r"-\frac{1}{B}\sum_{i}\sum_{j} t_{ij}\log y_{ij}",
        r"-\frac{1}{|D|}\sum_{i=1}^{|D|}\sum_{j=1}^{M} t_{ij}\log y_{ij}",
        r"-\frac{1}{N}\sum_i\sum_k t_{ik}\log y_{ik}",
    ],
)
def test_size_letters_and_sums_without_limits(tex):
    L = symloss.from_latex(tex)
    assert L.reduction == "mean"
    assert symloss.identify(L) == "categorical_cross_entropy"


def test_a_sum_without_limits_is_a_sum_over_all_samples():
    L = symloss.from_latex(r"\frac{1}{2}\sum_{i}(y_i - t_i)^2")
    assert symloss.identify(L) == "sum_squared_error"


# -- (1) domains from what the formula needs ----------------------------------------------
def test_log_cosh_and_cauchy_need_nothing():
    for tex, params in [
        (r"\frac{1}{n}\sum_{i=1}^{n}\log\cosh(y_i - t_i)", None),
        (r"\frac{1}{n}\sum_{i=1}^{n}\log\left(1 + \frac{(y_i - t_i)^2}{c^2}\right)", {"c": 2.0}),
    ]:
        L = symloss.from_latex(tex, params=params)
        assert L.domains["y"].text() == "(-oo, oo)"
        assert np.isfinite(L(np.array([-3.0, 5.0]), np.array([2.0, -1.0])))


def test_poisson_on_the_rate_needs_a_positive_rate_and_says_why():
    L = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n}\left(y_i - t_i\log y_i\right)")
    assert L.domains["y"].set == __import__("sympy").Interval.open(0, __import__("sympy").oo)
    # counts of 3 and 7 at rate 5: ordinary data (the old guess, a probability, refused it)
    assert L(np.array([5.0, 5.0]), np.array([3.0, 7.0])) == pytest.approx(
        5.0 - 5 * np.log(5.0)  # hand value: mean of 5 - t log 5 over t = 3, 7
    )
    with pytest.raises(symloss.InputError, match=r"y must be > 0 because of log\(y_i\)"):
        L(np.array([-1.0]), np.array([2.0]))


def test_log_of_one_minus_y_bounds_from_above():
    L = symloss.from_latex(r"-\frac{1}{n}\sum_{i=1}^{n}\log(1 - y_i)")
    assert "y must be < 1 because of log(1 - y_i)" in L.domains["y"].description
    assert L(np.array([-4.0]), np.array([0.0])) == pytest.approx(-np.log(5.0))


def test_gamma_deviance_ratio_bounds_both():
    L = symloss.from_latex(
        r"\frac{2}{n}\sum_{i=1}^{n}\left(\log\frac{y_i}{t_i} + \frac{t_i}{y_i} - 1\right)"
    )
    assert "because of log(y_i/t_i)" in L.domains["y"].description
    assert L(np.array([2.0]), np.array([4.0])) == pytest.approx(2 * (np.log(0.5) + 2 - 1))


def test_parse_command_shows_the_domains(capsys):
    from symloss.cli import main

    main(["parse", r"\frac{1}{n}\sum_{i=1}^{n}(y_i - t_i\log y_i)"])
    assert "domain of y: " in capsys.readouterr().out


# -- (4) hyperparameters are symbolic until bound ------------------------------------------
HUBER = (  # Huber (1964), as Wikipedia "Huber loss" writes it, averaged over the samples
    r"L_\delta(y, t) = \frac{1}{n}\sum_{i=1}^{n}\begin{cases} \frac{1}{2}(y_i - t_i)^2"
    r" & |y_i - t_i| \le \delta, \\ \delta\left(|y_i - t_i| - \frac{1}{2}\delta\right)"
    r" & \text{otherwise.} \end{cases}"
)


def test_undeclared_symbols_are_symbolic_hyperparameters():
    import sympy as sp

    L = symloss.from_latex(HUBER)
    assert [p.name for p in L.params] == ["delta"]
    assert sp.Symbol("delta") in L.gradient().free_symbols
    assert r"\delta" in L.latex()
    y, t = np.array([0.0, 3.0, -0.5]), np.zeros(3)
    with pytest.raises(symloss.ArgumentError, match="hyperparameter delta has no value"):
        L(y, t)
    reference = symloss.get("huber", delta=1.5)
    assert L(y, t, delta=1.5) == pytest.approx(reference(y, t), rel=1e-14)
    np.testing.assert_allclose(L.bind(delta=1.5).grad(y, t), reference.grad(y, t), rtol=1e-14)
    assert L.bind(delta=1.5)(y, t) == L(y, t, delta=1.5)
    with pytest.raises(TypeError, match="no hyperparameter"):
        L.bind(gamma=1.0)


def test_params_given_to_from_latex_still_bind():
    L = symloss.from_latex(HUBER, params={"delta": 1.0})
    y, t = np.array([0.0, 3.0]), np.zeros(2)
    assert L(y, t) == pytest.approx(symloss.get("huber")(y, t), rel=1e-14)


def test_special_function_letters_are_not_hyperparameters():
    with pytest.raises(symloss.ParseError, match="unsupported function"):
        symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n}\Gamma(y_i)")


# -- (5) identification up to equality, with the hyperparameters that make it so ---------
def test_textbook_huber_matches_huber_with_delta_symbolic_or_bound():
    import sympy as sp

    L = symloss.from_latex(HUBER)  # <= at the boundary; the catalog writes <
    assert symloss.match(L) == ("huber", {"delta": sp.Symbol("delta")})
    assert symloss.match(L.bind(delta=2.5)) == ("huber", {"delta": 2.5})


def test_equal_functions_written_differently_are_identified():
    S = r"\frac{1}{n}\sum_{i=1}^{n}"
    assert (
        symloss.identify(symloss.from_latex(S + r"\max(\tau (t_i - y_i), (\tau - 1)(t_i - y_i))"))
        == "pinball"
    )
    assert (
        symloss.identify(symloss.from_latex(S + r"\operatorname{sign}(y_i - t_i)(y_i - t_i)"))
        == "mean_absolute_error"
    )
    assert (
        symloss.identify(symloss.from_latex(S + r"(\log(1 + e^{z_i}) - t_i z_i)"))
        == "sigmoid_binary_cross_entropy"
    )


def test_different_functions_are_not_identified():
    S = r"\frac{1}{n}\sum_{i=1}^{n}"
    assert symloss.identify(symloss.from_latex(S + r"(\log(1 + e^{-z_i}) - t_i z_i)")) is None
    # max(tau r, (tau + 1) r) is not pinball with quantile tau, but it is pinball with
    # quantile tau + 1 (max(q r, (q - 1) r) with q = tau + 1): match() solves for it
    found = symloss.match(symloss.from_latex(S + r"\max(\tau (t_i - y_i), (\tau + 1)(t_i - y_i))"))
    assert found == ("pinball", {"quantile": __import__("sympy").Symbol("tau") + 1})

"""Issue 15: match() solves for the catalog's hyperparameters; equality is checked on
the domain at high precision, kinks included; norms of one row are read and
non-separable formulas are refused with a reason and a position.

Reference values: hand derivations noted at each test; NumPy for values."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import symloss
from symloss.latex_in.compare import numerically_equal
from symloss.symbols import array, index

FOCAL = symloss.get("sigmoid_focal").latex()
HUBER = (  # Huber (1964) as Wikipedia 'Huber loss' writes it, with \le; @ the threshold
    r"\frac{1}{n}\sum_{i=1}^{n}\begin{cases}\frac{1}{2}(y_i - t_i)^2 & |y_i - t_i| \le @ \\"
    r" @\left(|y_i - t_i| - \frac{1}{2}@\right) & \text{otherwise}\end{cases}"
)
HUBER_LE = HUBER.replace("@", "c")


def test_focal_with_gamma_written_as_0_matches_with_gamma_0():
    # Lin et al. (2017): gamma = 0 turns the focal term off
    found = symloss.match(symloss.from_latex(FOCAL.replace(r"\gamma", "0")), budget_seconds=None)
    assert found == ("sigmoid_focal", {"alpha": sp.Symbol("alpha"), "gamma": 0.0})


def test_focal_with_numbers_matches_with_those_numbers():
    tex = FOCAL.replace(r"\gamma", "2").replace(r"\alpha", "0.25")
    assert symloss.match(symloss.from_latex(tex), budget_seconds=None) == (
        "sigmoid_focal",
        {"alpha": 0.25, "gamma": 2.0},
    )


def test_focal_without_alpha_and_gamma_0_is_bce():
    # Lin et al. (2017), eq. 4 with gamma = 0 is eq. 1, the cross-entropy
    tex = (
        r"-\frac{1}{N}\sum_{i=1}^{N}\left[t_i (1 - \sigma(z_i))^{0}\log\sigma(z_i)"
        r" + (1 - t_i)\sigma(z_i)^{0}\log(1 - \sigma(z_i))\right]"
    )
    assert symloss.match(symloss.from_latex(tex)) == ("sigmoid_binary_cross_entropy", {})


def test_huber_with_another_letter_and_le_matches_huber():
    assert symloss.match(symloss.from_latex(HUBER_LE), budget_seconds=None) == (
        "huber",
        {"delta": sp.Symbol("c")},
    )
    bound = symloss.from_latex(HUBER_LE, params={"c": 1.5})
    assert symloss.match(bound, budget_seconds=None) == ("huber", {"delta": 1.5})


def test_kinks_decide_lt_against_le():
    y, t, i = array("y"), array("t"), index("i")
    d = sp.Symbol("delta")
    r = y[i] - t[i]
    lt = sp.Piecewise((r**2 / 2, sp.Abs(r) < d), (d * (sp.Abs(r) - d / 2), True))
    le = sp.Piecewise((r**2 / 2, sp.Abs(r) <= d), (d * (sp.Abs(r) - d / 2), True))
    assert numerically_equal(lt - le) is True  # branches agree at |r| = delta
    # the 0-1 loss: 1[r < 0] and 1[r <= 0] differ at r = 0 (random points never hit it)
    z1 = sp.Piecewise((1, r < 0), (0, True))
    z2 = sp.Piecewise((1, r <= 0), (0, True))
    assert numerically_equal(z1 - z2) is False
    # a wrong constant near the kink only: 1/2 r^2 against 1/2 r^2 + 1e-12 |r|^3 ... is
    # caught at random points too; a jump of the second branch is caught at the kink
    jump = sp.Piecewise((r**2 / 2, sp.Abs(r) < d), (d * (sp.Abs(r) - d / 2) + 1, True))
    assert numerically_equal(lt - jump) is False


def test_textbook_huber_le_is_identified():
    L = symloss.from_latex(HUBER.replace("@", r"\delta"))
    assert symloss.identify(L, budget_seconds=None) == "huber"


def test_norm_of_one_row():
    L = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n}\lVert y_i - t_i \rVert_2^2")
    rng = np.random.default_rng(0)
    y, t = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    assert L(y, t) == pytest.approx(np.mean(np.sum((y - t) ** 2, -1)), rel=1e-13)
    np.testing.assert_allclose(L.grad(y, t), 2 * (y - t) / 5, rtol=1e-13)
    L1 = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n}\|y_i - t_i\|_1")
    assert L1(y, t) == pytest.approx(np.mean(np.sum(np.abs(y - t), -1)), rel=1e-13)
    L2 = symloss.from_latex(r"\frac{1}{n}\sum_{i=1}^{n}\lVert y_i - t_i\rVert")
    assert L2(y, t) == pytest.approx(np.mean(np.linalg.norm(y - t, axis=-1)), rel=1e-13)


@pytest.mark.parametrize(
    "tex, where, says",
    [
        (r"\lVert y - t \rVert_2^2", r"\lVert", "norm of the whole batch"),
        (r"-\frac{1}{n}\sum_{i=1}^{n}\log z_{i,t_i}", "t_i", "gather"),
        (r"\frac{1}{n}\sum_{i=1}^{n}(y_i - \bar{y})^2", r"y_i - \bar", "mean of y over the batch"),
        (
            r"\frac{1}{n}\sum_{i=1}^{n}\left(y_i - \frac{1}{n}\sum_{k=1}^{n} y_k\right)^2",
            r"\sum_{k",
            "runs over the samples",
        ),
        (
            r"\frac{1}{n}\sum_{i}\frac{(y_i - t_i)^2}{\frac{1}{n}\sum_k t_k}",
            r"\sum_k",
            "runs over the samples",
        ),
        (
            r"\mathrm{RMSE} = \sqrt{\frac{1}{N}\sum_{i=1}^{N}(y_i - t_i)^2}",
            r"\sqrt",
            "not a constant times a sum over the samples",
        ),
    ],
)
def test_non_separable_formulas_say_why_and_where(tex, where, says):
    with pytest.raises(symloss.ParseError) as info:
        symloss.from_latex(tex)
    assert says in info.value.reason
    assert info.value.position == tex.index(where)


def test_cli_parse_identify_names_the_matched_values(capsys):
    from symloss.cli.main import main

    # with the catalog's letter: found by the first, symbolic pass (no fitting)
    assert main(["parse", "--identify", HUBER.replace("@", r"\delta")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "identified: huber with delta=delta"

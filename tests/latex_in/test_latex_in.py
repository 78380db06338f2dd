"""Tests of the LaTeX reader, :func:`symloss.latex_in.parser.parse_latex`."""

from __future__ import annotations

import time

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy import Abs, Max, Min, Piecewise, Rational, Sum, cosh, exp, log, sqrt

from symloss.errors import ParseError
from symloss.latex_in.parser import (
    MAX_DEPTH,
    MAX_DIGITS,
    MAX_LENGTH,
    TIME_BUDGET,
    ParsedLatex,
    parse_latex,
)
from symloss.symbols import array, index, m, n, sigmoid, softmax

i, j, k = index("i"), index("j"), index("k")
y, t, z, w = array("y"), array("t"), array("z"), array("w")
delta, gamma, alpha, tau, rho, lam = sp.symbols("delta gamma alpha tau rho lambda")


def S(f, var=i, upper=n):
    """Sum over *var* from 1 to *upper*."""
    return Sum(f, (var, 1, upper))


def same(a, b) -> bool:
    return a == b or sp.simplify(a - b) == 0


def check(text, expected, name=None, **options):
    parsed = parse_latex(text, **options)
    assert isinstance(parsed, ParsedLatex)
    assert parsed.name == name
    assert same(parsed.expr, expected), f"{parsed.expr} != {expected}"
    return parsed


# -- the source article, exactly ------------------------------------------------------
ARTICLE = [
    (r"E = \frac{1}{2}\sum_{k=1}^{n}{(y_k-t_k)^2}", Rational(1, 2) * S((y[k] - t[k]) ** 2, k)),
    (
        r"E = -\frac{1}{n}\sum_{i\,=\,1}^{n}{(t_i\,log\,y_i + (1-t_i)\,log(1-y_i))}",
        -1 / n * S(t[i] * log(y[i]) + (1 - t[i]) * log(1 - y[i])),
    ),
    (
        r"E = -\frac{1}{n}\sum_{i\,=\,1}^{n}{\sum_{j\,=\,1}^{m}{(t_{ij}\,log\,y_{ij})}}",
        -1 / n * S(Sum(t[i, j] * log(y[i, j]), (j, 1, m))),
    ),
]


@pytest.mark.parametrize(("text", "expected"), ARTICLE)
def test_article_formulas_exactly(text, expected):
    parsed = parse_latex(text)
    assert parsed.name == "E"
    assert parsed.expr == expected  # structurally, not just mathematically


# -- the printer's standard style -----------------------------------------------------
BCE = -1 / n * S(t[i] * log(y[i]) + (1 - t[i]) * log(1 - y[i]))
STANDARD = [
    (
        r"E = -\frac{1}{n}\sum_{i=1}^{n}\left(t_{i} \log{\left(y_{i} \right)} + \left(1 - t_{i}"
        r"\right) \log{\left(1 - y_{i} \right)}\right)",
        BCE,
    ),
    (r"E = \frac{1}{2}\sum_{k=1}^{n}\left(y_{k} - t_{k}\right)^{2}", S((y[k] - t[k]) ** 2, k) / 2),
    (
        r"E = -\frac{1}{n}\sum_{i=1}^{n}\sum_{j=1}^{m} t_{ij} \log{\left(\operatorname{softmax}"
        r"\left(z\right)_{ij} \right)}",
        -1 / n * S(Sum(t[i, j] * log(softmax(z, i, j)), (j, 1, m))),
    ),
    (
        r"E = -\frac{1}{n}\sum_{i=1}^{n}\left(t_{i} \log{\left(\sigma\left(z_{i}\right) \right)}"
        r" + \left(1 - t_{i}\right) \log{\left(1 - \sigma\left(z_{i}\right) \right)}\right)",
        -1 / n * S(t[i] * log(sigmoid(z[i])) + (1 - t[i]) * log(1 - sigmoid(z[i]))),
    ),
]
BARE = [
    (
        r"\frac{1}{n}\sum_{i=1}^{n} \max\left(0, 1 - t_{i} y_{i}\right)",
        S(Max(0, 1 - t[i] * y[i])) / n,
    ),
    (r"\frac{1}{n}\sum_{i=1}^{n}\left|y_{i} - t_{i}\right|", S(Abs(y[i] - t[i])) / n),
    (
        r"\frac{1}{n}\sum_{i=1}^{n} \log{\left(\cosh{\left(y_{i} - t_{i} \right)} \right)}",
        S(log(cosh(y[i] - t[i]))) / n,
    ),
    (
        r"\frac{1}{n}\sum_{i=1}^{n} \left(e^{y_{i}} - t_{i} y_{i}\right)",
        S(exp(y[i]) - t[i] * y[i]) / n,
    ),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\left(\delta^{2}\left(\sqrt{1 + \left(\frac{y_{i} - t_{i}}"
        r"{\delta}\right)^{2}} - 1\right)\right)",
        S(delta**2 * (sqrt(1 + ((y[i] - t[i]) / delta) ** 2) - 1)) / n,
    ),
]


@pytest.mark.parametrize(("text", "expected"), STANDARD)
def test_standard_style(text, expected):
    assert parse_latex(text).expr == expected
    assert parse_latex(text).name == "E"


@pytest.mark.parametrize(("text", "expected"), BARE)
def test_bare_right_hand_sides(text, expected):
    parsed = parse_latex(text)
    assert parsed.name is None
    assert parsed.expr == expected


def test_softmax_spellings_agree():
    expected = softmax(z, i, j)
    for spelling in (
        r"\mathrm{softmax}(z)_{ij}",
        r"\operatorname{softmax}(z)_{ij}",
        r"\operatorname{softmax}\left(z\right)_{ij}",
        r"softmax(z)_{i,j}",
    ):
        body = rf"\sum_{{i=1}}^{{n}}\sum_{{j=1}}^{{m}} t_{{ij}} \log {spelling}"
        assert parse_latex(body).expr == S(Sum(t[i, j] * log(expected), (j, 1, m)))


def test_atoms_are_the_registry_atoms():
    expr = parse_latex(r"\sum_{i=1}^{n} y_i t_i").expr
    (elements,) = {a.base for a in expr.atoms(sp.Indexed) if a.base.label.name == "y"}
    assert elements == array("y")
    assert expr.free_symbols == {y.label, t.label, n, y[i], t[i]}
    assert parse_latex(r"\delta").expr == sp.Symbol("delta")  # no assumptions
    assert parse_latex(r"y_i").expr == sp.Symbol("y_i")  # not bound by a sum: a plain symbol


# -- SymPy's own latex() output reads back to the same expression ------------------------
ROUND_TRIP = [
    -S(t[i] * log(y[i]) + (1 - t[i]) * log(1 - y[i])) / n,
    S((y[k] - t[k]) ** 2, k) / 2,
    -S(Sum(t[i, j] * log(softmax(z, i, j)), (j, 1, m))) / n,
    S(Max(0, 1 - t[i] * y[i])) / n,
    S(Abs(y[i] - t[i])) / n,
    S(log(cosh(y[i] - t[i]))) / n,
    S(exp(y[i]) - t[i] * y[i]) / n,
    S(delta**2 * (sqrt(1 + ((y[i] - t[i]) / delta) ** 2) - 1)) / n,
    S(sigmoid(z[i])),
    S(Piecewise(((y[i] - t[i]) ** 2 / 2, Abs(y[i] - t[i]) <= delta), (delta, True))) / n,
    S(log(y[i], 10)),
    S(Min(y[i], t[i]) ** 2 * sp.tanh(z[i])),
]


@pytest.mark.parametrize("expr", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_sympy_latex_round_trip(expr):
    assert parse_latex(sp.latex(expr)).expr == expr


# -- formulas from papers and courses ---------------------------------------------------
ERR = y[i] - t[i]
PAPERS = [
    (r"\mathrm{MSE} = \frac{1}{n}\sum_{i=1}^{n}(y_i - t_i)^2", S(ERR**2) / n, "MSE"),
    (r"L = \frac{1}{n}\sum_{i=1}^{n}|y_i - t_i|", S(Abs(ERR)) / n, "L"),
    (r"\sqrt{\frac{1}{n}\sum_{i=1}^{n}(y_i-t_i)^2}", sqrt(S(ERR**2) / n), None),
    (
        r"\mathcal{L} = \frac{1}{n}\sum_{i=1}^{n}\begin{cases}\frac{1}{2}(y_i-t_i)^2 & \text{if } "
        r"|y_i-t_i| \le \delta \\ \delta(|y_i-t_i| - \frac{1}{2}\delta) & \text{otherwise}\end{cases}",
        S(Piecewise((ERR**2 / 2, Abs(ERR) <= delta), (delta * (Abs(ERR) - delta / 2), True))) / n,
        "L",
    ),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\left(\frac{1}{2}\min(|y_i-t_i|, \delta)^2"
        r" + \delta\max(|y_i-t_i|-\delta, 0)\right)",
        S(Min(Abs(ERR), delta) ** 2 / 2 + delta * Max(Abs(ERR) - delta, 0)) / n,
        None,
    ),
    (
        r"L(y,t) = \frac{1}{n}\sum_{i=1}^{n}\begin{cases} 0.5 (y_i-t_i)^2, & |y_i - t_i| < 1 \\"
        r" |y_i-t_i| - 0.5, & \text{otherwise} \end{cases}",
        S(Piecewise((ERR**2 / 2, Abs(ERR) < 1), (Abs(ERR) - Rational(1, 2), True))) / n,
        "L",
    ),
    (r"\frac{1}{n}\sum_{i=1}^{n}\max(0, 1 - t_i y_i)", S(Max(0, 1 - t[i] * y[i])) / n, None),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\max(0, 1 - t_i \cdot y_i)^2",
        S(Max(0, 1 - t[i] * y[i]) ** 2) / n,
        None,
    ),
    (r"\frac{1}{n}\sum_{i=1}^{n}\log(\cosh(y_i - t_i))", S(log(cosh(ERR))) / n, None),
    (r"\frac{1}{n}\sum_{i=1}^{n}(e^{y_i} - t_i y_i)", S(exp(y[i]) - t[i] * y[i]) / n, None),
    (r"\frac{1}{n}\sum_{i=1}^{n}(y_i - t_i\log y_i)", S(y[i] - t[i] * log(y[i])) / n, None),
    (r"D_{KL} = \sum_{i=1}^{n} t_i\log\frac{t_i}{y_i}", S(t[i] * log(t[i] / y[i])), "D_KL"),
    (r"\sum_{i=1}^{n} t_i \log(t_i / y_i)", S(t[i] * log(t[i] / y[i])), None),
    (
        r"FL = -\frac{1}{n}\sum_{i=1}^{n}(1-y_i)^{\gamma}\log y_i",
        -S((1 - y[i]) ** gamma * log(y[i])) / n,
        "FL",
    ),
    (
        r"-\frac{1}{n}\sum_{i=1}^{n}\alpha\,(1-y_i)^\gamma\,\log(y_i)",
        -S(alpha * (1 - y[i]) ** gamma * log(y[i])) / n,
        None,
    ),
    (
        r"-\frac{1}{n}\sum_{i=1}^{n}[t_i\log\sigma(z_i) + (1-t_i)\log(1-\sigma(z_i))]",
        -S(t[i] * log(sigmoid(z[i])) + (1 - t[i]) * log(1 - sigmoid(z[i]))) / n,
        None,
    ),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\max(\tau(t_i - y_i), (\tau - 1)(t_i - y_i))",
        S(Max(tau * (t[i] - y[i]), (tau - 1) * (t[i] - y[i]))) / n,
        None,
    ),
    (r"\frac{1}{n}\sum_{i=1}^{n}\exp(-t_i y_i)", S(exp(-t[i] * y[i])) / n, None),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\ln\left(1 + e^{-t_i y_i}\right)",
        S(log(1 + exp(-t[i] * y[i]))) / n,
        None,
    ),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\left(\log(1+y_i) - \log(1+t_i)\right)^2",
        S((log(1 + y[i]) - log(1 + t[i])) ** 2) / n,
        None,
    ),
    (
        r"\frac{100}{n}\sum_{i=1}^{n}\left|\frac{t_i - y_i}{t_i}\right|",
        100 * S(Abs((t[i] - y[i]) / t[i])) / n,
        None,
    ),
    (
        r"\frac{1}{n}\sum_{i=1}^{n}\left(-t_i\frac{y_i^{1-\rho}}{1-\rho} + \frac{y_i^{2-\rho}}{2-\rho}\right)",
        S(-t[i] * y[i] ** (1 - rho) / (1 - rho) + y[i] ** (2 - rho) / (2 - rho)) / n,
        None,
    ),
    (
        r"-\frac{1}{n}\sum_{i=1}^{n} w_i\left[t_i \ln y_i + (1 - t_i)\ln(1-y_i)\right]",
        -S(w[i] * (t[i] * log(y[i]) + (1 - t[i]) * log(1 - y[i]))) / n,
        None,
    ),
    (
        r"E = \frac{1}{2}\sum_{k=1}^{n}(y_k-t_k)^2 + \frac{\lambda}{2}\sum_{j=1}^{m} w_j^2",
        S((y[k] - t[k]) ** 2, k) / 2 + lam / 2 * S(w[j] ** 2, j, m),
        "E",
    ),
    (
        r"1 - \frac{2\sum_{i=1}^{n} y_i t_i}{\sum_{i=1}^{n} y_i + \sum_{i=1}^{n} t_i}",
        1 - 2 * S(y[i] * t[i]) / (S(y[i]) + S(t[i])),
        None,
    ),
    (
        r"-\frac{1}{n}\sum_{i=1}^{n}\sum_{j=1}^{m} t_{i,j}\log\mathrm{softmax}(z)_{ij}",
        -S(Sum(t[i, j] * log(softmax(z, i, j)), (j, 1, m))) / n,
        None,
    ),
    (r"\frac{1}{n} \sum\limits_{i=1}^{n} (y_i - t_i) \times (y_i - t_i)", S(ERR * ERR) / n, None),
    (r"\frac{1}{n}\sum_{i=1}^{n} \frac{(y_i - t_i)^2}{t_i}", S(ERR**2 / t[i]) / n, None),
    (r"\frac1n\sum_{i=1}^n (y_i - t_i)^2", S(ERR**2) / n, None),
    (r"\frac{1}{n}\sum_{i=1}^{n} \dfrac{1}{1 + e^{-z_i}}", S(1 / (1 + exp(-z[i]))) / n, None),
]


@pytest.mark.parametrize(("text", "expected", "name"), PAPERS)
def test_formulas_from_papers(text, expected, name):
    check(text, expected, name)


def test_pred_target_logits_options():
    text = r"-\sum_{i=1}^{n}\sum_{j=1}^{m} y_{ij}\log\hat{y}_{ij}"
    expected = -S(Sum(t[i, j] * log(y[i, j]), (j, 1, m)))
    check(text, expected, pred=r"\hat{y}", target="y")
    check(text.replace(r"\hat{y}", r"\hat y"), expected, pred=r"\hat y", target="y")
    check(r"\sum_{i=1}^{n}(p_i - q_i)^2", S((y[i] - t[i]) ** 2), pred="p", target="q")
    with pytest.raises(ParseError, match="ambiguous"):  # t is the target's array name
        parse_latex(r"\sum_{i=1}^{n} t_i \hat{y}_i", pred=r"\hat{y}", target="y")
    for bad in ({"pred": "y", "target": "y"}, {"pred": "{"}, {"logits": "ab"}, {"target": 3}):
        with pytest.raises(ParseError, match="array name") as info:
            parse_latex("x", **bad)
        assert info.value.text == "x"


# -- logarithms ---------------------------------------------------------------------------
def test_log_is_natural_by_default():
    x = sp.Symbol("x")
    for text in (
        r"\log x",
        r"\log(x)",
        r"\ln x",
        r"log\,x",
        "log(x)",
        r"\log{\left(x \right)}",
        r"\operatorname{log}(x)",
        r"\mathrm{ln}(x)",
    ):
        assert parse_latex(text).expr == log(x), text


def test_log_base_option_and_explicit_bases():
    x = sp.Symbol("x")
    assert same(parse_latex(r"\log x", log_base=10).expr, log(x, 10))
    assert same(parse_latex(r"\log(x)", log_base=2).expr, log(x, 2))
    assert same(parse_latex(r"log\,x", log_base=10).expr, log(x, 10))
    assert parse_latex(r"\ln x", log_base=10).expr == log(x)  # \ln is always natural
    assert same(parse_latex(r"\log_2 x").expr, log(x, 2))
    assert same(parse_latex(r"\log_{2}(x)", log_base=10).expr, log(x, 2))
    assert same(parse_latex(r"\log_{10} x").expr, log(x, 10))
    assert parse_latex(r"\log_e x").expr == log(x)
    with pytest.raises(ParseError):
        parse_latex("x", log_base="10")


def test_numbers_stay_exact():
    assert parse_latex(r"\frac{1}{2}").expr == Rational(1, 2)
    assert parse_latex("0.25").expr == Rational(1, 4)
    assert parse_latex(r"2\frac{1}{2}").expr == 1  # a product, never a mixed fraction
    assert parse_latex(r"\max(0,1)").expr == 1  # "0,1" is not a decimal number
    assert parse_latex(r"3 \cdot 10^{2}").expr == 300


def test_normalisation_of_spacing_and_wrappers():
    x, a = sp.symbols("x a")
    assert parse_latex(r"\left( x \right) \, \cdot \; \left[ a \right] \quad").expr == x * a
    assert parse_latex(r"{x}^{2} \times \! {a}").expr == x**2 * a
    assert parse_latex(r"\bigl( x \bigr)^2").expr == x**2
    assert parse_latex(r"x^2_i").expr == sp.Symbol("x_i") ** 2
    assert parse_latex(r"\mathbf{x} \cdot \boldsymbol{a}").expr == x * a
    assert parse_latex("e").expr == sp.E and parse_latex(r"\mathrm{e}^{x}").expr == exp(x)
    assert parse_latex(r"--x").expr == x and parse_latex(r"-+-x").expr == x


def test_left_hand_sides():
    assert parse_latex("E = x").name == "E"
    assert parse_latex(r"\mathcal{L} = x").name == "L"
    assert parse_latex(r"L(y,t) = x").name == "L"
    assert parse_latex(r"L(\hat{y}, y) = x").name == "L"
    assert parse_latex(r"L_{\text{MSE}} = x").name == "L_MSE"
    assert parse_latex(r"\ell = x").name == "ell"
    assert parse_latex("x").name is None


# -- errors ---------------------------------------------------------------------------------
ERRORS = [
    ("", 0, "empty"),
    ("  ", 0, "empty"),
    (r"\frac{1}", 8, "argument is missing"),
    (r"\frac{1}{2", 8, "unclosed"),
    (r"{y_i", 0, "unclosed '{'"),
    (r"y_i}", 3, "'}'"),
    (r"(a+b", 0, "unclosed '('"),
    (r"\foo(y_i)", 0, r"unknown function \foo"),
    (r"\operatorname{bar}(y_i)", 0, r"unknown function \operatorname{bar}"),
    (r"E = \frac{1}{n}\sum_{i=1}^{n} \foo(y_i)", 30, r"unknown function \foo"),
    (r"E = F = x", 6, "more than one '='"),
    (r"a +", 2, "malformed"),
    (r"\sum^{n} y_i", 0, "index"),  # \sum_{i=1} alone runs over all samples (issue 15)
    (r"\max(x)", 4, "two or more"),
    (r"(a, b)", 2, "','"),
    (r"y_{i+1}", 4, "subscript"),
    (r"x!", 1, "'!'"),
    (r"\left| x", 0, "unclosed '|'"),
    (r"\begin{matrix}x\end{matrix}", 13, "environment"),
    ("x²", 1, "unexpected"),
    (r"\frac{1}{0}", 0, "divides by zero"),
    (r"2^{10^{10^{10}}}", 3, "too large"),
    (r"\log_1 x", 0, "base 0 or 1"),
    (r"\ln(1 - 1)", 0, "logarithm of zero"),
    (r"softmax(z, i)", 0, "softmax(z)_{ij}"),
    (r"\sum_{\substack{1 \leq j}} y_j", 23, "substack"),
]


@pytest.mark.parametrize(("text", "position", "reason"), ERRORS)
def test_errors_have_positions_and_reasons(text, position, reason):
    with pytest.raises(ParseError) as info:
        parse_latex(text)
    assert info.value.position == position
    assert reason in info.value.reason
    assert "\n" not in info.value.reason
    assert info.value.caret().endswith("^")


def test_size_limits():
    with pytest.raises(ParseError, match="longer than") as info:
        parse_latex("x" * (MAX_LENGTH + 1))
    assert info.value.position == MAX_LENGTH
    with pytest.raises(ParseError, match="digits") as info:
        parse_latex("x + " + "9" * (MAX_DIGITS + 1))
    assert info.value.position == 4
    parse_latex("9" * MAX_DIGITS)
    deep = "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ParseError, match="nested") as info:
        parse_latex(deep)
    assert info.value.position == MAX_DEPTH
    assert parse_latex("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH).expr == sp.Symbol("x")
    for text in (
        r"\left|1-" * 60 + "x" + r"\right|" * 60,
        r"e^{1+" * 90 + "x" + "}" * 90,
        r"\max(0, 1-" * 60 + "x" + ")" * 60,
        r"\log " * 300 + "x",
        "-" * 5000 + "x",
    ):
        try:
            parse_latex(text)
        except ParseError:
            pass


def test_non_string_input():
    with pytest.raises(ParseError):
        parse_latex(None)
    with pytest.raises(ParseError):
        parse_latex(b"x")


def test_python_code_is_never_executed(tmp_path, monkeypatch):
    import latex2sympy2_extended.latex2sympy2 as engine
    import sympy.parsing.sympy_parser as sympy_parser

    def forbidden(*args, **kwargs):
        raise AssertionError("parse_expr must not be called")

    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    monkeypatch.setattr(engine, "parse_expr", forbidden)
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    for text in (
        payload,
        rf"\{payload}",
        rf"y_{{{payload}}}",
        rf"\operatorname{{{payload}}}(x)",
        rf"\sum_{{i=1}}^{{n}} y_{{{payload}}}",
        rf"\mathrm{{eval}}({payload})",
        r"\__import__",
        r"\text{__import__('os')}",
    ):
        with pytest.raises(ParseError):
            parse_latex(text)
    assert not marker.exists()
    assert parse_latex(ARTICLE[0][0]).expr == ARTICLE[0][1]  # still works without parse_expr


# -- robustness: only ParseError, whatever the input ---------------------------------------
VALID = [text for text, *_ in ARTICLE + STANDARD + BARE + PAPERS]
FRAGMENTS = list("\\{}()[]_^+-*/=,|&.!' 0123456789abcdeijklmntxyz") + [
    r"\frac",
    r"\sum",
    r"\left(",
    r"\right)",
    r"\left|",
    r"\right|",
    r"\log",
    r"log",
    r"\ln",
    r"\sigma",
    r"\delta",
    r"\begin{cases}",
    r"\end{cases}",
    r"\\",
    r"\max",
    r"\sqrt",
    r"\exp",
    r"\mathrm{softmax}",
    r"\operatorname{",
    r"\text{if}",
    r"e^",
    r"_{ij}",
    r"_i",
    r"\cdot",
    r"\le",
    r"\hat{y}",
    r"\mathcal{L}",
    "\\,",
    r"\infty",
    r"\substack{",
    r"{y}_{i}",
]


def assert_only_parse_error(text):
    try:
        parsed = parse_latex(text)
    except ParseError as exc:
        assert 0 <= exc.position <= len(text)
        assert not exc.reason.startswith("internal error"), (text, exc.reason, exc.__cause__)
    else:
        assert isinstance(parsed.expr, sp.Expr)


def mutate(data, text):
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(chars)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(st.sampled_from(FRAGMENTS))
        if action == "insert" or where == len(chars):
            chars.insert(where, piece)
        elif action == "delete":
            del chars[where]
        else:
            chars[where] = piece
    return "".join(chars)


FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.text(max_size=80))
def test_random_text_raises_only_parse_error(text):
    assert_only_parse_error(text)


@FAST
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_random_latex_fragments_raise_only_parse_error(text):
    assert_only_parse_error(text)


@FAST
@given(st.data())
def test_mutated_formulas_raise_only_parse_error(data):
    assert_only_parse_error(mutate(data, data.draw(st.sampled_from(VALID))))


@pytest.mark.slow
@SLOW
@given(st.data())
def test_mutated_formulas_raise_only_parse_error_many(data):
    text = data.draw(
        st.one_of(
            st.sampled_from(VALID).map(lambda v: mutate(data, v)),
            st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join),
            st.text(max_size=200),
        )
    )
    assert_only_parse_error(text)


@pytest.mark.slow
def test_long_input_is_cut_by_the_time_budget():
    terms = []
    while len(" + ".join(terms)) < MAX_LENGTH - 40:
        terms.append(rf"a_{{{len(terms) % 10}}} \log x")
    start = time.monotonic()
    try:
        parse_latex(" + ".join(terms))
    except ParseError as exc:
        assert "in time" in exc.reason
    assert time.monotonic() - start < TIME_BUDGET + 5

"""Printers: the source article's notation, standard LaTeX, and plain text.

Both LaTeX printers subclass SymPy's :class:`~sympy.printing.latex.LatexPrinter` and
override only the ``_print_<Class>`` methods where their habits differ.
"""

from __future__ import annotations

from contextlib import contextmanager

import sympy as sp
from sympy import Add, Indexed, Mul, Pow, Sum
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pretty.pretty import PrettyPrinter
from sympy.printing.pretty.pretty_symbology import pretty_symbol, pretty_use_unicode
from sympy.printing.pretty.stringpict import prettyForm

STYLES = ("article", "standard")


def _positive_first(terms: list[sp.Expr]) -> list[sp.Expr]:
    """Stable reordering that puts terms without a leading minus first.

    An authored (unevaluated) sum such as ``t log y + (1 - t) log(1 - y)`` keeps
    its order, and a derived ``-t + y`` reads ``y - t``.
    """
    return sorted(terms, key=lambda term: term.could_extract_minus_sign())


def _index_string(indices, printer) -> str:
    return "".join(printer._print(i) for i in indices)


class StandardLatexPrinter(LatexPrinter):
    r"""Conventional LaTeX: ``\log``, ``\frac{1}{n}`` in front of the sum, authored order.

    The output is accepted by KaTeX and by pdflatex with amsmath.
    """

    printmethod = "_symloss_latex"

    def __init__(self, settings=None):
        super().__init__({"order": "none", **(settings or {})})

    def _as_ordered_terms(self, expr, order=None):
        return _positive_first(list(expr.args))

    def _print_Basic(self, expr):
        # ``printmethod`` is ours, so the ``_latex`` hooks SymPy's own atoms carry
        # (pi, oo, I, EulerGamma) are not found by name; use them before the fallback.
        if expr.is_Atom and hasattr(expr, "_latex"):
            return expr._latex(self)
        return super()._print_Basic(expr)

    def _print_Indexed(self, expr):
        return f"{self._label(expr)}_{{{_index_string(expr.indices, self)}}}"

    def _label(self, expr) -> str:
        # A multi-letter array name (Gaussian NLL's variance input, var) is upright,
        # so it reads as one name and parses back as one array.
        name = str(expr.base.label)
        if len(name) > 1 and name.isalpha() and not self._print(expr.base.label).startswith("\\"):
            return rf"\mathrm{{{name}}}"
        if "_" in name:  # a subscripted name (p_t, the focal loss's): braced, then indexed
            return f"{{{self._print(expr.base.label)}}}"
        return self._print(expr.base.label)

    def _print_Derivative(self, expr):
        # Always partial, with the function in the numerator: \frac{\partial E}{\partial y_{i}}.
        order = sum(c for _, c in expr.variable_count)
        top = r"\partial" if order == 1 else rf"\partial^{{{order}}}"
        bottom = " ".join(
            rf"\partial {self._print(v)}" + (f"^{{{c}}}" if c > 1 else "")
            for v, c in expr.variable_count
        )
        return rf"\frac{{{top} {self._print(expr.expr)}}}{{{bottom}}}"

    def _print_sigmoid(self, expr, exp=None):
        tex = rf"\sigma\left({self._print(expr.args[0])}\right)"
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_softplus(self, expr, exp=None):
        tex = rf"\operatorname{{softplus}}\left({self._print(expr.args[0])}\right)"
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_softmax(self, expr, exp=None):
        base, r, c = expr.args
        sub = _index_string((r, c), self)
        tex = rf"\operatorname{{softmax}}\left({self._print(base.label)}\right)_{{{sub}}}"
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_logsumexp(self, expr, exp=None):
        base, r = expr.args
        label = self._print(base.label)
        tex = rf"\operatorname{{logsumexp}}\left({label}\right)_{{{self._print(r)}}}"
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_where_nonneg(self, expr, exp=None):
        # The kernels' select (symloss.numeric.ops), matched by name: this layer sits
        # below numeric.  As a case split, narrower than a three-argument function.
        x, a, b = (self._print(e) for e in expr.args)
        tex = rf"\begin{{cases}} {a} & {x} \ge 0 \\{b} & {x} < 0 \end{{cases}}"
        return rf"\left({tex}\right)^{{{exp}}}" if exp else tex

    def _print_Mul(self, expr):
        sums = [f for f in expr.args if isinstance(f, Sum)]
        if len(sums) != 1:
            return super()._print_Mul(expr)
        coeff = Mul(*[f for f in expr.args if f is not sums[0]])
        if coeff.has(Indexed, Sum):
            # A ratio of row sums (the cosine, Dice) is a fraction, not a factor in
            # front of a sum: \frac{\sum_k y_{ik} t_{ik}}{...}.
            return super()._print_Mul(expr)
        sign = ""
        if coeff.could_extract_minus_sign():
            sign, coeff = "-", -coeff
        num, den = coeff.as_numer_denom()
        if den == 1:
            front = "" if num == 1 else self.parenthesize(num, PRECEDENCE["Mul"]) + " "
        else:
            front = rf"\frac{{{self._print(num)}}}{{{self._print(den)}}}"
        return f"{sign}{front}{self._print(sums[0])}"

    def _needs_mul_brackets(self, expr, first=False, last=False) -> bool:
        # A power delimits its base itself (\sqrt{...}, \left(...\right)^{2}), so a sum
        # inside it cannot run on into the next factor: no extra parentheses.
        if isinstance(expr, Pow) and expr.exp.is_Rational and expr.exp.is_positive:
            last = True
        return super()._needs_mul_brackets(expr, first=first, last=last)

    def _print_Sum(self, expr):
        tex = ""
        for var, lo, hi in reversed(expr.limits):  # outermost first
            tex += self._sum_sign(var, lo, hi)
        return tex + self._summand(expr.function)

    def _sum_sign(self, var, lo, hi) -> str:
        return rf"\sum_{{{self._print(var)}={self._print(lo)}}}^{{{self._print(hi)}}}"

    def _summand(self, f) -> str:
        if isinstance(f, Add):
            return rf"\left({self._print(f)}\right)"
        return " " + self._print(f)


class ArticleLatexPrinter(StandardLatexPrinter):
    r"""The source article's habits (9cubed, 2019).

    Bare ``log`` (no backslash) with ``\,`` around it, ``\,`` between factors,
    plain parentheses, each summand wrapped in braces and parentheses, and a
    single-character subscript written without braces (``t_i`` but ``t_{ij}``).
    """

    def __init__(self, settings=None):
        super().__init__({"mul_symbol": r"\,", **(settings or {})})

    def _add_parens(self, s) -> str:
        return f"({s})"

    def _add_parens_lspace(self, s) -> str:
        return f"({s})"

    def _print_Indexed(self, expr):
        sub = _index_string(expr.indices, self)
        label = self._label(expr)
        return f"{label}_{sub}" if len(sub) == 1 else f"{label}_{{{sub}}}"

    def _print_log(self, expr, exp=None):
        arg = expr.args[0]
        if arg.is_Atom or isinstance(arg, Indexed):
            tex = rf"log\,{self._print(arg)}"
        else:
            tex = f"log({self._print(arg)})"
        return f"({tex})^{{{exp}}}" if exp else tex

    def _print_Pow(self, expr):
        base, e = expr.args
        if e.is_Integer and 1 < e < 10:
            return f"{self.parenthesize(base, PRECEDENCE['Pow'])}^{e}"
        return super()._print_Pow(expr)

    def doprint(self, expr):
        # SymPy hard-codes \left( ... \right) in places; the article never sizes them.
        return super().doprint(expr).replace(r"\left(", "(").replace(r"\right)", ")")

    def _print_Sum(self, expr):
        tex = self._summand(expr.function)
        for pos, (var, lo, hi) in enumerate(expr.limits):  # innermost first
            tex = self._sum_sign(var, lo, hi) + tex
            if pos < len(expr.limits) - 1:
                tex = f"{{{tex}}}"
        return tex

    def _sum_sign(self, var, lo, hi) -> str:
        return rf"\sum_{{{self._print(var)}\,=\,{self._print(lo)}}}^{{{self._print(hi)}}}"

    def _summand(self, f) -> str:
        if isinstance(f, Sum | Pow):
            return f"{{{self._print(f)}}}"
        return f"{{({self._print(f)})}}"


_PRINTERS = {"article": ArticleLatexPrinter, "standard": StandardLatexPrinter}


def latex_expr(expr: sp.Basic, style: str = "standard") -> str:
    """LaTeX for *expr* in the given style (``"article"`` or ``"standard"``)."""
    try:
        printer = _PRINTERS[style]
    except KeyError:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}") from None
    return printer().doprint(expr)


_SUBSCRIPTS = dict(zip("aehijklmnoprstuvx0123456789", "ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ₀₁₂₃₄₅₆₇₈₉"))


@contextmanager
def _unicode_mode(flag: bool):
    # SymPy's pretty printer falls back to a global flag when use_unicode is False.
    previous = pretty_use_unicode(flag)
    try:
        yield
    finally:
        pretty_use_unicode(previous)


class TextPrinter(PrettyPrinter):
    """SymPy's pretty printer, with subscripts for indexed elements and named activations.

    With ``use_unicode=False`` the output is plain ASCII (``y_i``, ``dE/dy_i``,
    ``sigmoid(z_i)``), for terminals where box-drawing characters of ambiguous East-Asian
    width misalign (CJK locales).
    """

    def __init__(self, settings=None):
        super().__init__({"order": "none", **(settings or {})})

    @property
    def _unicode(self) -> bool:
        return bool(self._settings["use_unicode"])

    def _print_Add(self, expr, order=None):
        return super()._print_Add(Add(*_positive_first(list(expr.args)), evaluate=False))

    def _print_Indexed(self, expr):
        sub = "".join(str(i) for i in expr.indices)
        label = str(expr.base.label)
        if self._unicode:  # Greek and subscripted names as symbols: ℓᵢ, (pₜ)ᵢ
            label = f"({pretty_symbol(label)})" if "_" in label else pretty_symbol(label)
            label = {"ell": "ℓ"}.get(label, label)  # SymPy's pretty_symbol leaves it
        if not self._unicode:
            if all(len(str(i)) == 1 for i in expr.indices):
                return prettyForm(f"{label}_{sub}")
            return prettyForm(f"{label}[{','.join(str(i) for i in expr.indices)}]")
        if all(c in _SUBSCRIPTS for c in sub):
            return prettyForm(label + "".join(_SUBSCRIPTS[c] for c in sub))
        return prettyForm(f"{label}[{','.join(str(i) for i in expr.indices)}]")

    def _print_Derivative(self, expr):
        order = sum(c for _, c in expr.variable_count)
        d = "\u2202" if self._unicode else "d"

        def power(k):
            if k == 1:
                return ""
            return "\u00b2\u00b3\u2074"[k - 2] if self._unicode else f"^{k}"

        parts = []
        for v, c in expr.variable_count:
            parts.append(d + self._print(v).render(wrap_line=False) + power(c))
        sep = "" if self._unicode else " "
        return prettyForm(
            f"{d}{power(order)}{self._print(expr.expr).render(wrap_line=False)}/{sep.join(parts)}"
        )

    def _named(self, name, arg, sub=""):
        inner = self._print(arg)
        form = prettyForm(*inner.parens())
        form = prettyForm(*form.left(name))
        if sub:
            if self._unicode:
                form = prettyForm(*form.right("".join(_SUBSCRIPTS.get(c, c) for c in sub)))
            else:
                form = prettyForm(*form.right("_" + sub))
        return form

    def _print_sigmoid(self, expr):
        return self._named("\u03c3" if self._unicode else "sigmoid", expr.args[0])

    def _print_softplus(self, expr):
        return self._named("softplus", expr.args[0])

    def _print_softmax(self, expr):
        base, r, c = expr.args
        return self._named("softmax", base.label, f"{r}{c}")

    def _print_logsumexp(self, expr):
        base, r = expr.args
        return self._named("logsumexp", base.label, str(r))


def render(form: prettyForm, use_unicode: bool = True, num_columns: int | None = None) -> str:
    """A text form as a string: unwrapped, or wrapped to *num_columns* (SymPy's wrapping,
    which marks each cut)."""
    if not num_columns:
        return form.render(wrap_line=False)
    with _unicode_mode(use_unicode):
        text = form.render(wrap_line=True, num_columns=num_columns, use_unicode=use_unicode)
    return "\n".join(line.rstrip() for line in text.splitlines())


def pretty(expr: sp.Basic, use_unicode: bool = True, num_columns: int | None = None) -> str:
    """Text rendering of *expr*: Unicode (default) or ASCII, unwrapped unless *num_columns*."""
    printer = TextPrinter({"use_unicode": use_unicode, "wrap_line": False})
    with _unicode_mode(use_unicode):
        form = printer._print(expr)
    return render(form, use_unicode, num_columns)


def pretty_equation(
    lhs: sp.Basic, rhs: sp.Basic, use_unicode: bool = True, num_columns: int | None = None
) -> str:
    """``lhs = rhs`` as text (``symloss show``'s formulas): Unicode or ASCII, unwrapped
    unless *num_columns* is given."""
    printer = TextPrinter({"use_unicode": use_unicode, "wrap_line": False})
    with _unicode_mode(use_unicode):
        form = prettyForm(*printer._print(lhs).right(" = "))
        form = prettyForm(*form.right(printer._print(rhs)))
    return render(form, use_unicode, num_columns)


class LinearPrinter(sp.printing.str.StrPrinter):
    """One-line text, as a table's column header: ``t_i log(y_i)``, ``(y_k - t_k)^2``."""

    printmethod = "_symloss_linear"

    def _print_Indexed(self, expr):
        return f"{expr.base.label}_{''.join(str(i) for i in expr.indices)}"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Piecewise(self, expr):
        cases = []
        for value, cond in expr.args:
            if cond is sp.true:
                cases.append(f"{self._print(value)} otherwise")
            else:
                cases.append(f"{self._print(value)} if {self._print(cond)}")
        return "{" + "; ".join(cases) + "}"

    def _print_Mul(self, expr):
        return super()._print_Mul(expr).replace("*", " ")

    def _print_Pow(self, expr, rational=False):
        return super()._print_Pow(expr, rational).replace("**", "^")

    def _print_sigmoid(self, expr):
        return f"sigmoid({self._print(expr.args[0])})"

    def _print_softmax(self, expr):
        base, r, c = expr.args
        return f"softmax({base.label})_{r}{c}"


def linear(expr: sp.Basic) -> str:
    """*expr* on one line (a table's header)."""
    return LinearPrinter({"order": "none"}).doprint(expr)

r"""One step of a derivation, and how a step prints.

A :class:`Step` is an equation ``lhs = rhs[0] = rhs[1] = ...`` between SymPy
expressions, with a title, a note, the constraint it uses and, where the loss's family
names quantities (:mod:`symloss.symbolic.naming`), the forms in those names and their
"where" block.  :func:`same_form` and :func:`without_repeats` keep a derivation from
showing a form twice.  :mod:`symloss.symbolic.derivation` builds the steps.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp
from sympy import Sum, Symbol

from symloss.printing.breaking import aligned as aligned_body
from symloss.printing.breaking import broken
from symloss.printing.printers import (
    _PRINTERS,
    STYLES,
    TextPrinter,
    _unicode_mode,
    latex_expr,
    render,
)
from symloss.symbolic.calculus import Constraint
from symloss.symbolic.naming import Where

#: The symbol of the loss value on the left of every step.
E = Symbol("E")


@dataclass(frozen=True)
class Step:
    r"""One step of a derivation: ``lhs = rhs[0] = rhs[1] = ...``.

    Parameters
    ----------
    title : str
        What the step does, e.g. ``"Chain rule"``.
    lhs : sympy.Expr
        The left-hand side, usually a ``Derivative``.
    rhs : tuple of sympy.Expr
        Equal forms of the right-hand side, from the first to the simplest.
    constraint : Constraint, optional
        The fact about the data that this step relies on.
    used_as : sympy.Eq, optional
        The constraint as this step uses it, with this step's index letters
        (e.g. :math:`\sum_{k=1}^{m} t_{ik} = 1`).
    note : str
        One sentence, in words, of why the step holds.
    brackets : bool
        Print each Kronecker delta as an Iverson bracket, :math:`[k = i]`, because the
        loss has a symbol of its own called :math:`\delta` (Huber's threshold).
    named : tuple of sympy.Expr
        The forms of ``rhs`` written with the family's named quantities, as printed
        (empty: printed as ``rhs``).  ``rhs`` stays the expanded truth.
    where : tuple of (name, definition)
        The definitions the named forms use, printed after the equation as a
        "where" block.
    """

    title: str
    lhs: sp.Expr
    rhs: tuple[sp.Expr, ...]
    constraint: Constraint | None = None
    used_as: sp.Eq | None = None
    note: str = ""
    brackets: bool = False
    named: tuple[sp.Expr, ...] = ()
    where: Where = ()

    @property
    def shown(self) -> tuple[sp.Expr, ...]:
        """The forms as printed: ``named`` if the step has names, else ``rhs``."""
        return self.named or self.rhs

    @property
    def equation(self) -> sp.Eq:
        """``Eq(lhs, rhs[-1])``: what the step establishes."""
        return sp.Eq(self.lhs, self.rhs[-1], evaluate=False)

    def latex(self, style: str = "standard", aligned: bool = False) -> str:
        r"""The step as LaTeX, in the article's or the standard notation.

        With ``aligned=True`` each form goes on its own line, as the body of an
        ``aligned`` (or ``align*``) environment: ``lhs &= a \\ &= b``.
        """
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
        left = self._latex(self.lhs, style)
        if aligned:
            # Each form on its own line, and a form wider than a column cut at its
            # top-level signs (symloss.printing.breaking).
            printer = self._printer(style)
            body = aligned_body(left, [broken(r, printer) for r in self.shown])
            if self.where:
                body += r" \\ &\text{where } " + self.where_latex(style)
            return body
        forms = [self._latex(r, style) for r in self.shown]
        text = " = ".join([left, *forms])
        if self.where:
            text += r", \quad \text{where } " + self.where_latex(style)
        return text

    def where_latex(self, style: str = "standard") -> str:
        r"""The "where" block as LaTeX: ``e_{i} = y_{i} - t_{i},\; ...`` (empty without names)."""
        return r",\; ".join(
            f"{self._latex(name, style)} = {self._latex(d, style)}" for name, d in self.where
        )

    def constraint_latex(self, style: str = "standard") -> str:
        """The constraint as used here, as LaTeX (empty when the step uses none)."""
        if self.used_as is None:
            return ""
        return f"{self._latex(self.used_as.lhs, style)} = {self._latex(self.used_as.rhs, style)}"

    def _latex(self, expr: sp.Basic, style: str) -> str:
        if not self.brackets:
            return latex_expr(expr, style)
        return self._printer(style).doprint(expr)

    def _printer(self, style: str):
        kind = _PRINTERS[style]
        return (bracket_printer(kind) if self.brackets else kind)()

    def pretty(self, use_unicode: bool = True, num_columns: int | None = None) -> str:
        """The step as text (title, equation, constraint), as a terminal shows it:
        Unicode or ASCII, unwrapped unless *num_columns* is given."""
        from sympy.printing.pretty.stringpict import prettyForm

        kind = bracket_printer(TextPrinter) if self.brackets else TextPrinter
        printer = kind({"use_unicode": use_unicode, "wrap_line": False})
        with _unicode_mode(use_unicode):
            form = printer._print(self.lhs)
            for r in self.shown:
                form = prettyForm(*form.right(" = "))
                form = prettyForm(*form.right(printer._print(r)))
            defs = []
            for name, d in self.where:
                line = prettyForm(*printer._print(name).right(" = "))
                defs.append(prettyForm(*line.right(printer._print(d))))
        lines = [self.title, render(form, use_unicode, num_columns)]
        for pos, d in enumerate(defs):
            lines.append(("where " if pos == 0 else "      ") + render(d, use_unicode, num_columns))
        if self.constraint is not None:
            lines.append(f"(uses {self.constraint.name}: {self.constraint.description})")
        return "\n".join(lines)


def _canonical(e: sp.Expr) -> sp.Expr:
    """*e* with the bound index of each sum renamed in order of appearance."""
    count = 0

    def rename(node):
        nonlocal count
        if isinstance(node, Sum):
            body, limits = rename(node.function), []
            for v, lo, hi in node.limits:
                count += 1
                new = Symbol(f"_bound{count}", integer=True)
                body = body.xreplace({v: new})
                limits.append((new, lo, hi))
            return Sum(body, *limits)
        if node.args:
            return node.func(*[rename(a) for a in node.args], evaluate=False)
        return node

    try:
        return rename(e)
    except Exception:  # a node that cannot be rebuilt unevaluated: compare as is
        return e


def same_form(a: sp.Expr, b: sp.Expr) -> bool:
    """Whether two forms are the same formula, up to the names of their bound indices."""
    if a == b or latex_expr(a) == latex_expr(b):
        return True
    return latex_expr(_canonical(a)) == latex_expr(_canonical(b))


def without_repeats(steps: list[Step], printed: bool = False) -> list[Step]:
    """*steps* without forms that only restate the form before them (Huber's "Simplify"
    after "Collapse the sum", a rename of a summation index): the later form is kept
    (it is the canonical one), and a step left with no new form is dropped.

    With *printed*, forms are compared as printed (``Step.shown``, in the named
    quantities): two forms that differ only in what the names hide read the same.
    The kernel's step is never merged into a derivative's.
    """

    def same(a: tuple, b: tuple) -> bool:
        return latex_expr(a[1]) == latex_expr(b[1]) if printed else same_form(a[0], b[0])

    out: list[Step] = []
    for step in steps:
        pairs: list[tuple] = []
        for pair in zip(step.rhs, step.shown):
            if pairs and same(pairs[-1], pair):
                pairs[-1] = pair
            else:
                pairs.append(pair)
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.lhs == step.lhs
            and same((prev.rhs[-1], prev.shown[-1]), pairs[0])
        ):
            out[-1] = _with_forms(prev, [*zip(prev.rhs, prev.shown)][:-1] + [pairs[0]])
            pairs.pop(0)
        if not pairs:
            continue
        out.append(_with_forms(step, pairs) if len(pairs) != len(step.rhs) else step)
    return out


def _with_forms(step: Step, pairs: list[tuple]) -> Step:
    """*step* with these ``(rhs, shown)`` forms."""
    rhs = tuple(a for a, _ in pairs)
    return replace(step, rhs=rhs, named=tuple(b for _, b in pairs) if step.named else ())


def bracket_printer(printer: type) -> type:
    """*printer* with Kronecker deltas written as Iverson brackets, ``[k = i]``."""

    class BracketPrinter(printer):
        def _print_KroneckerDelta(self, expr, exp=None):
            a, b = (self._print(x) for x in expr.args)
            if isinstance(a, str):  # LaTeX
                tex = rf"\left[{a} = {b}\right]"
                return f"{tex}^{{{exp}}}" if exp else tex
            from sympy.printing.pretty.stringpict import prettyForm

            return prettyForm(f"[{a.render(wrap_line=False)} = {b.render(wrap_line=False)}]")

    return BracketPrinter

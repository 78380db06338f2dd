r"""Long equations broken across lines, for pdflatex's ``align*`` and KaTeX's ``aligned``.

A form wider than a column is cut at its top-level ``+`` and ``-`` signs.  A product
whose wide factor is a sum (``\frac{1}{n}(a + b + c)``, a quotient with a sum on top, a
``\sum`` of a sum) keeps the rest in front and the sum's terms in ``\Bigl( ... \Bigr)``,
which, unlike ``\left( ... \right)``, may span lines.  Widths are estimated by the
text printer's layout (columns of the two-dimensional form), which tracks the typeset
width closely enough to choose the cuts.
"""

from __future__ import annotations

import sympy as sp
from sympy import Add, Mul, Sum
from sympy.printing.precedence import PRECEDENCE

from symloss.printing.printers import TextPrinter, _positive_first

#: Columns of the text form that fit one line of a page (a 16.6 cm handout column at
#: 11 pt, or the site's 928 px column).
WIDTH = 56


def text_width(expr: sp.Basic) -> int:
    """Columns of *expr*'s two-dimensional text form (its widest line)."""
    printer = TextPrinter({"use_unicode": True, "wrap_line": False})
    return max(len(line) for line in printer._print(expr).render(wrap_line=False).splitlines())


def broken(expr: sp.Expr, printer, width: int = WIDTH) -> list[str]:
    """The LaTeX of *expr* as lines, each (by estimate) at most *width* columns wide.

    *printer* is a LaTeX printer instance (its style decides the notation).  A form that
    fits, or that has no top-level sum to cut at, is one line.
    """
    if text_width(expr) <= width:
        return [printer.doprint(expr)]
    if isinstance(expr, Add):
        return _terms(list(expr.args), printer, width)
    if isinstance(expr, Mul):
        num, den = sp.fraction(expr, exact=True)
        factors = _flat(num)
        wide = [f for f in factors if isinstance(f, Add)]
        if wide:
            sum_ = max(wide, key=text_width)
            rest = [f for f in factors if f is not sum_]
            front = sp.Mul(*rest, evaluate=False) if rest else sp.S.One
            front = front / den if den != 1 else front
            sign = ""
            if front.could_extract_minus_sign():
                sign, front = "-", -front
            head = sign + ("" if front == 1 else _front(front, printer))
            if text_width(front) > width // 2:
                # A wide factor in front (a long denominator) gets a line of its own.
                return [head, *_bracketed(r"\cdot ", _terms(list(sum_.args), printer, width))]
            inner = _terms(list(sum_.args), printer, width - text_width(front) // 2)
            return _bracketed(head, inner)
        every = _flat(expr)
        sums = [f for f in every if isinstance(f, Sum) and isinstance(f.function, Add | Mul)]
        if len(sums) == 1 and hasattr(printer, "_sum_sign"):
            rest = [f for f in every if f is not sums[0]]
            front = sp.Mul(*rest, evaluate=False) if rest else sp.S.One
            sign = ""
            if front.could_extract_minus_sign():
                sign, front = "-", -front
            head = sign + ("" if front == 1 else _front(front, printer))
            head += _sum_signs(sums[0], printer)
            return _bracketed(head, broken(sums[0].function, printer, width))
        if den == 1 and len(factors) > 1:
            return _factors(factors, printer, width)
    if (
        isinstance(expr, Sum)
        and isinstance(expr.function, Add | Mul)
        and hasattr(printer, "_sum_sign")
    ):
        return _bracketed(_sum_signs(expr, printer), broken(expr.function, printer, width))
    return [printer.doprint(expr)]


def _factors(factors: list[sp.Expr], printer, width: int) -> list[str]:
    """A product cut between its factors; each continued line starts with a dot."""
    sign = ""
    if factors[0].could_extract_minus_sign():
        sign, factors = "-", [-factors[0], *factors[1:]]
        if factors[0] == 1:
            factors = factors[1:]
    lines: list[str] = []
    current, used = "", 0
    for f in factors:
        if isinstance(f, Add) and text_width(f) > width:
            # A wide sum factor gets lines of its own, in brackets that may span lines.
            if current:
                lines.append(current)
            inner = _bracketed("", _terms(list(f.args), printer, width))
            if lines:
                inner[0] = r"\cdot " + inner[0]
            lines.extend(inner)
            current, used = r"\cdot ", 0
            continue
        tex = printer.parenthesize(f, PRECEDENCE["Mul"], strict=False)
        if isinstance(f, Add):
            tex = rf"\left({printer._print(f)}\right)"
        w = text_width(f) + 1
        if current and used + w > width:
            lines.append(current)
            current, used = r"\cdot ", 0
        current += ("" if current in ("", r"\cdot ") else " ") + tex
        used += w
    if current.strip() not in ("", r"\cdot"):
        lines.append(current)
    lines[0] = sign + lines[0]
    return lines


def _flat(expr: sp.Expr) -> list[sp.Expr]:
    """The factors of a product, unevaluated products inside it flattened."""
    out = []
    for f in Mul.make_args(expr):
        out.extend(_flat(f) if isinstance(f, Mul) else [f])
    return out


def _front(front: sp.Expr, printer) -> str:
    num, den = sp.fraction(front, exact=True)
    if den != 1 and num.is_number:
        return rf"\frac{{{printer.doprint(num)}}}{{{printer.doprint(den)}}}"
    return printer.doprint(front) + " "


def _sum_signs(s: Sum, printer) -> str:
    return "".join(printer._sum_sign(v, lo, hi) for v, lo, hi in reversed(s.limits))


def _bracketed(head: str, lines: list[str]) -> list[str]:
    lines = list(lines)
    lines[0] = rf"{head}\Bigl({lines[0]}"
    lines[-1] = rf"{lines[-1]}\Bigr)"
    return lines


def _terms(terms: list[sp.Expr], printer, width: int) -> list[str]:
    width = max(width, 24)
    lines: list[str] = []
    current, used = "", 0
    for pos, term in enumerate(_positive_first(terms)):
        negative = term.could_extract_minus_sign()
        body = -term if negative else term
        sign = "- " if negative else ("+ " if pos else "")
        pieces = broken(body, printer, width) if text_width(body) > width else None
        if pieces and len(pieces) > 1:
            if current:
                lines.append(current)
            lines.append(sign + pieces[0])
            lines.extend(pieces[1:-1])
            current, used = pieces[-1], width  # close the line after the piece
            continue
        tex = printer._print(body)
        if isinstance(body, Add):
            tex = rf"\left({tex}\right)"
        w = text_width(body) + 3
        if current and used + w > width:
            lines.append(current)
            current, used = "", 0
        current += (" " if current else "") + sign + tex
        used += w
    if current:
        lines.append(current)
    return lines


def aligned(lhs_tex: str, forms: list[list[str]]) -> str:
    r"""The body of an ``aligned``/``align*`` environment: ``lhs &= a_1 \\ &\quad a_2
    \\ &= b_1 ...`` for forms already broken into lines."""
    rows = []
    for pos, lines in enumerate(forms):
        rows.append(("" if pos else lhs_tex + " ") + "&= " + lines[0])
        rows.extend(r"&\quad " + line for line in lines[1:])
    return r" \\ ".join(rows)

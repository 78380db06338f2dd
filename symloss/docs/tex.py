"""The standalone LaTeX handout (:func:`export_tex`), which pdflatex compiles with only
Debian's texlive-latex-base."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable

import sympy as sp

from symloss.core.loss import Loss
from symloss.docs.files import write_output
from symloss.docs.options import computed_notes, option_effects, where_tex
from symloss.docs.picture import tex_picture
from symloss.docs.prose import segments
from symloss.docs.reference import number
from symloss.docs.site import _select
from symloss.docs.table import article_table, table_points
from symloss.printing.breaking import aligned, broken
from symloss.printing.printers import _PRINTERS, latex_expr
from symloss.registry import get
from symloss.version import __version__

# ============================================================================ LaTeX handout
_TEX_ESCAPES = {
    "\\": r"\ensuremath{\backslash}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\ensuremath{\$}",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\^{}",
    "~": r"\~{}",
    "<": r"\ensuremath{<}",
    ">": r"\ensuremath{>}",
    "|": r"\ensuremath{|}",
    '"': "''",
    "–": "--",
    "—": "---",
    "‘": "`",
    "’": "'",
    "“": "``",
    "”": "''",
    "−": "-",
    "…": r"\dots{}",
    "×": r"\ensuremath{\times}",
    "·": r"\ensuremath{\cdot}",
    "⋅": r"\ensuremath{\cdot}",  # SymPy's pretty printer's product
    "ℯ": "e",  # ... and its Euler number
    "⋯": r"\ensuremath{\cdots}",
    "½": r"\ensuremath{\tfrac{1}{2}}",
    "±": r"\ensuremath{\pm}",
    "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}",
    "≠": r"\ensuremath{\neq}",
    "≈": r"\ensuremath{\approx}",
    "∞": r"\ensuremath{\infty}",
    "∈": r"\ensuremath{\in}",
    "→": r"\ensuremath{\to}",
    "∂": r"\ensuremath{\partial}",
    "∑": r"\ensuremath{\sum}",
    "√": r"\ensuremath{\surd}",
}
# Capital Greek letters with a LaTeX macro; the others look like Latin capitals.
_GREEK_CAPITALS = {
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Pi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
}
_GREEK_LATIN = {
    "Alpha": "A",
    "Beta": "B",
    "Epsilon": "E",
    "Zeta": "Z",
    "Eta": "H",
    "Iota": "I",
    "Kappa": "K",
    "Mu": "M",
    "Nu": "N",
    "Omicron": "O",
    "Rho": "P",
    "Tau": "T",
    "Chi": "X",
}


def tex_text(text: str) -> str:
    r"""*text* as LaTeX text that pdflatex with T1/utf8 accepts.

    LaTeX's special characters are escaped; Greek letters, sub- and superscript
    digits and common symbols become math; accented Latin letters are kept (the
    ``utf8`` input encoding knows them); anything else becomes ``[U+XXXX]``.

    >>> tex_text("y_k - t_k, 50% of σ²")
    'y\\_k - t\\_k, 50\\% of \\ensuremath{\\sigma}\\ensuremath{^{2}}'
    """
    out = []
    for ch in text:
        if ch in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append(_tex_unicode(ch))
    return "".join(out)


def tex_prose(text: str, style: str = "standard") -> str:
    r"""*text* as LaTeX, its plain-text formulas (``e^2``, ``sum_k``) as inline math.

    >>> tex_prose("1/2 e^2 for |e| < delta")
    '\\(1/2 e^{2}\\) for \\(|e| < \\delta\\)'
    """
    return "".join(
        rf"\({piece}\)" if math else _breakable(tex_text(piece))
        for piece, math in segments(text, style)
    )


def _tex_unicode(ch: str) -> str:
    name = unicodedata.name(ch, "")
    words = name.split()
    if name.startswith("GREEK SMALL LETTER ") and len(words) == 4:
        letter = words[-1].lower()
        letter = {"lamda": "lambda", "omicron": "o"}.get(letter, letter)
        return rf"\ensuremath{{\{letter}}}" if letter != "o" else "o"
    if name.startswith("GREEK CAPITAL LETTER ") and len(words) == 4:
        letter = words[-1].capitalize().replace("Lamda", "Lambda")
        if letter in _GREEK_CAPITALS:
            return rf"\ensuremath{{\{letter}}}"
        return _GREEK_LATIN.get(letter, f"[U+{ord(ch):04X}]")
    if name.startswith(("SUPERSCRIPT ", "SUBSCRIPT ", "LATIN SUBSCRIPT SMALL LETTER ")):
        plain = unicodedata.normalize("NFKC", ch)
        if plain.isascii() and plain.isalnum():
            mark = "^" if name.startswith("SUPERSCRIPT") else "_"
            return rf"\ensuremath{{{mark}{{{plain}}}}}"
    if unicodedata.category(ch).startswith("L") and ord(ch) <= 0x17F:
        return ch  # Latin-1 and Latin Extended-A letters: utf8 + T1 handle them
    if unicodedata.category(ch) == "Zs":
        return " "
    return f"[U+{ord(ch):04X}]"


_TEX_PREAMBLE = r"""\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage{amsmath,amssymb}
\usepackage[margin=2.2cm]{geometry}
\allowdisplaybreaks
\setlength{\parindent}{0pt}
\setlength{\parskip}{0.5\baselineskip}
"""


def export_tex(
    names: Iterable[str] | None,
    out: str | os.PathLike | None,
    derivation: bool = False,
    style: str = "standard",
) -> str:
    r"""A standalone LaTeX handout: definitions, gradients and optionally derivations.

    Parameters
    ----------
    names : iterable of str or Loss, optional
        Losses (names, aliases, or losses with options bound by :func:`symloss.get`), in
        the order given; all registered losses when None.
    out : path, optional
        File to write (see :func:`symloss.docs.files.write_output`: an existing file
        is overwritten, keeping its mode).  ``None`` only returns the text.
    derivation : bool
        Add the step-by-step derivation of each gradient.
    style : {"standard", "article"}
        The notation of every formula: standard LaTeX or the source article's.

    Returns
    -------
    str
        The document, which ``pdflatex`` compiles with ``texlive-latex-base`` alone.
    """
    from symloss.printing.printers import STYLES

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if names is None:
        losses = _select(None)
    else:
        losses, seen = [], set()
        for n in names:
            loss = n if isinstance(n, Loss) else get(n)  # a bound loss shows its values
            if loss.name not in seen:
                seen.add(loss.name)
                losses.append(loss)
    title = "Loss functions" if len(losses) != 1 else losses[0].title
    parts = [
        _TEX_PREAMBLE,
        rf"\title{{{tex_text(title)}}}",
        r"\author{}",
        rf"\date{{Generated by symloss {tex_text(__version__)}}}",
        r"\begin{document}",
        r"\maketitle",
    ]
    for loss in losses:
        parts.append(_tex_section(loss, style, derivation))
    parts.append(r"\end{document}")
    text = "\n".join(parts) + "\n"
    if out is not None:
        write_output(out, text.encode("utf-8"))
    return text


def _tex_section(loss: Loss, style: str, with_derivation: bool) -> str:
    def display(tex: str) -> str:
        return f"\\[\n{tex}\n\\]"

    def equation(lhs, rhs) -> str:
        # One line as \[ ... \], or cut at its top-level signs into align* rows.
        lines = broken(rhs, _PRINTERS[style]())
        left = latex_expr(lhs, style)
        if len(lines) == 1:
            return display(f"{left} = {lines[0]}")
        return "\\begin{align*}\n" + aligned(left, [lines]) + "\n\\end{align*}"

    comp = loss.composition
    aliases = ", ".join(rf"\texttt{{{tex_text(a)}}}" for a in loss.aliases)
    aliases = f" (alias {aliases})" if aliases else ""
    lines = [
        rf"\section{{{tex_text(loss.title)}}}",
        rf"\texttt{{{tex_text(loss.name)}}}" + aliases,
        "",
        r"\textbf{Definition.}",
        equation(*loss.equation()),
    ]
    if comp is not None:
        element = latex_expr(sp.Eq(comp.element, comp.value, evaluate=False), style)
        lines += [
            rf"with the prediction given by the {tex_text(comp.name)} of the logits,",
            display(element),
        ]
    where = where_tex(loss, style)
    if where:
        lines += [rf"where \({where}\).", ""]
    lines.append(r"\textbf{As computed.}")
    for note in computed_notes(loss, style):
        lines.append(tex_text(note.text))
        if note.equation is not None:
            lines.append(equation(*note.equation))
        else:
            lines.append(display(note.tex) if note.tex else "")
    effects = option_effects(loss, style)
    if effects:
        lines += [r"\textbf{Options.} Set at \texttt{symloss.get}; each changes the formula.", ""]
        for note in effects:
            lines.append(tex_text(note.text))
            lines.append(display(note.tex) if note.tex else "")
    if loss.conventions:
        lines += [tex_prose(loss.conventions, style), ""]
    lines.append(r"\textbf{Gradient.}")
    if comp is not None:
        lines += ["By the prediction:", equation(*get(comp.base).equation("gradient"))]
        lines += ["By the logits:"]
    lines.append(equation(*loss.equation("gradient")))
    for c in loss.constraints_used():
        lines += [
            rf"This uses \({latex_expr(c.lhs, style)} = {latex_expr(c.rhs, style)}\): "
            f"{tex_text(c.description)}.",
            "",
        ]
    lines.append(r"\textbf{Hessian.}")
    lines.append(equation(*loss.equation("hessian")))
    lines += _tex_table(loss, style), "", tex_picture(loss, table_points(loss)), ""
    if with_derivation:
        lines.append(r"\subsection*{Derivation}")
        lines.append(r"\begin{enumerate}")
        for step in loss.derivation():
            lines.append(
                rf"\item \textbf{{{tex_text(step.title)}.}} {_breakable(tex_text(step.note))}"
            )
            lines.append(r"\begin{align*}")
            lines.append(step.latex(style, aligned=True))
            lines.append(r"\end{align*}")
            if step.constraint is not None:
                lines.append(
                    rf"This step uses \({step.constraint_latex(style)}\): "
                    f"{tex_text(step.constraint.description)}."
                )
        lines.append(r"\end{enumerate}")
    return "\n".join(lines) + "\n"


def _tex_table(loss: Loss, style: str) -> str:
    """The article's example table of *loss* as a ``tabular`` (empty for a loss without)."""
    found = article_table(loss, style)
    if found is None:
        return ""
    headers, rows = found
    lines = [
        r"\textbf{The article's table.} One sample per row, computed by symloss (the "
        r"article rounds to 2 decimals).",
        "",
        r"\begin{tabular}{r" + "r" * len(headers) + "}",
        " & ".join(["", *(rf"\({h}\)" for h in headers)]) + r" \\ \hline",
    ]
    for k, row in enumerate(rows, 1):
        lines.append(" & ".join([str(k), *(number(v) for v in row)]) + r" \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines)


def _breakable(tex: str) -> str:
    r"""Text in which a long name (``binary\_cross\_entropy``) may break after an underscore."""
    return tex.replace(r"\_", r"\_\allowbreak{}")

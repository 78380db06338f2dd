"""One Markdown page per loss, and the index, for MkDocs (``pymdownx.arithmatex`` delimiters)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from symloss.docs.files import PLOT_HINT
from symloss.docs.navigation import group_title, grouped
from symloss.docs.plots import sweep_file
from symloss.docs.prose import segments
from symloss.docs.reference import cells, number, shown_reference
from symloss.docs.sheet import Formula, Sheet, plot_caption, sweep_caption

# ---------------------------------------------------------------------------- Markdown
# Backslash escapes for Markdown's inline syntax.  Parentheses and brackets are not
# escaped that way, because \( and \[ open formulas for arithmatex; a bracket becomes
# an HTML entity instead, so that no text turns into a link.
_MD_ESCAPES = {c: "\\" + c for c in "\\`*_{}<>#|~$"} | {"[": "&#91;", "]": "&#93;"}


def escape(text: str) -> str:
    """Plain text, with Markdown's special characters escaped."""
    out = "".join(_MD_ESCAPES.get(ch, ch) for ch in text)
    if out[:1] in ("-", "+", "="):  # would start a list or a setext heading
        out = "\\" + out
    head, dot, rest = out.partition(".")
    if dot and head.isdigit():  # would start a numbered list
        out = f"{head}\\.{rest}"
    return out


def prose(text: str, cell: bool = False) -> str:
    """Escaped text whose plain-text formulas (``e^2``, ``sum_k``) are inline math.

    In a table *cell* a formula's bars are written ``\\vert``, which no table splits at.
    """
    return "".join(
        _md_inline(p.replace("|", r"\vert ") if cell else p) if math else escape(p)
        for p, math in segments(text)
    )


def _md_block(tex: str) -> str:
    return f"\\[\n{tex}\n\\]"


def _md_inline(tex: str) -> str:
    return f"\\({tex}\\)"


def _md_formulas(formulas: Iterable[Formula]) -> list[str]:
    out = []
    for f in formulas:
        out += [f"{escape(f.label)}:", "", _md_block(f.shown), ""]
    return out


def _md_notes(notes) -> list[str]:
    out = []
    for note in notes:
        out += [escape(note.text), ""]
        if note.tex:
            out += [_md_block(note.tex), ""]
    return out


def _md_use(s: Sheet) -> list[str]:
    ex = s.example
    if ex is None:
        return []
    lines = ["## Use", "", "```python", ex.snippet().rstrip("\n"), "```", ""]
    n = len(ex.pred)
    lines.append("| array | shape | " + " | ".join(f"sample {k + 1}" for k in range(n)) + " |")
    lines.append("|---" * (n + 2) + "|")
    for var, role, arr in ex.arrays:
        row = " | ".join(f"`{c}`" for c in cells(arr))
        lines.append(f"| `{var}` ({escape(role)}) | `{arr.shape}` | {row} |")
    sub = "{ij}" if ex.grad.ndim == 2 else "i"
    grad = " | ".join(f"`{c}`" for c in cells(ex.grad))
    pred = str(s.loss.pred.label)
    label = _md_inline(rf"\partial E / \partial {pred}_{sub}")
    lines.append(f"| gradient {label} | `{ex.grad.shape}` | {grad} |")
    lines.append("")
    if ex.value_is_scalar:
        lines += [f"Value ({s.loss.reduction}): {_md_inline('E = ' + number(ex.value))}", ""]
    else:
        lines += [f"Per-sample values: `{', '.join(cells(ex.value))}`", ""]
    return lines


def _md_equivalents(s: Sheet) -> list[str]:
    if not s.equivalents:
        return []
    lines = ["## In other libraries", ""]
    lines += ["| library | equivalent | how it compares (from the conventions) |", "|---|---|---|"]
    for eq in s.equivalents:
        call = f"`{eq.call}`" if eq.call else "none cited"
        if eq.call and eq.url:
            call = f"[{call}]({eq.url})"
        differ = " ".join(prose(d, cell=True) for d in eq.differences)
        lines.append(f"| {escape(eq.library)} | {call} | {differ} |")
    lines.append("")
    return lines


def _md_page(s: Sheet, plot: str | None, pages: dict[str, str]) -> str:
    loss = s.loss
    lines = [f"# {escape(loss.title)}", ""]
    aka = f" (alias {', '.join(f'`{a}`' for a in loss.aliases)})" if loss.aliases else ""
    lines += [f"`{loss.name}`{aka}", "", "[All losses](index.md)", "", "## Definition", ""]
    lines += _md_formulas(s.definitions)
    comp = loss.composition
    if comp is not None:
        base = f"[`{comp.base}`]({pages[comp.base]})" if comp.base in pages else f"`{comp.base}`"
        lines += [f"The loss {base} applied to the {escape(comp.name)} of the logits.", ""]
    if s.where:
        lines += [f"where {_md_inline(s.where)}", ""]
    lines += ["## As computed", ""]
    lines += _md_notes(s.computed)
    if s.option_effects:
        lines += ["## Options", ""]
        lines += ["Set at `symloss.get(name, option=value)`; each changes the formula:", ""]
        lines += _md_notes(s.option_effects)
    lines += _md_use(s)
    lines += ["## Gradient", ""]
    lines += _md_formulas(s.gradients)
    for c in loss.constraints_used():
        lines += [f"Uses {_md_inline(c.latex())}: {escape(c.description)}.", ""]
    lines += ["## Hessian", ""]
    lines += _md_formulas(s.hessians)
    lines += [escape(s.hessian_note), "", "## Derivation", ""]
    for pos, step in enumerate(s.steps, 1):
        lines += [f"{pos}. **{escape(step.title)}.** {escape(step.note)}".rstrip(), ""]
        body = r"\begin{aligned}" + step.latex(aligned=True) + r"\end{aligned}"
        lines += ["    " + line for line in _md_block(body).splitlines()]
        lines.append("")
        if step.constraint is not None:
            lines += [
                f"    Uses {_md_inline(step.constraint_latex())}: "
                f"{escape(step.constraint.description)}.",
                "",
            ]
    lines += ["## Plot", ""]
    if plot is not None:
        figure = f"![{escape(loss.title)}: loss and gradient]({plot})"
        lines += [figure, "", escape(plot_caption(s)), ""]
    else:
        lines += [f"Plots need matplotlib: `{PLOT_HINT}`", ""]
    if s.table is not None:
        headers, rows = s.table
        lines += ["### The article's table", ""]
        lines += [
            "The source article's example, one sample per row, computed here (the article "
            "rounds to 2 decimals); each row is marked on the plot by its number.",
            "",
        ]
        lines.append("| # | " + " | ".join(_md_inline(h) for h in headers) + " |")
        lines.append("|---" * (len(headers) + 1) + "|")
        for k, row in enumerate(rows, 1):
            lines.append(f"| {k} | " + " | ".join(f"`{number(v)}`" for v in row) + " |")
        lines.append("")
    for name in s.sweeps if plot is not None else ():
        lines += [f"### Sweep of `{name}`", ""]
        lines += [f"![{escape(s.loss.title)}: sweep of {name}]({sweep_file(s.loss.name, name)})"]
        lines += ["", escape(sweep_caption(s, name)), ""]
    lines += ["## Conventions, domains and constraints", ""]
    if loss.conventions:
        lines += [prose(loss.conventions), ""]
    lines += [escape(s.reduction), ""]
    for tex, name, value, domain, description in s.params:
        dom = f", in {_md_inline(domain)}" if domain else ""
        lines.append(f"- {_md_inline(tex)} (`{name}`) = `{value}`{dom}: {escape(description)}")
    if s.params:
        lines.append("")
    for label, role, tex, description in s.domains:
        role = f" ({role})" if role else ""
        lines += [f"- {_md_inline(label)}{role}: {_md_inline(tex)}, {escape(description)}"]
    if s.domains:
        lines.append("")
    for _name, tex, description, used in s.constraints:
        how = "used by the gradient" if used else "not needed by the gradient"
        lines += [f"- Constraint {_md_inline(tex)}: {escape(description)} ({how})."]
    if s.constraints:
        lines.append("")
    lines += _md_equivalents(s)
    if s.links:
        lines += ["## References", ""]
        for text, link in s.links:
            shown = escape(shown_reference(text, link))
            lines.append(f"- [{shown}]({link})" if link else f"- {shown}")
        lines.append("")
    lines += ["## LaTeX source", "", "```latex", s.source().rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _md_index(sheets: Sequence[Sheet], pages: dict[str, str]) -> str:
    lines = ["# Loss functions", ""]
    lines += [
        f"{len(sheets)} losses, each written once as a SymPy expression; every formula is "
        "derived from it.",
        "",
    ]
    for group, sentence, members in grouped(sheets):
        lines += [f"## {escape(group_title(group))}", "", escape(sentence), ""]
        for s in members:
            loss = s.loss
            aka = f" ({', '.join(f'`{a}`' for a in loss.aliases)})" if loss.aliases else ""
            tex = loss.latex("standard")
            lines.append(
                f"- [{escape(loss.title)}]({pages[loss.name]}): `{loss.name}`{aka}, "
                f"{_md_inline(tex)}"
            )
        lines.append("")
    return "\n".join(lines)

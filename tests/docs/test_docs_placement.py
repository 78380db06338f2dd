"""Each formula of a docs page, handout and index is under its own heading (issue 20).

``tests/test_docs.py`` checks that every formula is on the page.  Here each section is
cut out by its heading and must hold its own formula and not the others: the gradient
under "Gradient", the Hessian under "Hessian", the definition under "Definition", each
labelled formula after its own label, and in the copy-able LaTeX source each ``%``
comment above its own formula.  A page whose gradient and Hessian sections were swapped
passed the presence checks.
"""

from __future__ import annotations

import html
import re

import pytest
from conftest import LOSSES, registry_params

import symloss
import symloss.docs as docs
from symloss.docs.markdown import escape
from symloss.docs.sheet import equation_formula

SECTIONS = ("Definition", "Gradient", "Hessian", "Derivation")


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """The HTML and Markdown sites of the whole registry (plots: see test_docs.py)."""
    root = tmp_path_factory.mktemp("placement")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(docs, "plot_svg", lambda loss: None)
        docs.build_site(root / "html", progress=False)
        docs.build_site(root / "md", fmt="md", progress=False)
    return root


def _formulas(chunk: str) -> list[str]:
    found = re.findall(
        r'<(?:div|span) class="math (?:display|inline)">(.*?)</(?:div|span)>', chunk, re.S
    )
    return [html.unescape(f) for f in found]


def html_sections(text: str) -> dict[str, str]:
    """Heading -> the page's text from that ``<h2>`` to the next."""
    parts = re.split(r"<h2>(.*?)</h2>", text)
    return {html.unescape(parts[k]): parts[k + 1] for k in range(1, len(parts), 2)}


def md_sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.*)$", text, flags=re.M)
    return {parts[k]: parts[k + 1] for k in range(1, len(parts), 2)}


def md_formulas(chunk: str) -> list[str]:
    return [f.strip() for f in re.findall(r"\\\[\n(.*?)\n\\\]", chunk, re.S)]


def shown(loss, part: str, style: str = "standard") -> str:
    """A part as a page shows it: one line, or laid out over lines when it is wide."""
    return equation_formula("", *loss.equation(part), style).shown


def expected(loss) -> dict[str, list[str]]:
    """The formulas each section must hold, from the loss's own methods."""
    defs = [shown(loss, "loss")]
    if docs.is_article_loss(loss):
        defs.append(shown(loss, "loss", "article"))
    grads = [shown(loss, "gradient")]
    if loss.composition is not None:
        grads.append(shown(symloss.get(loss.composition.base), "gradient"))
    return {"Definition": defs, "Gradient": grads, "Hessian": [shown(loss, "hessian")]}


def _check_sections(loss, sections: dict[str, str], formulas_of) -> None:
    for name in SECTIONS:
        assert name in sections, f"{loss.name}: no section {name!r}"
    want = expected(loss)
    for name, chunk in sections.items():
        found = formulas_of(chunk)
        for owner, texs in want.items():
            if (name, owner) == ("Derivation", "Gradient"):
                continue  # a derivation ends with the gradient it derives
            for tex in texs:
                if owner == name:
                    assert tex in found, f"{loss.name}: {owner} formula missing under {name}"
                else:
                    assert tex not in found, f"{loss.name}: {owner} formula under {name}"


@registry_params()
def test_html_page_sections_hold_their_own_formulas(loss, sites):
    text = (sites / "html" / f"{loss.name}.html").read_text()
    _check_sections(loss, html_sections(text), _formulas)
    # The order of the sections, as the page is read.
    heads = re.findall(r"<h2>(.*?)</h2>", text)
    assert [h for h in heads if h in SECTIONS] == list(SECTIONS)


@registry_params()
def test_markdown_page_sections_hold_their_own_formulas(loss, sites):
    text = (sites / "md" / "docs" / f"{loss.name}.md").read_text()
    _check_sections(loss, md_sections(text), md_formulas)


#: What each catalog input is called on a page, by the description of its domain.
ROLES = {"finite real logit": "logits", "finite real score (decision function)": "scores"}


def _labelled(loss, form=shown) -> list[tuple[str, str]]:
    """(label, formula) pairs a page shows, written out here, not taken from the page code;
    *form* gives each formula as the page shows it (or, for the LaTeX source, one line)."""
    pred = str(loss.pred.label)
    role = ROLES.get(loss.domains[pred].description, "prediction")
    pairs = [("Definition, in standard notation", form(loss, "loss"))]
    if docs.is_article_loss(loss):
        pairs.append(("Definition, in the article's notation", form(loss, "loss", "article")))
    comp = loss.composition
    if comp is not None:
        y = str(comp.element.base.label)
        base = symloss.get(comp.base)
        pairs.append((f"Gradient by the prediction {y}", form(base, "gradient")))
        pairs.append((f"Gradient by the logits {pred}", form(loss, "gradient")))
        pairs.append((f"Hessian by the logits {pred}", form(loss, "hessian")))
    else:
        pairs.append((f"Gradient by the {role} {pred}", form(loss, "gradient")))
        pairs.append((f"Hessian by the {role} {pred}", form(loss, "hessian")))
    return pairs


@registry_params()
def test_each_label_is_followed_by_its_own_formula(loss, sites):
    text = (sites / "html" / f"{loss.name}.html").read_text()
    boxes = re.findall(
        r'<div class="formula"><div class="label">((?:(?!</div>).)*)</div>\s*'
        r'<div class="math display">((?:(?!</div>).)*)</div></div>',
        text,
        re.S,
    )
    shown = {html.unescape(label): html.unescape(tex) for label, tex in boxes}
    md = (sites / "md" / "docs" / f"{loss.name}.md").read_text()
    for label, tex in _labelled(loss):
        assert shown.get(label) == tex, f"{loss.name}: {label!r}"
        assert f"{escape(label)}:\n\n\\[\n{tex}\n\\]" in md, f"{loss.name}: {label!r} (md)"


@registry_params()
def test_latex_source_comments_sit_above_their_formulas(loss, sites):
    text = (sites / "html" / f"{loss.name}.html").read_text()
    source = html.unescape(re.search(r'<code id="latex-source">(.*?)</code>', text, re.S)[1])
    blocks = dict(
        (b.split("\n", 1)[0][2:], b.split("\n", 1)[1].strip()) for b in source.split("\n\n")
    )
    one_line = lambda L, part, style="standard": L.latex(style, part)  # noqa: E731
    for label, tex in _labelled(loss, one_line):
        assert blocks.get(label) == tex, f"{loss.name}: % {label}"


def test_index_columns_hold_definition_then_gradient(sites):
    text = (sites / "html" / "index.html").read_text()
    rows = re.findall(r"<tr><td><a href=\"([^\"]+)\">.*?</tr>", text, re.S)
    assert sorted(rows) == [f"{n}.html" for n in symloss.names()]  # each once, by group
    for loss in LOSSES:
        row = re.search(rf'<tr><td><a href="{loss.name}\.html">(.*?)</tr>', text, re.S)[1]
        cells = re.findall(r"<td>(.*?)</td>", "<td>" + row, re.S)
        # The gradient sits under the definition (one column: the table fits the page).
        (_, formulas) = cells
        got = _formulas(formulas)
        assert len(got) == 2 and got[0].endswith(shown(loss, "loss").split("=", 1)[1].strip()[-20:])
        assert got[1].endswith(shown(loss, "gradient")[-20:])


@pytest.mark.parametrize("name", ["bce", "cce_logits", "huber", "kl_divergence"])
def test_handout_sections_hold_their_own_formulas(name):
    loss = symloss.get(name)
    tex = docs.export_tex([name], None, derivation=True)
    body = tex.split(r"\section{", 1)[1]
    before_gradient, after = body.split(r"\textbf{Gradient.}")
    gradient, derivation = after.split(r"\subsection*{Derivation}")
    definition = before_gradient.split(r"\textbf{Definition.}")[1]
    assert f"\\[\n{loss.latex('standard')}\n\\]" in definition
    assert loss.latex(part="gradient") not in definition
    assert f"\\[\n{loss.latex(part='gradient')}\n\\]" in gradient
    assert loss.latex("standard") not in gradient
    if loss.composition is not None:
        by_y = symloss.get(loss.composition.base).latex(part="gradient")
        assert gradient.index("By the prediction:") < gradient.index(by_y)
        assert gradient.index(by_y) < gradient.index("By the logits:")
        assert gradient.index("By the logits:") < gradient.index(loss.latex(part="gradient"))
    assert r"\begin{align*}" in derivation and r"\begin{align*}" not in gradient

"""Reference content of the pages (issue 16): the snippet and worked example of every
loss, checked against the definition evaluated with mpmath; the table of equivalent
calls; linked references; conventions typeset as math; groups, search and mkdocs.yml;
the notebook's MathML."""

from __future__ import annotations

import contextlib
import html
import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import mpmath
import numpy as np
import pytest
import sympy as sp
from conftest import registry_params

import symloss
import symloss.docs
import symloss.docs.site as site_module
from symloss.core.loss import GROUPS
from symloss.docs.prose import segments
from symloss.docs.reference import equivalents, link_of, number
from symloss.losses import FAMILIES
from symloss.symbols import relu

DIGITS = 40


@pytest.fixture(scope="module")
def html_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(site_module, "plot_svg", lambda loss, **_: None)  # plots: test_docs.py
        site_module.build_site(out, progress=False)
    return out


@pytest.fixture(scope="module")
def md_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "md"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(site_module, "plot_svg", lambda loss, **_: None)
        site_module.build_site(out, fmt="md", progress=False)
    return out


# ---------------------------------------------------------------------- the reference
def _definition(loss, shapes: dict[str, tuple[int, ...]]):
    """The loss's definition E as an mpmath function of its input elements, and the
    element symbols in row-major order per array.  Evaluated by SymPy's ``evalf``
    after ``doit`` (the sums written out), independent of symloss's kernels and of its
    symbolic derivatives."""
    expr = loss.expr.rewrite(sp.exp).replace(relu, lambda x: sp.Max(x, 0))
    sizes = {}
    (_, n), *inner = loss.indices
    shape = next(iter(shapes.values()))
    sizes[n] = shape[0]
    for _, size in [*inner, *(loss.element_indices or ())[1:]]:
        sizes[size] = shape[1]
    values = loss.param_values
    subs = dict(sizes)
    for p in loss.params:
        if not isinstance(p.symbol, sp.IndexedBase) and values[p.name] is not None:
            subs[p.symbol] = sp.Float(repr(float(values[p.name])), DIGITS)
    expr = (
        expr.subs(subs)
        .doit()
        .replace(
            lambda e: type(e).__name__ == "rowmax",  # a row's maximum, written out
            lambda e: sp.Max(
                *(e.args[0].subs(e.args[1][0], k) for k in range(e.args[1][1], e.args[1][2] + 1))
            ),
        )
    )
    bases = {str(b.label): b for b in (loss.pred, loss.target, *loss.extra_inputs)}
    elements = {}
    for name, shp in shapes.items():
        base = bases[name]
        for idx in np.ndindex(shp):
            elements[(name, idx)] = (
                base[tuple(k + 1 for k in idx)] if len(idx) > 1 else base[idx[0] + 1]
            )
    return expr, elements


def reference(loss, arrays: dict[str, np.ndarray]):
    """Value and gradient (by the first array) of the definition at *arrays*, with
    mpmath at 40 digits: the value by evalf, the gradient by mpmath's numerical
    differentiation of that same function."""
    mpmath.mp.dps = DIGITS
    expr, elements = _definition(loss, {k: v.shape for k, v in arrays.items()})
    point = {
        elements[(name, idx)]: sp.Float(repr(float(arr[idx])), DIGITS)
        for name, arr in arrays.items()
        for idx in np.ndindex(arr.shape)
    }
    value = float(expr.xreplace(point).evalf(DIGITS))
    pred = next(iter(arrays))
    grad = np.zeros(arrays[pred].shape)
    for idx in np.ndindex(arrays[pred].shape):
        element = elements[(pred, idx)]
        x = sp.Symbol("x_")
        rest = {k: v for k, v in point.items() if k != element}
        f = sp.lambdify(x, expr.xreplace(rest).xreplace({element: x}), "mpmath")
        grad[idx] = float(mpmath.diff(f, mpmath.mpf(repr(float(arrays[pred][idx])))))
    return value, grad


def _snippet(text: str) -> str:
    found = re.search(r'<code id="snippet" class="snippet">(.*?)</code>', text, re.S)
    assert found, "no snippet on the page"
    return html.unescape(found.group(1))


def _run(snippet: str) -> tuple[dict, str]:
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "<page snippet>", "exec"), namespace)  # our own generated page
    return namespace, out.getvalue()


@registry_params()
def test_the_page_snippet_runs_and_its_numbers_match_mpmath(loss, html_site):
    text = (html_site / f"{loss.name}.html").read_text()
    ns, printed = _run(_snippet(text))
    pred, target, value, grad = ns["pred"], ns["target"], ns["value"], ns["grad"]
    # Shapes and dtypes as the comments say.
    for var in ("pred", "target"):
        assert f"# shape {ns[var].shape}, float64" in _snippet(text)
        assert ns[var].dtype == np.float64
    assert grad.shape == pred.shape and grad.dtype == np.float64
    arrays = {str(loss.pred.label): pred, str(loss.target.label): target}
    arrays.update({k: ns[k] for k in (str(b.label) for b in loss.extra_inputs)})
    want_value, want_grad = reference(loss, arrays)
    assert float(value) == pytest.approx(want_value, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-9, atol=1e-12)
    # The page shows the same numbers, and the snippet prints them.
    assert number(value) in text
    for g in np.asarray(grad).ravel():
        assert number(g) in text
    assert printed.splitlines()[0] == repr(float(value))


def test_a_bound_loss_snippet_binds_its_values(tmp_path):
    loss = symloss.get("huber", delta=1.5)
    site_module.build_site(tmp_path / "s", names=[loss], progress=False)
    snippet = _snippet((tmp_path / "s" / "huber.html").read_text())
    assert 'symloss.get("huber", delta=1.5)' in snippet
    ns, _ = _run(snippet)
    want, grad = reference(loss, {"y": ns["pred"], "t": ns["target"]})
    assert ns["value"] == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(ns["grad"], grad, rtol=1e-9, atol=1e-12)


def test_the_worked_example_is_checked_against_a_hand_derivation():
    # Huber, delta = 1, pred (-1.2, 0.8, 1.6), target (-0.4, 0.4, -1.2): residuals
    # -0.8, 0.4, 2.8, so the terms are 0.32, 0.08 and 1 (2.8 - 0.5) = 2.3, mean 0.9;
    # the gradient is the clipped residual over n: (-0.8, 0.4, 1)/3.
    ns, _ = _run(_snippet_of("huber"))
    np.testing.assert_allclose(ns["pred"] - ns["target"], [-0.8, 0.4, 2.8], rtol=1e-12)
    assert ns["value"] == pytest.approx(0.9, rel=1e-14)
    np.testing.assert_allclose(ns["grad"], np.array([-0.8, 0.4, 1.0]) / 3, rtol=1e-14)


def _snippet_of(name: str) -> str:
    from symloss.docs.sheet import sheet

    return sheet(symloss.get(name)).example.snippet()


# ---------------------------------------------------------------------- equivalents
_CITED = re.compile(r"^(PyTorch|Keras|optax|scikit-learn|torchvision): ([\w.]*\w)")


@registry_params()
def test_every_cited_library_call_is_in_the_table(loss, html_site):
    text = (html_site / f"{loss.name}.html").read_text()
    table = text.split("<h2>In other libraries</h2>")[1].split("</table>")[0]
    rows = [html.unescape(r) for r in re.findall(r"<tr><td>(.*?)</td>", table)]
    assert rows[:4] == ["PyTorch", "Keras", "optax", "scikit-learn"]
    for ref in loss.references:
        for part in ref.split("; "):
            m = _CITED.match(part)
            if m:
                assert html.escape(m.group(2)) in table, (loss.name, m.group(2))


def test_equivalents_split_a_reference_that_cites_two_libraries():
    rows = {e.library: e for e in equivalents(symloss.get("mse"))}
    assert rows["Keras"].call == "keras.losses.MeanSquaredError"
    assert rows["optax"].call.startswith("optax.losses.squared_error")
    assert rows["PyTorch"].url == "https://pytorch.org/docs/stable/generated/torch.nn.MSELoss.html"
    assert rows["scikit-learn"].call == ""
    # Where the numbers differ comes from the conventions: optax's l2_loss is half.
    assert any("half" in d for d in rows["optax"].differences)


# ---------------------------------------------------------------------- references
def test_links_of_urls_arxiv_and_doi():
    assert link_of("A (https://example.org/a.html).") == "https://example.org/a.html"
    assert link_of("Lin et al., ICCV 2017 (arXiv:1708.02002).") == (
        "https://arxiv.org/abs/1708.02002"
    )
    assert link_of("B, doi:10.1214/aos/1016218223.") == "https://doi.org/10.1214/aos/1016218223"
    assert link_of("A book, 2006.") == ""


def test_the_articles_losses_cite_the_standard_sources_as_links(html_site):
    for name in ("binary_cross_entropy", "categorical_cross_entropy", "sum_squared_error"):
        text = (html_site / f"{name}.html").read_text()
        refs = text.split("<h2>References</h2>")[1].split("</ul>")[0]
        assert "9cubed" in refs and "Bishop" in refs
        assert len(re.findall(r'<li><a href="https://', refs)) >= 2
    focal = (html_site / "sigmoid_focal.html").read_text()
    assert '<a href="https://arxiv.org/abs/1708.02002">' in focal


# ---------------------------------------------------------------------- conventions
def test_plain_text_formulas_become_latex():
    assert segments("1/2 e^2 for |e| < delta") == [
        ("1/2 e^{2}", True),
        (" for ", False),
        (r"|e| < \delta", True),
    ]
    assert segments("per row 1 - sum_k y_k t_k.") == [
        ("per row ", False),
        (r"1 - \sum_{k} y_{k} t_{k}", True),
        (".", False),
    ]
    # Code names and English stay text.
    assert segments("pass log_target=True as a default") == [
        ("pass log_target=True as a default", False)
    ]
    assert segments("For gamma < 1 (gamma < 2 for the Hessian)") == [
        ("For ", False),
        (r"\gamma < 1", True),
        (" (", False),
        (r"\gamma < 2", True),
        (" for the Hessian)", False),
    ]
    assert segments("(1 - p_t)^gamma with eps = 1e-12") == [
        (r"(1 - p_{t})^{\gamma}", True),
        (" with ", False),
        (r"\epsilon = 10^{-12}", True),
    ]


@registry_params()
def test_no_ascii_math_is_left_in_the_conventions(loss):
    text = "".join(piece for piece, math in segments(loss.conventions) if not math)
    assert "^" not in text, text
    assert not re.search(r"\b(?:sum|[a-z])_[a-z0-9]{1,3}\b", text), text


# ---------------------------------------------------------------------- groups, search
def test_every_family_declares_a_group_and_every_loss_has_one():
    import importlib

    for family in FAMILIES:
        assert importlib.import_module(f"symloss.losses.{family}").GROUP in GROUPS
    for loss in symloss.catalog():
        assert loss.group in GROUPS, loss.name
    assert symloss.get("dice").group == "segmentation"
    assert symloss.get("sse").group == "regression"  # an article loss, declared itself
    assert symloss.get("cce_logits", label_smoothing=0.1).group == "classification"


def test_the_index_lists_each_loss_under_its_group(html_site):
    index = (html_site / "index.html").read_text()
    sections = re.split(r'<h2 id="([a-z]+)">', index)[1:]
    heads = sections[0::2]
    assert heads == [g for g in GROUPS if any(L.group == g for L in symloss.catalog())]
    for group, body in zip(heads, sections[1::2], strict=True):
        listed = re.findall(r'<a href="([a-z0-9_]+)\.html">', body)
        assert sorted(listed) == sorted(L.name for L in symloss.catalog() if L.group == group)


def test_the_search_index_holds_every_page(html_site):
    js = (html_site / "search-index.js").read_text()
    assert js.startswith("window.SYMLOSS_SEARCH = ")
    import json

    entries = json.loads(js.split(" = ", 1)[1].rstrip(";\n"))
    assert sorted(e["page"] for e in entries) == sorted(f"{n}.html" for n in symloss.names())
    focal = next(e for e in entries if e["name"] == "sigmoid_focal")
    assert "torchvision.ops.sigmoid_focal_loss" in focal["text"] and "focal" in focal["text"]
    page = (html_site / "huber.html").read_text()
    assert '<script defer src="search-index.js"></script>' in page
    assert 'id="search"' in page and 'href="index.html#regression"' in page


# ---------------------------------------------------------------------- MkDocs
def test_mkdocs_yml_lists_every_page_in_its_group(md_site):
    import yaml  # with pymdown-extensions, in the test extra

    config = yaml.safe_load((md_site / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs"
    nav = config["nav"]
    assert nav[0] == {"Index": "index.md"}
    listed = []
    for entry in nav[1:]:
        ((group, members),) = entry.items()
        for member in members:
            ((_title, page),) = member.items()
            name = page.removesuffix(".md")
            assert symloss.get(name).group == group.lower()
            listed.append(page)
    assert sorted(listed) == sorted(f"{n}.md" for n in symloss.names())
    for page in listed:
        assert (md_site / "docs" / page).is_file()


@pytest.mark.slow
def test_mkdocs_builds_the_markdown_site_strictly(md_site, tmp_path):
    import mkdocs  # noqa: F401  (in the test extra: missing is a failure)

    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "built")],
        cwd=md_site,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "built" / "huber.html").is_file()


# ---------------------------------------------------------------------- notebook
def test_the_notebook_html_is_mathml_with_the_bound_values():
    loss = symloss.get("huber", delta=1.5)
    out = loss._repr_html_()
    assert "$" not in out
    assert out.count("<math ") == 3  # the loss, its gradient, and delta = 1.5
    root = _xml(out)  # well-formed
    ns = "{http://www.w3.org/1998/Math/MathML}"
    where = [m for m in root.iter(f"{ns}math") if m.get("display") == "inline"]
    assert [t.text for t in where[0].iter() if t.text] == ["\u03b4", "=", "1.5"]
    # The cases of the piecewise definition, not a function called "piecewise".
    assert "piecewise" not in out and "<mtable" in out


def _xml(text: str) -> ET.Element:
    """*text* parsed as XML, HTML's named entities (``&InvisibleTimes;``) resolved."""
    named = re.sub(
        r"&(?!(?:lt|gt|amp|quot|apos);)([A-Za-z][A-Za-z0-9]*);",
        lambda m: html.unescape(m.group()),
        text,
    )
    return ET.fromstring(f"<div>{named}</div>")


@registry_params()
def test_every_notebook_repr_is_mathml_and_short_as_text(loss):
    out = loss._repr_html_()
    assert "<math " in out and "$$" not in out
    _xml(out)
    assert "\n" not in repr(loss) and len(repr(loss)) < 200


# ---------------------------------------------------------------------- the article's table
#: The source article's example table (shared/ARTICLE.md, section 2), as it prints it:
#: y_i, t_i, t_i log(y_i), (1 - t_i) log(1 - y_i), rounded to 2 decimals.
ARTICLE_ROWS = [
    (0.2, 0, 0, -0.22),
    (0.8, 0, 0, -1.61),
    (0.2, 1, -1.61, 0),
    (0.8, 1, -0.22, 0),
]


def test_the_bce_page_and_handout_hold_the_articles_table(html_site):
    text = (html_site / "binary_cross_entropy.html").read_text()
    table = text.split('<table class="article-table">')[1].split("</table>")[0]
    rows = re.findall(r"<tr><td>\d</td>(.*?)</tr>", table)
    got = [[float(v) for v in re.findall(r"<code>(.*?)</code>", r)] for r in rows]
    assert len(got) == 4
    for row, want in zip(got, ARTICLE_ROWS, strict=True):
        assert [round(v, 2) for v in row[:4]] == pytest.approx(list(want), abs=1e-9)
        assert row[4] == pytest.approx(-(row[2] + row[3]), rel=1e-12)  # the sample's loss
    # No other page claims the article's table.
    assert "article-table" not in (html_site / "sigmoid_binary_cross_entropy.html").read_text()
    tex = symloss.docs.export_tex(["bce"], None)
    for y, t, a, b in ARTICLE_ROWS:
        row = re.search(rf"\n\d & {y:g} & {t:g} & (\S+) & (\S+) & (\S+) \\\\", tex)
        assert row, (y, t)
        assert [round(float(row[1]), 2), round(float(row[2]), 2)] == pytest.approx([a, b])


def test_the_article_rows_are_marked_on_the_bce_plot():
    from symloss.docs.table import table_points

    points = table_points(symloss.get("bce"))
    # One sample: E = -log(y) for t = 1 and -log(1 - y) for t = 0 (hand derivation);
    # dE/dy = (y - t) / (y (1 - y)).
    for (x, value, grad, _label), (y, t, _a, _b) in zip(points, ARTICLE_ROWS, strict=True):
        assert x == y
        assert value == pytest.approx(-np.log(y if t else 1 - y), rel=1e-14)
        assert grad == pytest.approx((y - t) / (y * (1 - y)), rel=1e-14)

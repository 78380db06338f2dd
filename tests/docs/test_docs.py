"""The docs site: pages generated from the registry, plots, safe writes, progress, CLI."""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import LOSSES, registry_params

import symloss
import symloss.docs as docs
from symloss.cli import docs as docs_cli
from symloss.docs.markdown import escape
from symloss.docs.prose import segments
from symloss.docs.reference import link_of, shown_reference
from symloss.docs.sheet import equation_formula


@pytest.fixture(scope="module")
def html_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "html"
    report = docs.build_site(out, progress=False)
    return out, report


@pytest.fixture(scope="module")
def md_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "md"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(docs, "plot_svg", lambda loss: None)  # plots: see the HTML site's tests
        report = docs.build_site(out, fmt="md", progress=False)
    return out, report


def formulas_in_html(text: str) -> list[str]:
    """The LaTeX of every formula element of a page, unescaped."""
    found = re.findall(
        r'<(?:div|span) class="math (?:display|inline)">(.*?)</(?:div|span)>', text, re.S
    )
    return [html.unescape(f) for f in found]


# ---------------------------------------------------------------------- pages
def test_one_page_per_registered_loss_plus_an_index(html_site):
    out, report = html_site
    names = symloss.names()
    assert [p.name for p in report.pages] == ["index.html"] + [f"{n}.html" for n in names]
    index = (out / "index.html").read_text()
    links = [a for a in re.findall(r'<a href="([^"#]+)">', index) if a != "index.html"]
    assert sorted(links) == [f"{n}.html" for n in names]  # each once, listed by group
    for n in names:
        assert (out / f"{n}.html").is_file()


@registry_params()
def test_page_has_every_part_of_the_loss(loss, html_site):
    out, _ = html_site
    text = (out / f"{loss.name}.html").read_text()
    formulas = formulas_in_html(text)
    for heading in ("Definition", "Gradient", "Hessian", "Derivation", "Plot",
                    "Conventions, domains and constraints", "LaTeX source"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in text
    # Each part as printed, or (when wider than the column) laid out over lines.
    for part in ("loss", "gradient", "hessian"):
        assert equation_formula("", *loss.equation(part)).shown in formulas
    # The conventions, their plain-text formulas typeset (symloss.docs.prose).
    for piece, math in segments(loss.conventions):
        if math:
            assert piece in formulas
        else:
            assert html.escape(piece.strip()) in text
    for ref in loss.references:  # its URL, if any, as the link
        link = link_of(ref)
        assert html.escape(shown_reference(ref, link)) in text
        assert not link or f'<a href="{html.escape(link)}">' in text
    for dom in loss.domains.values():
        assert dom.latex() in "".join(formulas)
        assert html.escape(dom.description) in text
    for c in loss.constraints:
        assert c.latex() in formulas
    # The copy-able LaTeX source holds the page's formulas.
    source = html.unescape(re.search(r'<code id="latex-source">(.*?)</code>', text, re.S)[1])
    for part in ("loss", "gradient", "hessian"):
        assert loss.latex(part=part) in source
    assert 'data-target="latex-source"' in text


@registry_params()
def test_article_notation_exactly_for_the_articles_own_losses(loss, html_site):
    out, _ = html_site
    formulas = formulas_in_html((out / f"{loss.name}.html").read_text())
    article = loss.latex("article") in formulas
    expected = docs.is_article_loss(loss)
    assert article == expected
    assert expected == (
        '9cubed, "Python - Deep learning - Loss functions", 2019-09-15.' in loss.references
        and loss.composition is None
    )


def test_article_losses_are_the_three_of_the_article():
    article = sorted(L.name for L in symloss.catalog() if docs.is_article_loss(L))
    assert {"binary_cross_entropy", "categorical_cross_entropy", "sum_squared_error"} <= set(
        article
    )


@pytest.mark.parametrize("loss", [L for L in LOSSES if L.composition], ids=lambda L: L.name)
def test_logits_pages_give_the_gradient_by_the_prediction_and_by_the_logits(loss, html_site):
    out, _ = html_site
    formulas = formulas_in_html((out / f"{loss.name}.html").read_text())
    base = symloss.get(loss.composition.base)
    assert equation_formula("", *base.equation("gradient")).shown in formulas
    assert equation_formula("", *loss.equation("gradient")).shown in formulas


def test_softmax_page_shows_the_constraint_and_the_general_gradient(html_site):
    out, _ = html_site
    text = (out / "softmax_cross_entropy.html").read_text()
    assert "Gradient without the constraint that each target row sums to 1" in text
    assert r"\sum_{k=1}^{m} t_{ik} = 1" in formulas_in_html(text)
    assert text.count('class="uses"') == 2  # under the gradient and at derivation step 4


def test_derivation_steps_are_on_the_page(html_site):
    out, _ = html_site
    text = (out / "sigmoid_binary_cross_entropy.html").read_text()
    for title in ("Gradient of the loss by the prediction", "Derivative of the activation",
                  "Chain rule", "Simplify"):  # fmt: skip
        assert f'<span class="title">{title}</span>' in text


def test_pages_never_reference_the_network(html_site):
    out, _ = html_site
    for page in out.glob("*.html"):
        text = page.read_text()
        # Nothing is loaded from the network; links to the references are for the reader.
        assert not re.search(r"src=\"(https?:)?//", text), page.name
        assert not re.search(r"<link[^>]*href=\"(https?:)?//", text), page.name
        assert '<script defer src="_static/katex/katex.min.js"></script>' in text


def test_bundled_katex_ships_with_its_licence(html_site):
    out, _ = html_site
    static = out / "_static" / "katex"
    assert "MIT License" in (static / "LICENSE").read_text()
    fonts = sorted(p.suffix for p in (static / "fonts").iterdir())
    assert fonts and set(fonts) == {".woff2"}
    css = (static / "katex.min.css").read_text()
    for ref in re.findall(r"url\((fonts/[^)]+)\)", css):
        assert (static / ref).is_file(), ref
    size = sum(p.stat().st_size for p in static.rglob("*") if p.is_file())
    assert size < 1_000_000


# ---------------------------------------------------------------------- Markdown
def test_markdown_site_uses_arithmatex_delimiters(md_site):
    out, report = md_site
    assert [p.name for p in report.pages] == ["index.md"] + [f"{n}.md" for n in symloss.names()]
    index = (out / "docs" / "index.md").read_text()
    for n in symloss.names():
        assert f"]({n}.md)" in index
    assert not (out / "_static").exists()
    for L in LOSSES:
        text = (out / "docs" / f"{L.name}.md").read_text()
        for part in ("loss", "gradient"):
            assert f"\\[\n{equation_formula('', *L.equation(part)).shown}\n\\]" in text
        assert "$" not in text.replace(r"\$", "")
        assert "```latex\n" in text


def test_markdown_renders_through_pymdownx_arithmatex(md_site):
    # In the test extra (pymdown-extensions brings markdown): missing is a failure.
    import markdown
    import pymdownx.arithmatex  # noqa: F401

    out, _ = md_site
    for L in LOSSES:
        rendered = markdown.markdown(
            (out / "docs" / f"{L.name}.md").read_text(),
            extensions=["pymdownx.arithmatex", "fenced_code"],
            extension_configs={"pymdownx.arithmatex": {"generic": True}},
        )
        blocks = [
            html.unescape(b)
            for b in re.findall(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', rendered, re.S)
        ]
        assert equation_formula("", *L.equation()).shown in [b.strip() for b in blocks]
        assert "<em>" not in rendered  # no underscore of a formula became emphasis
        # Every formula, derivation steps in list items included, became a formula.
        prose = (out / "docs" / f"{L.name}.md").read_text().split("```latex")[0]
        expected = prose.count("\\[\n") + prose.count("\\(")
        assert rendered.count('class="arithmatex"') == expected > 0


def test_markdown_pages_show_their_plot(tmp_path):
    import matplotlib  # noqa: F401  (the test extra installs it)

    docs.build_site(tmp_path / "md", fmt="md", names=["bce"], progress=False)
    text = (tmp_path / "md" / "docs" / "binary_cross_entropy.md").read_text()
    assert "![Binary cross-entropy: loss and gradient](binary_cross_entropy.svg)" in text
    assert (tmp_path / "md" / "docs" / "binary_cross_entropy.svg").is_file()


def test_markdown_text_is_escaped():
    assert escape("y_k - t_k [1](x) *a*") == r"y\_k - t\_k &#91;1&#93;(x) \*a\*"
    assert escape("1. not a list") == r"1\. not a list"
    assert escape("- not a list") == r"\- not a list"
    assert "\\(" not in escape("(one-hot)")  # \( would open a formula


# ---------------------------------------------------------------------- plots
def test_plots_are_svg_and_referenced(html_site):
    import matplotlib  # noqa: F401  (the test extra installs it)

    out, report = html_site
    assert report.notes == []
    for L in LOSSES:
        svg = out / f"{L.name}.svg"
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        assert f'<img src="{L.name}.svg"' in (out / f"{L.name}.html").read_text()


def test_classification_plot_matches_the_articles_table():
    import matplotlib  # noqa: F401  (the test extra installs it)

    xlabel, curves = docs.plot_curves(symloss.get("bce"))
    assert [c[0] for c in curves] == ["t = 0", "t = 1"]
    for label, x, value, grad in curves:
        t = float(label.split("=")[1])
        assert 0 < x.min() < 0.05 and 0.95 < x.max() < 1
        np.testing.assert_allclose(value, -(t * np.log(x) + (1 - t) * np.log(1 - x)), rtol=1e-12)
        np.testing.assert_allclose(grad, (x - t) / (x * (1 - x)), rtol=1e-9)
        # The article's rows: -log(0.8) = 0.22 and -log(0.2) = 1.61.
        at = {0.2: np.interp(0.2, x, value), 0.8: np.interp(0.8, x, value)}
        assert round(at[0.8 if t == 1 else 0.2], 2) == 0.22
        assert round(at[0.2 if t == 1 else 0.8], 2) == 1.61


def test_logits_plot_is_against_the_logit():
    import matplotlib  # noqa: F401  (the test extra installs it)

    xlabel, curves = docs.plot_curves(symloss.get("cce_logits"))
    assert "z" in xlabel
    (_, x, v0, g0), (_, _, v1, g1) = curves
    assert x.min() < -5 and x.max() > 5
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(g1, sig - 1, atol=1e-12)  # m = 2: softmax of (0, x) is sigmoid(x)
    np.testing.assert_allclose(g0, sig, atol=1e-12)


def test_regression_plot_is_against_the_residual():
    import matplotlib  # noqa: F401  (the test extra installs it)

    xlabel, curves = docs.plot_curves(symloss.get("sse"))
    assert "residual" in xlabel
    ((_, r, value, grad),) = curves
    np.testing.assert_allclose(value, r**2 / 2, atol=1e-12)
    np.testing.assert_allclose(grad, r, atol=1e-12)


def test_without_matplotlib_the_build_works_and_says_how_to_get_plots(tmp_path, monkeypatch):
    import matplotlib  # noqa: F401  (the test extra installs it)

    out = tmp_path / "site"
    docs.build_site(out, names=["bce"], progress=False)
    assert (out / "binary_cross_entropy.svg").is_file()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    report = docs.build_site(out, names=["bce"], progress=False)
    assert report.notes == ['plots need matplotlib: pip install "symloss[plot]"']
    assert (
        "pip install &quot;symloss[plot]&quot;" in (out / "binary_cross_entropy.html").read_text()
    )
    assert not (out / "binary_cross_entropy.svg").exists()  # the stale plot is removed


# ---------------------------------------------------------------------- safe output
def test_rebuild_updates_in_place_and_rewrites_nothing_unchanged(tmp_path):
    out = tmp_path / "site"
    first = docs.build_site(out, names=["bce", "sse"], progress=False)
    assert first.written
    page = out / "binary_cross_entropy.html"
    before = page.stat()
    again = docs.build_site(out, names=["bce", "sse"], progress=False)
    assert again.written == [] and again.removed == []
    assert page.stat().st_ino == before.st_ino and page.stat().st_mtime_ns == before.st_mtime_ns
    page.write_text("edited by hand")
    third = docs.build_site(out, names=["bce", "sse"], progress=False)
    assert third.written == [page]
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_files_get_normal_permissions(tmp_path):
    out = tmp_path / "site"
    docs.build_site(out, names=["bce"], progress=False)
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "index.html").stat().st_mode & 0o777 == 0o666 & ~umask


def test_refuses_a_non_empty_directory_it_did_not_create(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(docs.UnsafeOutputError, match="--force"):
        docs.build_site(out, names=["bce"], progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    docs.build_site(out, names=["bce"], force=True, progress=False)
    assert (out / docs.MARKER).is_file() and (out / "notes.txt").read_text() == "keep me"
    docs.build_site(out, names=["sse"], progress=False)  # now it is ours: no force needed
    assert (out / "notes.txt").read_text() == "keep me"  # never listed, never removed


def test_empty_or_missing_directories_are_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    docs.build_site(tmp_path / "empty", names=["bce"], progress=False)
    docs.build_site(tmp_path / "new" / "nested", names=["bce"], progress=False)
    assert (tmp_path / "new" / "nested" / "index.html").is_file()


def test_a_file_is_not_a_site(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(docs.UnsafeOutputError, match="not a directory"):
        docs.build_site(target, progress=False)


def test_pages_no_longer_built_are_removed(tmp_path):
    out = tmp_path / "site"
    docs.build_site(out, names=["bce", "sse"], progress=False)
    report = docs.build_site(out, names=["sse"], progress=False)
    assert not (out / "binary_cross_entropy.html").exists()
    assert (out / "binary_cross_entropy.html") in report.removed
    marker = json.loads((out / docs.MARKER).read_text())
    assert "binary_cross_entropy.html" not in marker["files"] and "index.html" in marker["files"]
    docs.build_site(out, fmt="md", names=["sse"], progress=False)
    assert not (out / "_static").exists() and not (out / "index.html").exists()
    assert (out / "docs" / "index.md").is_file() and (out / "mkdocs.yml").is_file()


def test_only_files_inside_the_site_are_ever_removed(tmp_path):
    out = tmp_path / "site"
    docs.build_site(out, names=["sse"], progress=False)
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    marker = out / docs.MARKER
    data = json.loads(marker.read_text())
    data["files"] += ["../outside.txt", str(outside)]
    marker.write_text(json.dumps(data))
    report = docs.build_site(out, names=["sse"], progress=False)
    assert outside.read_text() == "not yours" and report.removed == []


def test_writes_are_atomic(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    target.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        docs.atomic_write(target, b"new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]  # no temporary left


def test_unknown_names_and_formats_are_refused(tmp_path):
    with pytest.raises(KeyError, match="unknown loss"):
        docs.build_site(tmp_path / "a", names=["nope"], progress=False)
    with pytest.raises(ValueError, match="unknown format"):
        docs.build_site(tmp_path / "b", fmt="pdf", progress=False)
    assert not (tmp_path / "b").exists()


def test_aliases_select_losses_once(tmp_path):
    report = docs.build_site(tmp_path / "s", names=["bce", "binary_cross_entropy"], progress=False)
    assert [p.name for p in report.pages] == ["index.html", "binary_cross_entropy.html"]


# ---------------------------------------------------------------------- progress
class FakeTerminal:
    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


def test_progress_is_quiet_when_stderr_is_not_a_terminal(tmp_path, capsys):
    docs.build_site(tmp_path / "s", names=["bce", "sse"])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_progress_on_a_terminal(tmp_path, monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    docs.build_site(tmp_path / "s", names=["bce", "sse"])
    assert "[1/2] binary_cross_entropy" in term.text
    assert "[2/2] sum_squared_error" in term.text
    assert term.text.endswith("\n") and "2 losses" in term.text


def test_progress_callback_sees_every_loss(tmp_path, monkeypatch):
    monkeypatch.setattr(docs, "plot_svg", lambda loss: None)  # plots are tested elsewhere
    seen = []
    docs.build_site(
        tmp_path / "s", progress=lambda done, total, name: seen.append((done, total, name))
    )
    total = len(symloss.names())
    assert seen == [(pos, total, name) for pos, name in enumerate(symloss.names(), 1)]


@pytest.mark.skipif(sys.platform == "win32", reason="pty")
def test_progress_through_a_real_terminal(tmp_path):
    import pty

    leader, follower = pty.openpty()
    code = f"import symloss.docs as d; d.build_site({str(tmp_path / 's')!r}, names=['bce'])"
    proc = subprocess.run(
        [sys.executable, "-c", code], stderr=follower, stdout=subprocess.PIPE, timeout=120
    )
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"[1/1] binary_cross_entropy" in output


# ---------------------------------------------------------------------- CLI
def parser():
    from symloss.cli.common import Parser as _Parser

    p = _Parser(prog="symloss")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    docs_cli.add_cli(sub)
    return p


def run(*argv):
    return docs_cli.run_cli(parser().parse_args(list(argv)))


def test_cli_docs(tmp_path, capsys):
    assert run("docs", "--out", str(tmp_path / "s"), "--losses", "bce", "cce") == 0
    assert (tmp_path / "s" / "categorical_cross_entropy.html").is_file()
    assert run("docs", "--out", str(tmp_path / "m"), "--format", "md", "--losses", "sse") == 0
    assert (tmp_path / "m" / "docs" / "index.md").is_file()
    assert capsys.readouterr().err == ""


def test_cli_docs_errors_are_usage_errors(tmp_path):
    from symloss import UsageError

    with pytest.raises(UsageError, match="unknown loss 'nope'"):
        run("docs", "--out", str(tmp_path / "s"), "--losses", "nope")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(UsageError, match="use --force"):
        run("docs", "--out", str(tmp_path / "busy"))
    assert run("docs", "--out", str(tmp_path / "busy"), "--force", "--losses", "sse") == 0
    with pytest.raises(UsageError):
        run("docs", "--out", str(tmp_path / "s"), "--format", "pdf")


def test_cli_docs_reports_missing_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert run("docs", "--out", str(tmp_path / "s"), "--losses", "sse") == 0
    assert (
        capsys.readouterr().err == 'symloss: plots need matplotlib: pip install "symloss[plot]"\n'
    )


def test_symloss_docs_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "symloss", "docs", "--out", str(tmp_path / "s"), "--losses", "bce"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # not a terminal: no progress
    assert (tmp_path / "s" / "index.html").is_file()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    out = subprocess.run(
        [sys.executable, "-m", "symloss", "docs", "--out", str(busy)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--force" in out.stderr


def test_add_cli_uses_the_given_subparsers():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    docs_cli.add_cli(sub)
    args = p.parse_args(["export", "bce", "--derivation", "--style", "article", "-o", "h.tex"])
    assert (args.names, args.derivation, args.style, args.output) == (
        ["bce"],
        True,
        "article",
        "h.tex",
    )
    args = p.parse_args(["docs", "--out", "d", "--losses", "bce", "sse", "--force"])
    assert (args.out, args.format, args.losses, args.force) == ("d", "html", ["bce", "sse"], True)


def test_site_report_paths(tmp_path):
    report = docs.build_site(tmp_path / "s", names=["bce"], progress=False)
    assert report.out_dir == Path(tmp_path / "s")
    assert all(p.is_file() for p in report.written)


def sections(text: str) -> dict[str, str]:
    """A page's text under each ``<h2>`` heading, by heading."""
    parts = re.split(r"<h2>(.*?)</h2>", text)
    return dict(zip(parts[1::2], parts[2::2]))


@registry_params()
def test_each_section_holds_its_own_formula(loss, html_site):
    out, _ = html_site
    under = {
        k: formulas_in_html(v) for k, v in sections((out / f"{loss.name}.html").read_text()).items()
    }
    for heading, part in (("Definition", "loss"), ("Gradient", "gradient"), ("Hessian", "hessian")):
        shown = equation_formula("", *loss.equation(part)).shown
        assert shown in under[heading], (heading, part)
        others = [h for h in ("Definition", "Gradient", "Hessian") if h != heading]
        assert not any(shown in under[h] for h in others)

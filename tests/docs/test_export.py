"""The LaTeX handout: its content, the export command, and a real pdflatex compile.

``pdflatex`` comes from Debian's ``texlive-latex-base`` (``.ci/run`` installs it).
Without it the compile tests skip, except where ``SYMLOSS_REQUIRE_PDFLATEX=1`` (as in
CI), where they fail.  Font generation is switched off (``MKTEXPK=0``), so a document
that needs a font outside the installed packages fails instead of building one.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import registry_params

import symloss
import symloss.docs as docs
from symloss.cli import docs as docs_cli

PDFLATEX = shutil.which("pdflatex")
REQUIRED = os.environ.get("SYMLOSS_REQUIRE_PDFLATEX") == "1"


def compile_tex(text: str, tmp_path, name="handout"):
    """Compile *text*; return the log.  Fails the test on any error."""
    if PDFLATEX is None:
        if REQUIRED:
            pytest.fail("pdflatex is required here (SYMLOSS_REQUIRE_PDFLATEX=1)")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base)")
    src = tmp_path / f"{name}.tex"
    src.write_text(text, encoding="utf-8")
    env = {**os.environ, "MKTEXPK": "0", "MKTEXTFM": "0", "MKTEXMF": "0"}
    proc = subprocess.run(
        [PDFLATEX, "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape", src.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        env=env,
    )
    log = (tmp_path / f"{name}.log").read_text(errors="replace")
    problems = [
        line
        for line in log.splitlines()
        if line.startswith("!")
        or "Undefined control sequence" in line
        or "LaTeX Error" in line
        or "Missing character" in line
        or re.search(r"(LaTeX|Package \w+) Warning", line)
    ]
    assert proc.returncode == 0 and problems == [], "\n".join(problems) or proc.stdout[-3000:]
    pdf = tmp_path / f"{name}.pdf"
    assert pdf.is_file() and pdf.read_bytes()[:5] == b"%PDF-"
    return log


# ---------------------------------------------------------------------- content
def test_standalone_document():
    tex = docs.export_tex(["bce", "cce_logits"], None)
    assert tex.startswith("\\documentclass")
    assert tex.count("\\begin{document}") == 1 and tex.rstrip().endswith("\\end{document}")
    assert tex.count("\\section{") == 2
    assert "\\usepackage{amsmath,amssymb}" in tex
    for L in (symloss.get("bce"), symloss.get("cce_logits")):
        assert L.latex("standard") in tex
        assert L.latex(part="gradient") in tex
    # The logits loss also gives the gradient by the prediction, and its constraint.
    assert symloss.get("cce").latex(part="gradient") in tex
    assert "each target row sums to 1" in tex
    assert "\\subsection*{Derivation}" not in tex


@registry_params()
def test_derivation_steps_are_in_the_handout(loss):
    tex = docs.export_tex([loss.name], None, derivation=True)
    steps = loss.derivation()  # with the kernel's step, as the handout prints it
    # one align* per step in the derivation (a long formula above it may use one too)
    assert tex.split("\\subsection*{Derivation}")[1].count("\\begin{align*}") == len(steps)
    for step in steps:
        assert step.latex(aligned=True) in tex
        if step.constraint is not None:
            assert step.constraint_latex() in tex


def test_article_style():
    tex = docs.export_tex(["bce"], None, style="article", derivation=True)
    assert symloss.get("bce").latex("article") in tex
    assert r"log\,y_i" in tex and "\\log" not in tex


def test_names_in_order_without_repeats_and_all_by_default():
    tex = docs.export_tex(["sse", "bce", "binary_cross_entropy"], None)
    titles = re.findall(r"\\section\{(.*?)\}", tex)
    assert titles == [docs.tex_text(symloss.get(n).title) for n in ("sse", "bce")]
    everything = docs.export_tex(None, None)
    assert everything.count("\\section{") == len(symloss.names())


def test_written_atomically_to_a_file(tmp_path):
    out = tmp_path / "handout.tex"
    text = docs.export_tex(["bce"], out)
    assert out.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout.tex"]


def test_bad_style_and_names_are_refused():
    with pytest.raises(ValueError, match="unknown style"):
        docs.export_tex(["bce"], None, style="fancy")
    with pytest.raises(KeyError, match="unknown loss"):
        docs.export_tex(["nope"], None)


def test_text_is_escaped_for_latex():
    assert docs.tex_text("a_b & 50% #1 {x} $y ~ ^") == (
        r"a\_b \& 50\% \#1 \{x\} \ensuremath{\$}y \~{} \^{}"
    )
    assert (
        docs.tex_text("σ ≥ 0 – “quoted”")
        == r"\ensuremath{\sigma} \ensuremath{\geq} 0 -- ``quoted''"
    )
    assert docs.tex_text("漢") == "[U+6F22]"


# ---------------------------------------------------------------------- CLI
def run(*argv):
    from test_docs import parser

    return docs_cli.run_cli(parser().parse_args(list(argv)))


def test_cli_export_to_stdout_and_file(tmp_path, capsys):
    assert run("export", "bce", "--format", "tex") == 0
    out = capsys.readouterr().out
    assert out.startswith("\\documentclass") and "\\begin{align*}" not in out
    assert (
        run(
            "export",
            "cce_logits",
            "--derivation",
            "--style",
            "article",
            "-o",
            str(tmp_path / "h.tex"),
        )
        == 0
    )
    text = (tmp_path / "h.tex").read_text()
    assert "\\begin{align*}" in text and "log(" in text and "\\log" not in text
    assert capsys.readouterr().out == ""
    assert run("export", "--all", "-o", str(tmp_path / "all.tex")) == 0
    assert (tmp_path / "all.tex").read_text().count("\\section{") == len(symloss.names())


def test_cli_export_errors():
    from symloss import UsageError

    with pytest.raises(UsageError, match="unknown loss"):
        run("export", "nope")
    with pytest.raises(UsageError, match="not both"):
        run("export", "bce", "--all")
    with pytest.raises(UsageError, match="needs a loss name"):
        run("export")
    with pytest.raises(UsageError):
        run("export", "bce", "--format", "pdf")


# ---------------------------------------------------------------------- pdflatex
@pytest.mark.parametrize("style", ["standard", "article"])
@registry_params()
def test_pdflatex_compiles_every_loss(loss, style, tmp_path):
    compile_tex(docs.export_tex([loss.name], None, derivation=True, style=style), tmp_path)


@pytest.mark.parametrize("style", ["standard", "article"])
def test_pdflatex_compiles_the_whole_catalog(style, tmp_path):
    tex = docs.export_tex(None, None, derivation=True, style=style)
    log = compile_tex(tex, tmp_path)
    assert "Output written on handout.pdf" in log
    # Every character of the notes was typeset, none left as a [U+XXXX] placeholder.
    assert "[U+" not in tex, tex[tex.index("[U+") - 200 : tex.index("[U+") + 50]
    # Long formulas are broken across lines: nothing runs into the margin.
    overfull = [line for line in log.splitlines() if line.startswith("Overfull \\hbox")]
    assert not overfull, overfull


def test_pdflatex_compiles_escaped_text(tmp_path):
    nasty = "a_b & 50% #1 {x} $y ~ ^ < > | \\ “q” – — … × ½ ≤ σ Δ Α ² ₖ é Ł 漢"
    text = docs.export_tex(["sse"], None).replace(
        "\\begin{document}", "\\begin{document}\n" + docs.tex_text(nasty) + "\n"
    )
    compile_tex(text, tmp_path)


def test_symloss_export_command(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "symloss", "export", "bce_logits", "--format", "tex", "--derivation",
         "-o", str(tmp_path / "handout.tex")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    compile_tex((tmp_path / "handout.tex").read_text(), tmp_path, name="compiled")


def _read_back(panel: str):
    """Each segment end of one panel in data units, with the data size of 0.02 mm in x."""
    m = re.search(r"% map x (\S+) (\S+) y (\S+) (\S+) at (\S+)", panel)
    x0, x1, y0, y1, dx = map(float, m.groups())
    ends = re.findall(r"\\qbezier\(([-\d.]+),([-\d.]+)\)", panel)
    sx, sy = (x1 - x0) / 62.0, (y1 - y0) / 34.0
    return [(x0 + (float(a) - dx) * sx, y0 + float(b) * sy, 0.02 * sx, 0.02 * sy) for a, b in ends]


def _on_curve(points, curves):
    """Every few points lie on one of *curves* (allowing the 0.01 mm rounding of print)."""
    assert len(points) > 100
    for x, y, ex, ey in points[::13]:
        near = [f(x + d) for f in curves for d in (-ex, 0.0, ex)]
        assert min(abs(y - v) for v in near) < ey + max(
            abs(v - f(x)) for f in curves for v in (f(x - ex), f(x + ex))
        ), (x, y)


def test_handout_has_a_picture_per_loss_whose_points_are_the_loss():
    tex = docs.export_tex(None, None)
    assert tex.count("\\begin{picture}") == tex.count("\\section{") > 10
    # BCE by hand: E = -log(y) for t = 1, -log(1 - y) for t = 0;
    # dE/dy = -1/y for t = 1, 1/(1 - y) for t = 0.
    panels = docs.export_tex(["bce"], None).split("% map")[1:]
    _on_curve(_read_back("% map" + panels[0]), [lambda x: -math.log(x), lambda x: -math.log1p(-x)])
    _on_curve(_read_back("% map" + panels[1]), [lambda x: -1 / x, lambda x: 1 / (1 - x)])

r"""Formula docs and teaching exports, generated from the registry.

Layer: the top of the library, below only :mod:`symloss.cli`.  It may import every
other subpackage (core, the registry, printing, symbolic, numeric) and never the CLI.
Modules: :mod:`~symloss.docs.sheet` (what a page shows, from a Loss),
:mod:`~symloss.docs.plots` (matplotlib, optional), :mod:`~symloss.docs.html` and
:mod:`~symloss.docs.markdown` (one page each), :mod:`~symloss.docs.tex` (the
handout), :mod:`~symloss.docs.files` (safe writing), :mod:`~symloss.docs.site` (the
build), :mod:`~symloss.docs.table` (the article's numeric table),
:mod:`~symloss.docs.reference` (snippet, worked example, equivalent calls, links),
:mod:`~symloss.docs.prose` (plain-text formulas of the conventions as LaTeX),
:mod:`~symloss.docs.navigation` (groups, search index, ``mkdocs.yml``), ``static/``
(stylesheet, scripts and the bundled KaTeX).

Two products, both written from each registered :class:`~symloss.Loss` and nothing else:

* :func:`build_site` writes one page per loss plus an index by group, as HTML (with
  an offline search) or as an MkDocs project (``mkdocs.yml`` and ``docs/``).  A page
  has the definition (in the source article's notation for the article's own losses,
  and in standard notation for all), a runnable snippet with a worked example, the
  gradient by the prediction and, for a loss on logits, by the logits, the Hessian,
  the step-by-step derivation, plots of the loss and its gradient (and of the sweeps
  a parameter declares), the conventions, domains and constraints, the equivalent
  calls in other libraries, linked references, and the LaTeX source in a copy-able
  block.
* :func:`export_tex` writes a standalone LaTeX handout (definitions, gradients,
  Hessians, the article's table and, optionally, the derivations) that ``pdflatex``
  compiles with only the packages of
  Debian's ``texlive-latex-base`` (amsmath, amssymb, geometry).

How the HTML shows math
-----------------------
The pages render their formulas with **KaTeX, bundled** under ``static/katex`` (MIT
licence, shipped as package data and copied next to the pages): no CDN, no network.
KaTeX was chosen over emitting MathML because the pages must show exactly the LaTeX
that a reader copies from them, in both notations: the article's (bare ``log``,
``\,`` spacing) and the standard one.  KaTeX typesets that very source, while MathML
would need a second, lossy translation of every formula (SymPy's MathML printer works
from the expression, so it cannot reproduce the article's notation).  KaTeX also flags
a formula it cannot typeset with a ``katex-error`` element, which the browser test
counts.  The cost is 558 kB of package data (KaTeX 0.19.1: the minified script,
273 kB, its stylesheet, 23 kB, and only the 20 ``woff2`` fonts, 260 kB) and
JavaScript: without it a page shows the LaTeX source of each formula instead.

Markdown pages use the delimiters of ``pymdownx.arithmatex`` (``\(...\)`` inline,
``\[...\]`` in blocks).  The generated ``mkdocs.yml`` enables them with::

    markdown_extensions:
      - pymdownx.arithmatex:
          generic: true

and leaves the math renderer to the site's choice (``extra_javascript``).

Plots need matplotlib (``pip install "symloss[plot]"``).  Without it the pages are
built all the same, each saying how to get its plot, and :class:`SiteReport` carries
the hint.  Plots are drawn on a bare ``matplotlib.figure.Figure`` (no pyplot, so no
GUI backend and no global state) and saved as SVG with fixed metadata, so that a
rebuild gives identical files.

Writing is safe: every file is written to a temporary file in the same directory and
moved into place with :func:`os.replace`; unchanged files are left alone; files that
an earlier build wrote and this one does not are removed.  A marker file
(``.symloss-site``) records what the build wrote; a non-empty directory without it is
refused unless ``force=True``.

Examples
--------
>>> import symloss.docs
>>> tex = symloss.docs.export_tex(["bce"], None)
>>> tex.startswith(r"\documentclass")
True
>>> r"\frac{\partial E}{\partial y_{i}}" in tex
True
"""

from symloss.docs.files import MARKER, PLOT_HINT, SiteReport, atomic_write
from symloss.docs.plots import plot_curves, plot_svg
from symloss.docs.sheet import Formula, Sheet, is_article_loss, sheet
from symloss.docs.site import FORMATS, build_site
from symloss.docs.tex import export_tex, tex_text
from symloss.errors import UnsafeOutputError

__all__ = [
    "FORMATS",
    "MARKER",
    "PLOT_HINT",
    "Formula",
    "Sheet",
    "SiteReport",
    "UnsafeOutputError",
    "atomic_write",
    "build_site",
    "export_tex",
    "is_article_loss",
    "plot_curves",
    "plot_svg",
    "sheet",
    "tex_text",
]

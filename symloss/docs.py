r"""Formula docs and teaching exports, generated from the registry.

Two products, both written from each registered :class:`~symloss.Loss` and nothing else:

* :func:`build_site` writes one page per loss plus an index, as HTML or as Markdown
  for MkDocs.  A page has the definition (in the source article's notation for the
  article's own losses, and in standard notation for all), the gradient by the
  prediction and, for a loss on logits, by the logits, the Hessian, the step-by-step
  derivation, the conventions, domains, constraints and references, the LaTeX source
  in a copy-able block, and a plot of the loss and its gradient.
* :func:`export_tex` writes a standalone LaTeX handout (definitions, gradients and,
  optionally, the derivations) that ``pdflatex`` compiles with only the packages of
  Debian's ``texlive-latex-base`` (amsmath, amssymb, geometry).

How the HTML shows math
-----------------------
The pages render their formulas with **KaTeX, bundled** under ``_static/katex`` (MIT
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
``\[...\]`` in blocks).  An ``mkdocs.yml`` enables them with::

    markdown_extensions:
      - pymdownx.arithmatex:
          generic: true

plus a math renderer of the site's choice in ``extra_javascript``.

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

from __future__ import annotations

import html
import io
import json
import math
import os
import secrets
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import sympy as sp

from . import __version__
from ._core import Loss, get
from ._core import names as registered_names
from ._derivation import E, Step, derivation
from ._errors import SymlossError
from ._printing import latex_expr

__all__ = [
    "MARKER",
    "PLOT_HINT",
    "SiteReport",
    "UnsafeOutputError",
    "add_cli",
    "build_site",
    "export_tex",
    "run_cli",
]

#: The marker file that says "symloss built this directory".
MARKER = ".symloss-site"

#: How to get the plots.
PLOT_HINT = 'pip install "symloss[plot]"'

FORMATS = ("html", "md")

ProgressSpec = bool | Callable[[int, int, str], None] | None


class UnsafeOutputError(SymlossError, FileExistsError):
    """The output directory is not empty and was not built by symloss."""


@dataclass
class SiteReport:
    """What :func:`build_site` did.

    Attributes
    ----------
    out_dir : Path
        The site's directory.
    pages : list of Path
        The index followed by the loss pages, in name order.
    written : list of Path
        Files created or changed by this build (unchanged files are not rewritten).
    removed : list of Path
        Files of an earlier build that this build no longer produces.
    notes : list of str
        Things the user should know, e.g. how to install matplotlib for the plots.
    """

    out_dir: Path
    pages: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ============================================================================ content
@dataclass(frozen=True)
class Formula:
    """One displayed formula: a label for people and its LaTeX."""

    label: str
    tex: str


@dataclass(frozen=True)
class Sheet:
    """Everything a page says about one loss, independent of the output format."""

    loss: Loss
    definitions: tuple[Formula, ...]
    gradients: tuple[Formula, ...]
    hessians: tuple[Formula, ...]
    hessian_note: str
    steps: tuple[Step, ...]
    domains: tuple[tuple[str, str, str, str], ...]  # (array, role, LaTeX set, description)
    constraints: tuple[tuple[str, str, str, bool], ...]  # (name, LaTeX, description, used)
    params: tuple[tuple[str, str, str, str, str], ...]  # (LaTeX, name, value, domain, text)
    classification: bool

    @property
    def reduction(self) -> str:
        """The default reduction and the others the loss accepts, in words."""
        loss = self.loss
        others = [r for r in loss.reductions if r != loss.reduction]
        text = f"Reduction: {loss.reduction} by default"
        return text + (f" (also {', '.join(others)})." if others else ".")

    @property
    def formulas(self) -> tuple[Formula, ...]:
        return self.definitions + self.gradients + self.hessians

    def source(self) -> str:
        """The LaTeX of every formula on the page, each under a ``%`` comment."""
        blocks = [f"% {f.label}\n{f.tex}" for f in self.formulas]
        for pos, step in enumerate(self.steps, 1):
            blocks.append(f"% Derivation, step {pos}: {step.title}\n{step.latex()}")
        return "\n\n".join(blocks) + "\n"


def is_article_loss(loss: Loss) -> bool:
    """True for the source article's own losses (not their compositions)."""
    from .losses._article import ARTICLE

    return ARTICLE in loss.references and loss.composition is None


def sheet(loss: Loss) -> Sheet:
    """The format-independent content of the page of *loss*."""
    pred = str(loss.pred.label)
    definitions = []
    if is_article_loss(loss):
        definitions.append(Formula("Definition, in the article's notation", loss.latex("article")))
        definitions.append(Formula("Definition, in standard notation", loss.latex("standard")))
    else:
        definitions.append(Formula("Definition, in standard notation", loss.latex("standard")))

    comp = loss.composition
    gradients = []
    if comp is not None:
        base = get(comp.base)
        y = str(comp.element.base.label)
        definitions.append(
            Formula(
                f"The prediction {y} is the {comp.name} of the logits {pred}",
                latex_expr(sp.Eq(comp.element, comp.value, evaluate=False)),
            )
        )
        gradients.append(Formula(f"Gradient by the prediction {y}", base.latex(part="gradient")))
        gradients.append(Formula(f"Gradient by the logits {pred}", loss.latex(part="gradient")))
    else:
        gradients.append(Formula(f"Gradient by the prediction {pred}", loss.latex(part="gradient")))
    used = loss.constraints_used()
    if used:
        general = sp.Eq(sp.Derivative(E, loss.element), loss.general_gradient(), evaluate=False)
        gradients.append(
            Formula(
                "Gradient without the constraint " + ", ".join(c.name for c in used),
                latex_expr(general),
            )
        )

    by = "logits" if comp is not None else "prediction"
    hessians = (Formula(f"Hessian by the {by} {pred}", loss.latex(part="hessian")),)
    if loss.separable:
        hessian_note = (
            "The Hessian is diagonal: this is its diagonal element, and every other entry is 0."
        )
    else:
        hessian_note = (
            f"This is the block of one sample, coupled across the {loss.input_indices[-1][1]} "
            "entries of its row; blocks of different samples are 0."
        )

    roles = {
        str(loss.pred.label): "logits" if comp is not None else "prediction",
        str(loss.target.label): "target",
    }
    roles.update({str(b.label): "input, by keyword" for b in loss.extra_inputs})
    domains = []
    for label, dom in loss.domains.items():
        role = roles.get(label, "")
        tex = dom.latex()
        if dom.closure is not None and dom.closure != dom.set:
            tex += rf" \quad (\text{{accepted: }} {sp.latex(dom.closure)})"
        domains.append((label, role, tex, dom.description))
    constraints = tuple((c.name, c.latex(), c.description, c in used) for c in loss.constraints)
    values = loss.param_values
    params = tuple(
        (
            latex_expr(p.symbol.label if isinstance(p.symbol, sp.IndexedBase) else p.symbol),
            p.name,
            repr(values[p.name]),
            sp.latex(p.domain) if p.domain is not None else "",
            p.description,
        )
        for p in loss.params
    )
    return Sheet(
        loss=loss,
        definitions=tuple(definitions),
        gradients=tuple(gradients),
        hessians=hessians,
        hessian_note=hessian_note,
        steps=tuple(derivation(loss)),
        domains=tuple(domains),
        constraints=constraints,
        params=params,
        classification=_is_classification(loss),
    )


# ============================================================================ plots
def _is_classification(loss: Loss) -> bool:
    """A target that is a class (a finite set, or 0/1 with soft labels between)."""
    dom = loss.domains.get(str(loss.target.label))
    if dom is None:
        return False
    return isinstance(dom.set, sp.FiniteSet) or dom.set == sp.Interval(0, 1)


def _classes(loss: Loss) -> list[float]:
    dom = loss.domains[str(loss.target.label)]
    if isinstance(dom.set, sp.FiniteSet):
        return [float(v) for v in dom.set]
    return [0.0, 1.0]


def _domain_set(loss: Loss, label: str) -> sp.Set:
    dom = loss.domains.get(label)
    return dom.set if dom is not None else sp.Interval(-sp.oo, sp.oo)


def _typical(loss: Loss, label: str, interior: bool = False) -> float:
    """A plain value for array *label*: 1, else 0 or 1/2, inside its domain.

    With *interior*, a value on the domain's boundary (0 for a non-negative target,
    where some losses have a special case) is passed over.
    """
    s = _domain_set(loss, label)
    for v in (1.0, 0.0, 0.5):
        if s.contains(v) is sp.true and not (interior and v in (s.inf, s.sup)):
            return v
    lo, hi = float(s.inf), float(s.sup)
    if math.isfinite(lo) and math.isfinite(hi):
        return (lo + hi) / 2
    return lo + 1.0 if math.isfinite(lo) else hi - 1.0


def _sweep(loss: Loss, centre: float, half_width: float, count: int = 201) -> np.ndarray:
    """Points of the prediction's domain within *half_width* of *centre*.

    Ends that are boundaries of the domain are kept 1 % inside, where the loss and its
    gradient are finite.
    """
    s = _domain_set(loss, str(loss.pred.label))
    inf, sup = float(s.inf), float(s.sup)
    lo, hi = max(centre - half_width, inf), min(centre + half_width, sup)
    if lo >= hi:  # the window misses the domain: start at its lower end instead
        lo, hi = inf, inf + 2 * half_width
    pad = 0.01 * (hi - lo)
    return np.linspace(lo + pad * (lo == inf), hi - pad * (hi == sup), count)


def plot_curves(loss: Loss) -> tuple[str, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
    """The data of the plot: x-axis label and ``(label, x, value, gradient)`` curves.

    Each point is one sample (``n = 1``) evaluated with the loss's own kernels.  A
    classification loss is drawn against its input for each class (``t = 0`` and
    ``t = 1``, as in the article's table); a regression loss against the residual
    ``y - t``.  A loss over class rows (one-hot targets) uses ``m = 2`` classes and
    sweeps the input of class 2, the other class getting ``1 - y`` (or logit 0); any
    other loss coupled across a row uses rows of two entries, the first equal in
    prediction and target.  Extra inputs get a plain value of their domain (e.g. 1).
    Points where the loss refuses the input are NaN (gaps in the curve).
    """
    pred = str(loss.pred.label)
    ndim = len(loss.input_indices)
    one_hot_rows = ndim == 2 and any(c.name == "one_hot" for c in loss.constraints)
    paired_rows = ndim == 2 and not loss.separable and not one_hot_rows
    classification = _is_classification(loss)
    other = _typical(loss, str(loss.target.label))
    probability = _domain_set(loss, pred).is_subset(sp.Interval(0, 1))

    def case(x: float, t: float) -> tuple[np.ndarray, np.ndarray]:
        if one_hot_rows:
            return np.array([[1.0 - x if probability else 0.0, x]]), np.array([[1.0 - t, t]])
        if paired_rows:
            return np.array([[other, x]]), np.array([[other, t]])
        shape = (1,) * ndim
        return np.full(shape, x), np.full(shape, t)

    where = (0, 1) if ndim == 2 and (one_hot_rows or paired_rows) else (0,) * ndim
    curves = []
    if classification:
        half = 6.0 if loss.composition is not None else 3.0
        x = _sweep(loss, 0.0 if not probability else 0.5, half)
        for c in _classes(loss):
            value, grad = _evaluate(loss, x, lambda v, c=c: case(v, c), where)
            curves.append((f"t = {c:g}", x, value, grad))
        sub = "{i2}" if where == (0, 1) else ("{ij}" if ndim == 2 else "i")
        return f"${pred}_{sub}$", curves

    t0 = _typical(loss, str(loss.target.label), interior=True)
    x = _sweep(loss, t0, 3.0)
    value, grad = _evaluate(loss, x, lambda v: case(v, t0), where)
    curves.append((f"t = {t0:g}", x - t0, value, grad))
    return f"residual ${pred} - t$", curves


def _evaluate(loss, x, make, where):
    extra = {}
    value = np.full(x.shape, np.nan)
    grad = np.full(x.shape, np.nan)
    with np.errstate(all="ignore"):
        for pos, v in enumerate(x):
            p, t = make(float(v))
            if not extra:
                extra = {
                    str(b.label): np.full(p.shape, _typical(loss, str(b.label)))
                    for b in loss.extra_inputs
                }
            try:
                value[pos] = np.sum(loss(p, t, **extra))
                grad[pos] = loss.grad(p, t, **extra)[where]
            except ValueError:  # outside the domain: a gap in the curve
                continue
    value[~np.isfinite(value)] = np.nan
    grad[~np.isfinite(grad)] = np.nan
    return value, grad


def plot_svg(loss: Loss) -> bytes | None:
    """The plot of *loss* and its gradient as SVG, or None when matplotlib is missing."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        return None
    xlabel, curves = plot_curves(loss)
    pred = str(loss.pred.label)
    sub = "{ij}" if len(loss.input_indices) == 2 else "i"
    style = {
        "svg.hashsalt": "symloss",
        "svg.fonttype": "path",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
    with matplotlib.rc_context(style):
        fig = Figure(figsize=(7.2, 2.8))
        # Fixed margins: constrained layout would double the time of each plot.
        fig.subplots_adjust(left=0.07, right=0.985, bottom=0.17, top=0.9, wspace=0.22)
        ax_value, ax_grad = fig.subplots(1, 2)
        for label, x, value, grad in curves:
            ax_value.plot(x, value, label=label, linewidth=1.6)
            ax_grad.plot(x, grad, label=label, linewidth=1.6)
        ax_value.set_title("loss $E$ (one sample)")
        ax_grad.set_title(rf"gradient $\partial E / \partial {pred}_{{{sub}}}$")
        for ax in (ax_value, ax_grad):
            ax.set_xlabel(xlabel)
            ax.grid(True, linewidth=0.4, alpha=0.5)
            ax.axhline(0, color="0.6", linewidth=0.6)
            if len(curves) > 1:
                ax.legend(frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": "symloss"})
    return buf.getvalue()


def _plot_caption(sheet: Sheet) -> str:
    loss = sheet.loss
    ndim = len(loss.input_indices)
    if ndim == 2 and any(c.name == "one_hot" for c in loss.constraints):
        return (
            "One sample with m = 2 classes, swept along the input of class 2; "
            "t = 1 means the sample is of class 2."
        )
    if ndim == 2 and not loss.separable:
        return "One sample: a row of two entries, the first equal in prediction and target."
    if sheet.classification:
        return "One sample, for each class of the target (as in the article's table)."
    return "One sample, against the residual between prediction and target."


# ============================================================================ writing
class _Output:
    """Atomic, in-place writes into a directory that symloss owns (see :data:`MARKER`)."""

    def __init__(self, out_dir: Path, force: bool):
        self.root = Path(out_dir)
        if self.root.exists() and not self.root.is_dir():
            raise UnsafeOutputError(f"{self.root} exists and is not a directory")
        marker = self.root / MARKER
        self.previous: list[str] = []
        if marker.is_file():
            try:
                self.previous = list(json.loads(marker.read_text("utf-8")).get("files", []))
            except (ValueError, AttributeError):
                self.previous = []
        elif self.root.is_dir() and any(self.root.iterdir()) and not force:
            raise UnsafeOutputError(
                f"{self.root} is not empty and was not built by symloss "
                f"(no {MARKER} file); use force=True (--force) to write into it anyway"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []

    def mark(self, files: Iterable[str], fmt: str) -> None:
        data = {"generator": f"symloss {__version__}", "format": fmt, "files": sorted(files)}
        self.write(MARKER, json.dumps(data, indent=1) + "\n", record=False)

    def write(self, rel: str, data: str | bytes, record: bool = True) -> Path:
        path = self.root / rel
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if path.is_file() and not path.is_symlink() and path.read_bytes() == raw:
            return path
        atomic_write(path, raw)
        if record:
            self.written.append(path)
        return path

    def remove_stale(self, keep: set[str]) -> list[Path]:
        removed = []
        root = self.root.resolve()
        for rel in self.previous:
            if rel in keep or rel == MARKER:
                continue
            path = self.root / rel
            inside = root in path.resolve().parents
            if inside and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed.append(path)
                for parent in path.parents:  # drop directories that only held it
                    if parent == self.root or root not in parent.resolve().parents:
                        break
                    if any(parent.iterdir()):
                        break
                    parent.rmdir()
        return removed


def atomic_write(path: Path, data: bytes) -> None:
    """Write *data* to *path* through a temporary file in the same directory.

    Readers see the old file or the new one, never a partial one.  The new file gets
    the usual permissions (``0o666`` less the umask), not a temporary file's ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class _Progress:
    """``[ 3/35] name`` on one rewritten line of a terminal's stderr; silent otherwise."""

    def __init__(self, spec: ProgressSpec, total: int):
        self.total = total
        self.callback = spec if callable(spec) else None
        if spec is None:
            self.tty = _isatty(sys.stderr)
        else:
            self.tty = bool(spec) and self.callback is None
        self.width = 0

    def __call__(self, done: int, name: str) -> None:
        if self.callback is not None:
            self.callback(done, self.total, name)
        elif self.tty:
            text = f"[{done:>{len(str(self.total))}}/{self.total}] {name}"
            sys.stderr.write("\r" + text.ljust(self.width))
            sys.stderr.flush()
            self.width = len(text)

    def close(self, message: str) -> None:
        if self.tty:
            sys.stderr.write("\r" + message.ljust(self.width) + "\n")
            sys.stderr.flush()


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


# ============================================================================ site
def _select(names: Iterable[str] | None) -> list[Loss]:
    if names is None:
        return [get(n) for n in registered_names()]
    chosen: dict[str, Loss] = {}
    for n in names:
        loss = get(n)
        chosen.setdefault(loss.name, loss)
    return [chosen[k] for k in sorted(chosen)]


def _static_files(fmt: str) -> list[tuple[str, bytes]]:
    if fmt != "html":
        return []
    root = resources.files("symloss") / "_static"
    files = []

    def walk(node, prefix):
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            rel = f"{prefix}/{child.name}"
            if child.is_dir():
                walk(child, rel)
            elif not child.name.endswith(".md"):
                files.append((rel, child.read_bytes()))

    walk(root, "_static")
    return files


def build_site(
    out_dir: str | os.PathLike,
    fmt: str = "html",
    names: Sequence[str] | None = None,
    force: bool = False,
    progress: ProgressSpec = None,
) -> SiteReport:
    """Build the formula docs: one page per loss and an index.

    Parameters
    ----------
    out_dir : path
        The site's directory.  It is created if needed.  If it exists, it must be
        empty or built by symloss before (it holds :data:`MARKER`); the build then
        updates it in place.
    fmt : {"html", "md"}
        HTML pages with bundled KaTeX, or Markdown for MkDocs (arithmatex delimiters).
    names : sequence of str, optional
        Losses to include (names or aliases); all registered losses by default.
    force : bool
        Write into a non-empty directory that symloss did not build.
    progress : bool or callable, optional
        ``None`` shows progress on stderr when it is a terminal; ``True``/``False``
        force it on or off; a callable is called as ``progress(done, total, name)``.

    Returns
    -------
    SiteReport

    Raises
    ------
    UnsafeOutputError
        For a non-empty directory without the marker (and ``force=False``).
    KeyError
        For an unknown loss name.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    losses = _select(names)
    out = _Output(Path(out_dir), force)
    ext = fmt
    pages = {loss.name: f"{loss.name}.{ext}" for loss in losses}
    static = _static_files(fmt)
    plan = {f"index.{ext}", *pages.values(), *(rel for rel, _ in static)}
    plan |= {f"{loss.name}.svg" for loss in losses}
    out.mark(set(out.previous) | plan, fmt)  # a build cut short can be re-run in place

    report = SiteReport(out_dir=out.root)
    for rel, data in static:
        out.write(rel, data)
    tick = _Progress(progress, len(losses))
    sheets = []
    plots_missing = False
    for done, loss in enumerate(losses, 1):
        tick(done, loss.name)
        s = sheet(loss)
        sheets.append(s)
        svg = plot_svg(loss)
        plot = None
        if svg is None:
            plots_missing = True
            plan.discard(f"{loss.name}.svg")
        else:
            plot = f"{loss.name}.svg"
            out.write(plot, svg)
        render = _html_page if fmt == "html" else _md_page
        report.pages.append(out.write(pages[loss.name], render(s, plot, pages)))
    index = (_html_index if fmt == "html" else _md_index)(sheets, pages)
    report.pages.insert(0, out.write(f"index.{ext}", index))
    report.removed = out.remove_stale(plan)
    out.mark(plan, fmt)
    report.written = out.written
    if plots_missing:
        report.notes.append(f"plots need matplotlib: {PLOT_HINT}")
    tick.close(f"symloss docs: {len(losses)} losses in {out.root}")
    return report


# ---------------------------------------------------------------------------- HTML
DISPLAY_STYLE = "\\displaystyle "


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _math(tex: str, display: bool = True) -> str:
    kind = "display" if display else "inline"
    tag = "div" if display else "span"
    return f'<{tag} class="math {kind}">{_h(tex)}</{tag}>'


def _html_doc(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="symloss {__version__}">
<title>{_h(title)}</title>
<link rel="stylesheet" href="_static/katex/katex.min.css">
<link rel="stylesheet" href="_static/symloss.css">
<script defer src="_static/katex/katex.min.js"></script>
<script defer src="_static/render.js"></script>
</head>
<body>
{body}
<footer>Generated by symloss {__version__} from each loss's SymPy expression.</footer>
</body>
</html>
"""


def _html_formulas(formulas: Iterable[Formula]) -> str:
    return "\n".join(
        f'<div class="formula"><div class="label">{_h(f.label)}</div>\n{_math(f.tex)}</div>'
        for f in formulas
    )


def _html_page(s: Sheet, plot: str | None, pages: dict[str, str]) -> str:
    loss = s.loss
    parts = ['<nav><a href="index.html">All losses</a></nav>', "<main>"]
    parts.append(f"<h1>{_h(loss.title)}</h1>")
    aka = ", ".join(f"<code>{_h(a)}</code>" for a in loss.aliases)
    aka = f" (alias {aka})" if aka else ""
    parts.append(f'<p class="names"><code>{_h(loss.name)}</code>{aka}</p>')

    parts.append("<h2>Definition</h2>")
    parts.append(_html_formulas(s.definitions))
    comp = loss.composition
    if comp is not None:
        base = _h(comp.base)
        link = f'<a href="{_h(pages[comp.base])}">{base}</a>' if comp.base in pages else base
        parts.append(
            f'<p class="note">The loss {link} applied to the {_h(comp.name)} of the logits.</p>'
        )

    parts.append("<h2>Gradient</h2>")
    parts.append(_html_formulas(s.gradients))
    for c in loss.constraints_used():
        parts.append(f'<p class="uses">Uses {_math(c.latex(), False)}: {_h(c.description)}.</p>')
    parts.append("<h2>Hessian</h2>")
    parts.append(_html_formulas(s.hessians))
    parts.append(f'<p class="note">{_h(s.hessian_note)}</p>')

    parts.append("<h2>Derivation</h2>")
    parts.append('<ol class="steps">')
    for step in s.steps:
        item = [f'<li><span class="title">{_h(step.title)}</span>']
        if step.note:
            item.append(f'<div class="note">{_h(step.note)}</div>')
        item.append(_math(r"\begin{aligned}" + step.latex(aligned=True) + r"\end{aligned}"))
        if step.constraint is not None:
            item.append(
                f'<div class="uses">Uses {_math(step.constraint_latex(), False)}: '
                f"{_h(step.constraint.description)}.</div>"
            )
        parts.append("\n".join(item) + "</li>")
    parts.append("</ol>")

    parts.append("<h2>Plot</h2>")
    if plot is not None:
        parts.append(
            f'<figure><img src="{_h(plot)}" alt="{_h(loss.title)}: loss and gradient" '
            f'width="691" height="269">'
            f"<figcaption>{_h(_plot_caption(s))}</figcaption></figure>"
        )
    else:
        parts.append(f'<p class="note">Plots need matplotlib: <code>{_h(PLOT_HINT)}</code></p>')

    parts.append("<h2>Conventions, domains and constraints</h2>")
    if loss.conventions:
        parts.append(f"<p>{_h(loss.conventions)}</p>")
    parts.append(f"<p>{_h(s.reduction)}</p>")
    if s.params:
        parts.append("<table><tr><th>hyperparameter</th><th>value</th><th>domain</th>")
        parts.append("<th>meaning</th></tr>")
        for tex, name, value, domain, description in s.params:
            dom = _math(domain, False) if domain else ""
            parts.append(
                f"<tr><td>{_math(tex, False)} <code>{_h(name)}</code></td>"
                f"<td><code>{_h(value)}</code></td><td>{dom}</td><td>{_h(description)}</td></tr>"
            )
        parts.append("</table>")
    if s.domains:
        parts.append("<table><tr><th>array</th><th>role</th><th>domain</th><th>meaning</th></tr>")
        for label, role, tex, description in s.domains:
            parts.append(
                f"<tr><td>{_math(label, False)}</td><td>{_h(role)}</td>"
                f"<td>{_math(tex, False)}</td><td>{_h(description)}</td></tr>"
            )
        parts.append("</table>")
    for name, tex, description, used in s.constraints:
        how = "used by the gradient" if used else "not needed by the gradient"
        parts.append(
            f"<p>Constraint <code>{_h(name)}</code>: {_math(tex, False)}, "
            f"{_h(description)} ({how}).</p>"
        )
    if loss.references:
        parts.append("<h2>References</h2><ul>")
        parts.extend(f"<li>{_h(r)}</li>" for r in loss.references)
        parts.append("</ul>")

    parts.append("<h2>LaTeX source</h2>")
    parts.append(
        '<div class="source"><button class="copy" type="button" data-target="latex-source">'
        f'Copy</button><pre><code id="latex-source">{_h(s.source())}</code></pre></div>'
    )
    parts.append("</main>")
    return _html_doc(f"{loss.title} — symloss", "\n".join(parts))


def _html_index(sheets: Sequence[Sheet], pages: dict[str, str]) -> str:
    rows = []
    for s in sheets:
        loss = s.loss
        aliases = ", ".join(f"<code>{_h(a)}</code>" for a in loss.aliases)
        definition = _math(DISPLAY_STYLE + loss.latex("standard"), False)
        gradient = _math(DISPLAY_STYLE + loss.latex(part="gradient"), False)
        rows.append(
            f'<tr><td><a href="{_h(pages[loss.name])}">{_h(loss.title)}</a><br>'
            f"<code>{_h(loss.name)}</code>{' alias ' + aliases if aliases else ''}</td>"
            f"<td>{definition}</td><td>{gradient}</td></tr>"
        )
    body = (
        "<main><h1>Loss functions</h1>"
        f'<p class="names">{len(sheets)} losses, each written once as a SymPy expression; '
        "every formula below is derived from it.</p>"
        '<div class="wide"><table class="index">'
        "<tr><th>loss</th><th>definition</th><th>gradient</th></tr>\n"
        + "\n".join(rows)
        + "\n</table></div></main>"
    )
    return _html_doc("symloss — loss functions", body)


# ---------------------------------------------------------------------------- Markdown
# Backslash escapes for Markdown's inline syntax.  Parentheses and brackets are not
# escaped that way, because \( and \[ open formulas for arithmatex; a bracket becomes
# an HTML entity instead, so that no text turns into a link.
_MD_ESCAPES = {c: "\\" + c for c in "\\`*_{}<>#|~$"} | {"[": "&#91;", "]": "&#93;"}


def _md(text: str) -> str:
    """Plain text, with Markdown's special characters escaped."""
    out = "".join(_MD_ESCAPES.get(ch, ch) for ch in text)
    if out[:1] in ("-", "+", "="):  # would start a list or a setext heading
        out = "\\" + out
    head, dot, rest = out.partition(".")
    if dot and head.isdigit():  # would start a numbered list
        out = f"{head}\\.{rest}"
    return out


def _md_block(tex: str) -> str:
    return f"\\[\n{tex}\n\\]"


def _md_inline(tex: str) -> str:
    return f"\\({tex}\\)"


def _md_formulas(formulas: Iterable[Formula]) -> list[str]:
    out = []
    for f in formulas:
        out += [f"{_md(f.label)}:", "", _md_block(f.tex), ""]
    return out


def _md_page(s: Sheet, plot: str | None, pages: dict[str, str]) -> str:
    loss = s.loss
    lines = [f"# {_md(loss.title)}", ""]
    aka = f" (alias {', '.join(f'`{a}`' for a in loss.aliases)})" if loss.aliases else ""
    lines += [f"`{loss.name}`{aka}", "", "[All losses](index.md)", "", "## Definition", ""]
    lines += _md_formulas(s.definitions)
    comp = loss.composition
    if comp is not None:
        base = f"[`{comp.base}`]({pages[comp.base]})" if comp.base in pages else f"`{comp.base}`"
        lines += [f"The loss {base} applied to the {_md(comp.name)} of the logits.", ""]
    lines += ["## Gradient", ""]
    lines += _md_formulas(s.gradients)
    for c in loss.constraints_used():
        lines += [f"Uses {_md_inline(c.latex())}: {_md(c.description)}.", ""]
    lines += ["## Hessian", ""]
    lines += _md_formulas(s.hessians)
    lines += [_md(s.hessian_note), "", "## Derivation", ""]
    for pos, step in enumerate(s.steps, 1):
        lines += [f"{pos}. **{_md(step.title)}.** {_md(step.note)}".rstrip(), ""]
        body = r"\begin{aligned}" + step.latex(aligned=True) + r"\end{aligned}"
        lines += ["    " + line for line in _md_block(body).splitlines()]
        lines.append("")
        if step.constraint is not None:
            lines += [
                f"    Uses {_md_inline(step.constraint_latex())}: "
                f"{_md(step.constraint.description)}.",
                "",
            ]
    lines += ["## Plot", ""]
    if plot is not None:
        lines += [f"![{_md(loss.title)}: loss and gradient]({plot})", "", _md(_plot_caption(s)), ""]
    else:
        lines += [f"Plots need matplotlib: `{PLOT_HINT}`", ""]
    lines += ["## Conventions, domains and constraints", ""]
    if loss.conventions:
        lines += [_md(loss.conventions), ""]
    lines += [_md(s.reduction), ""]
    for tex, name, value, domain, description in s.params:
        dom = f", in {_md_inline(domain)}" if domain else ""
        lines.append(f"- {_md_inline(tex)} (`{name}`) = `{value}`{dom}: {_md(description)}")
    if s.params:
        lines.append("")
    for label, role, tex, description in s.domains:
        role = f" ({role})" if role else ""
        lines += [f"- {_md_inline(label)}{role}: {_md_inline(tex)}, {_md(description)}"]
    if s.domains:
        lines.append("")
    for name, tex, description, used in s.constraints:
        how = "used by the gradient" if used else "not needed by the gradient"
        lines += [f"- Constraint `{name}`: {_md_inline(tex)}, {_md(description)} ({how})."]
    if s.constraints:
        lines.append("")
    if loss.references:
        lines += ["## References", ""]
        lines += [f"- {_md(r)}" for r in loss.references]
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
    for s in sheets:
        loss = s.loss
        aka = f" ({', '.join(f'`{a}`' for a in loss.aliases)})" if loss.aliases else ""
        tex = loss.latex("standard")
        lines.append(
            f"- [{_md(loss.title)}]({pages[loss.name]}): `{loss.name}`{aka}, {_md_inline(tex)}"
        )
    lines.append("")
    return "\n".join(lines)


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
    names : iterable of str, optional
        Losses (names or aliases), in the order given; all registered losses when None.
    out : path, optional
        File to write (atomically).  ``None`` only returns the text.
    derivation : bool
        Add the step-by-step derivation of each gradient.
    style : {"standard", "article"}
        The notation of every formula: standard LaTeX or the source article's.

    Returns
    -------
    str
        The document, which ``pdflatex`` compiles with ``texlive-latex-base`` alone.
    """
    from ._printing import STYLES

    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if names is None:
        losses = _select(None)
    else:
        losses, seen = [], set()
        for n in names:
            loss = get(n)
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
        atomic_write(Path(out), text.encode("utf-8"))
    return text


def _tex_section(loss: Loss, style: str, with_derivation: bool) -> str:
    def display(tex: str) -> str:
        return f"\\[\n{tex}\n\\]"

    comp = loss.composition
    aliases = ", ".join(rf"\texttt{{{tex_text(a)}}}" for a in loss.aliases)
    aliases = f" (alias {aliases})" if aliases else ""
    lines = [
        rf"\section{{{tex_text(loss.title)}}}",
        rf"\texttt{{{tex_text(loss.name)}}}" + aliases,
        "",
        r"\textbf{Definition.}",
        display(loss.latex(style)),
    ]
    if comp is not None:
        element = latex_expr(sp.Eq(comp.element, comp.value, evaluate=False), style)
        lines += [
            rf"with the prediction given by the {tex_text(comp.name)} of the logits,",
            display(element),
        ]
    if loss.conventions:
        lines += [tex_text(loss.conventions), ""]
    lines.append(r"\textbf{Gradient.}")
    if comp is not None:
        lines += ["By the prediction:", display(get(comp.base).latex(style, "gradient"))]
        lines += ["By the logits:"]
    lines.append(display(loss.latex(style, "gradient")))
    for c in loss.constraints_used():
        lines += [
            rf"This uses \({latex_expr(c.lhs, style)} = {latex_expr(c.rhs, style)}\): "
            f"{tex_text(c.description)}.",
            "",
        ]
    if with_derivation:
        lines.append(r"\subsection*{Derivation}")
        lines.append(r"\begin{enumerate}")
        for step in derivation(loss):
            lines.append(rf"\item \textbf{{{tex_text(step.title)}.}} {tex_text(step.note)}")
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


# ============================================================================ CLI
def add_cli(subparsers) -> None:
    """Add the ``docs`` and ``export`` subcommands to an argparse *subparsers* object."""
    from ._printing import STYLES

    docs = subparsers.add_parser(
        "docs", help="build the formula docs: one page per loss and an index"
    )
    docs.add_argument("--out", required=True, metavar="DIR", help="the site's directory")
    docs.add_argument("--format", choices=FORMATS, default="html", help="html (default) or md")
    docs.add_argument("--losses", nargs="+", metavar="NAME", default=None, help="only these losses")
    docs.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty directory that symloss did not build",
    )

    export = subparsers.add_parser("export", help="a standalone LaTeX handout for teaching")
    export.add_argument("names", nargs="*", metavar="NAME", help="loss names or aliases")
    export.add_argument("--all", action="store_true", help="every registered loss")
    export.add_argument("--format", choices=("tex",), default="tex")
    export.add_argument(
        "--derivation", action="store_true", help="add the step-by-step derivations"
    )
    export.add_argument("--style", choices=STYLES, default="standard", help="notation")
    export.add_argument(
        "-o", "--output", default="-", metavar="FILE", help="output file (default: stdout)"
    )


def run_cli(args) -> int:
    """Run the ``docs`` or ``export`` subcommand parsed by :func:`add_cli`."""
    from .cli import UsageError

    try:
        if args.command == "docs":
            report = build_site(
                args.out, fmt=args.format, names=args.losses, force=args.force, progress=None
            )
            for note in report.notes:
                print(f"symloss: {note}", file=sys.stderr)
            return 0
        if args.command == "export":
            if args.all and args.names:
                raise UsageError("give loss names or --all, not both")
            if not args.all and not args.names:
                raise UsageError("export needs a loss name (see 'symloss list') or --all")
            out = None if args.output == "-" else args.output
            text = export_tex(
                None if args.all else args.names, out, derivation=args.derivation, style=args.style
            )
            if out is None:
                sys.stdout.write(text)
            return 0
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    except UnsafeOutputError as exc:
        raise UsageError(str(exc).replace("force=True (--force)", "--force")) from None
    except OSError as exc:  # an unwritable or missing place: the user's to fix
        where = exc.filename or getattr(args, "out", None) or getattr(args, "output", "")
        raise UsageError(f"cannot write {where}: {exc.strerror or exc}") from None
    raise UsageError(f"unknown command {args.command!r}")

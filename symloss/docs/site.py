"""``build_site``: the whole site, HTML or Markdown, written from the registry."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from symloss.core.loss import Loss
from symloss.docs.files import PLOT_HINT, ProgressSpec, SiteReport, _Output, _Progress
from symloss.docs.html import _html_index, _html_page
from symloss.docs.markdown import _md_index, _md_page
from symloss.docs.navigation import mkdocs_yml, search_index_js
from symloss.docs.plots import plot_svg, sweep_file
from symloss.docs.sheet import sheet
from symloss.docs.table import table_points
from symloss.registry import get
from symloss.registry import names as registered_names

FORMATS = ("html", "md")


# ============================================================================ site
def _select(names: Iterable[str] | None) -> list[Loss]:
    if names is None:
        return [get(n) for n in registered_names()]
    chosen: dict[str, Loss] = {}
    for n in names:
        loss = n if isinstance(n, Loss) else get(n)  # a bound loss shows its values
        chosen.setdefault(loss.name, loss)
    return [chosen[k] for k in sorted(chosen)]


def _static_files(fmt: str) -> list[tuple[str, bytes]]:
    if fmt != "html":
        return []
    root = resources.files("symloss.docs") / "static"
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
    # Links between pages are relative to the pages' folder: the site's root for HTML,
    # docs/ for an MkDocs project (mkdocs.yml beside docs/, as MkDocs requires).
    folder = "docs/" if fmt == "md" else ""
    pages = {loss.name: f"{loss.name}.{ext}" for loss in losses}
    static = _static_files(fmt)
    extra = {"mkdocs.yml"} if fmt == "md" else {"search-index.js"}
    plan = {f"{folder}index.{ext}", *(folder + p for p in pages.values())}
    plan |= {rel for rel, _ in static} | extra
    plan |= {f"{folder}{loss.name}.svg" for loss in losses}
    plan |= {
        f"{folder}{sweep_file(loss.name, p.name)}"
        for loss in losses
        for p in loss.params
        if p.sweep
    }
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
        svg = plot_svg(loss, points=table_points(loss))
        plot = None
        if svg is None:
            plots_missing = True
            plan.discard(f"{folder}{loss.name}.svg")
        else:
            plot = f"{loss.name}.svg"
            out.write(folder + plot, svg)
        for name in s.sweeps:
            rel = folder + sweep_file(loss.name, name)
            drawn = plot_svg(loss, sweep=name)
            if drawn is None:
                plan.discard(rel)
            else:
                out.write(rel, drawn)
        render = _html_page if fmt == "html" else _md_page
        report.pages.append(out.write(folder + pages[loss.name], render(s, plot, pages)))
    index = (_html_index if fmt == "html" else _md_index)(sheets, pages)
    report.pages.insert(0, out.write(f"{folder}index.{ext}", index))
    if fmt == "md":
        out.write("mkdocs.yml", mkdocs_yml(sheets, pages, "symloss: loss functions"))
    else:
        out.write("search-index.js", search_index_js(sheets, pages))
    report.removed = out.remove_stale(plan)
    out.mark(plan, fmt)
    report.written = out.written
    if plots_missing:
        report.notes.append(f"plots need matplotlib: {PLOT_HINT}")
    tick.close(f"symloss docs: {len(losses)} losses in {out.root}")
    return report

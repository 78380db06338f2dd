"""Finding a page: the losses in groups, the search index, and the MkDocs configuration.

The groups come from each loss's ``group`` (declared once per family, see
:data:`symloss.core.loss.GROUPS`); the index page, each page's navigation bar, the
search and the generated ``mkdocs.yml`` all list them from here, in the same order.

Search runs in the browser, offline: :func:`search_index_js` writes the index as a
small script (``search-index.js``, a global assignment, because a page opened from
disk may not fetch a JSON file), and ``static/search.js`` matches what the reader types
against each loss's name, aliases, title, group and the library calls it cites.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from symloss.core.loss import GROUPS
from symloss.docs.reference import equivalents
from symloss.docs.sheet import Sheet

OTHER = "other"


def group_title(group: str) -> str:
    return group.capitalize() if group else OTHER.capitalize()


def grouped(sheets: Sequence[Sheet]) -> list[tuple[str, str, list[Sheet]]]:
    """``(group, sentence, sheets)`` for each group that has a loss, in :data:`GROUPS`
    order (losses without a group last, as "other"); sheets keep their order."""
    out = []
    for group, sentence in [*GROUPS.items(), ("", "Losses of no group.")]:
        members = [s for s in sheets if s.loss.group == group]
        if members:
            out.append((group or OTHER, sentence, members))
    return out


def search_entries(sheets: Sequence[Sheet], pages: dict[str, str]) -> list[dict]:
    """One entry per loss: what the search shows, and the words it matches."""
    entries = []
    for s in sheets:
        loss = s.loss
        calls = [e.call for e in equivalents(loss) if e.call]
        words = [loss.name, *loss.aliases, loss.title, loss.group, *calls]
        entries.append(
            {
                "name": loss.name,
                "title": loss.title,
                "group": loss.group or OTHER,
                "page": pages[loss.name],
                "aliases": list(loss.aliases),
                "text": " ".join(words).lower(),
            }
        )
    return entries


def search_index_js(sheets: Sequence[Sheet], pages: dict[str, str]) -> str:
    data = json.dumps(search_entries(sheets, pages), indent=0, sort_keys=True)
    # "</" never appears inside a script's JSON, whatever a title holds.
    return "window.SYMLOSS_SEARCH = " + data.replace("</", "<\\/") + ";\n"


def _yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of YAML's)."""
    return json.dumps(text, ensure_ascii=False)


def mkdocs_yml(sheets: Sequence[Sheet], pages: dict[str, str], title: str) -> str:
    """The ``mkdocs.yml`` of a Markdown build: the navigation in groups, and the
    extensions the pages are written for (arithmatex's math delimiters, tables,
    fenced code)."""
    lines = [
        f"site_name: {_yaml_string(title)}",
        "docs_dir: docs",
        "use_directory_urls: false",
        "nav:",
        "  - Index: index.md",
    ]
    for group, _sentence, members in grouped(sheets):
        lines.append(f"  - {_yaml_string(group_title(group))}:")
        for s in members:
            lines.append(f"      - {_yaml_string(s.loss.title)}: {pages[s.loss.name]}")
    lines += [
        "markdown_extensions:",
        "  - tables",
        "  - fenced_code",
        "  - pymdownx.arithmatex:",
        "      generic: true",
        "# Typeset the formulas with a renderer of your choice, for example KaTeX or",
        "# MathJax, listed under extra_javascript (symloss's HTML build bundles KaTeX).",
        "",
    ]
    return "\n".join(lines)

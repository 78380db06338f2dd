"""``symloss list``, ``show`` and ``table``: the registry in the terminal."""

from __future__ import annotations

import argparse
import os
import textwrap

import numpy as np

from symloss.cli.common import floats, whole
from symloss.docs.table import per_sample_terms, tabulable
from symloss.errors import UsageError
from symloss.losses.article import ARTICLE, ARTICLE_TABLES
from symloss.printing.printers import pretty_equation
from symloss.registry import catalog, get

#: The source article's example table (shared/ARTICLE.md, section 2).
ARTICLE_TABLE_Y = tuple(y for y, _ in ARTICLE_TABLES["binary_cross_entropy"])
ARTICLE_TABLE_T = tuple(t for _, t in ARTICLE_TABLES["binary_cross_entropy"])

#: Default rows of a loss over classes (two samples of three classes, one-hot targets):
#: probabilities for a loss on predictions, logits for a loss on logits.
CLASS_TABLE_Y = ((0.7, 0.2, 0.1), (0.1, 0.3, 0.6))
CLASS_TABLE_Z = ((2.0, 0.5, -1.0), (-1.0, 0.0, 1.0))
CLASS_TABLE_T = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


def columns() -> int:
    """The terminal's width: ``$COLUMNS`` if set (a positive whole number), else 80.

    The real terminal size is not asked for: output piped to a file or a pager
    keeps the same lines whatever window it was made in."""
    try:
        value = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return 80
    return value if value >= 20 else 80


def rows(text: str) -> list[list[float]]:
    """``--y`` of a table: numbers separated by commas, rows (samples) by semicolons."""
    out = [floats(part) for part in text.split(";")]
    if len({len(r) for r in out}) > 1:
        raise argparse.ArgumentTypeError(f"rows of different lengths in {text!r}")
    return out


def add_cli(sub) -> None:
    """Add ``list``, ``show`` and ``table`` to an argparse *sub* (subparsers) object."""
    lst = sub.add_parser("list", help="table of names, aliases and titles")
    lst.set_defaults(run=cmd_list)
    lst.add_argument(
        "--markdown",
        action="store_true",
        help="a Markdown table with each loss's formula (as in the README)",
    )

    show = sub.add_parser("show", help="a loss, its gradient and Hessian")
    show.set_defaults(run=cmd_show)
    show.add_argument("names", nargs="*", metavar="NAME", help="loss names or aliases")
    show.add_argument("--all", action="store_true", help="every registered loss")
    show.add_argument(
        "--style",
        choices=("article", "standard"),
        default=None,
        help="LaTeX style (default: article for the article's losses, else standard)",
    )
    show.add_argument(
        "--part", choices=("loss", "gradient", "hessian", "derivation", "all"), default="all"
    )
    show.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    show.add_argument(
        "--ascii",
        action="store_true",
        help="plain ASCII art (for terminals where box-drawing characters misalign)",
    )

    table = sub.add_parser("table", help="per-sample terms of a loss, as in the article's table")
    table.set_defaults(run=cmd_table)
    table.add_argument("name", metavar="NAME")
    table.add_argument(
        "--y",
        type=rows,
        default=None,
        help="predictions (or logits), comma-separated; rows of a class loss by ';'",
    )
    table.add_argument("--t", type=rows, default=None, help="targets, comma-separated; rows by ';'")
    table.add_argument(
        "--digits", type=whole(0, 17), default=2, help="decimals of the terms (0 to 17)"
    )
    table.add_argument("--ascii", action="store_true", help="plain ASCII headers")


def _get(name: str):
    try:
        return get(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def markdown_catalog() -> str:
    """The README's catalog table, generated from the registry."""
    lines = ["| name | aliases | title | defaults |", "|---|---|---|---|"]
    for L in catalog():
        aliases = ", ".join(f"`{a}`" for a in L.aliases)
        params = ", ".join(f"{k}={v!r}" for k, v in L.param_values.items())
        defaults = "; ".join(x for x in (params, f"reduction={L.reduction}") if x)
        lines.append(f"| `{L.name}` | {aliases} | {L.title} | {defaults} |")
    return "\n".join(lines)


def cmd_list(args) -> int:
    if args.markdown:
        print(markdown_catalog())
        return 0
    rows = [(L.name, ", ".join(L.aliases), L.title) for L in catalog()]
    widths = [max(len(r[c]) for r in rows + [("name", "aliases", "title")]) for c in range(3)]
    for row in [("name", "aliases", "title"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def _wrap(text: str, width: int, prefix: str = "") -> list[str]:
    # URLs are not cut: a long reference stays copyable.
    return textwrap.wrap(
        " ".join(text.split()),
        width=width,
        initial_indent=prefix,
        subsequent_indent=" " * len(prefix),
        break_long_words=False,
        break_on_hyphens=False,
    ) or [prefix.rstrip()]


def cmd_show(args) -> int:
    if args.all and args.names:
        raise UsageError("give loss names or --all, not both")
    if not args.all and not args.names:
        raise UsageError("show needs a loss name (see 'symloss list') or --all")
    selected = list(catalog()) if args.all else [_get(x) for x in args.names]
    parts = ("loss", "gradient", "hessian") if args.part == "all" else (args.part,)
    width = columns()
    unicode = not args.ascii
    for pos, L in enumerate(selected):
        if pos:
            print()
        title = f"{L.name} ({', '.join(L.aliases)}): {L.title}"
        print("\n".join(_wrap(title, width)))
        for line in L.describe_params():
            print("\n".join(_wrap(line, width, "  parameter ")))
        named = set()  # constraints a derivation step has already named
        for part in parts:
            if part == "derivation":
                for number, step in enumerate(L.derivation(), 1):
                    if args.latex:
                        print(f"% {number}. {step.title}")
                        print(step.latex(style=args.style or "standard"))
                    else:
                        print(f"{number}. {step.pretty(unicode, width)}")
                        if step.constraint is not None:
                            named.add(step.constraint.name)
                continue
            if args.latex:
                style = args.style or (
                    "article" if _is_article(L) and part == "loss" else "standard"
                )
                print(L.latex(style=style, part=part))
            else:
                print(pretty_equation(*L.equation(part), use_unicode=unicode, num_columns=width))
        for c in L.constraints_used():
            if c.name not in named:
                print("\n".join(_wrap(f"(uses {c.name}: {c.description})", width, "  ")))
        if L.conventions:
            print("\n".join(_wrap(L.conventions, width, "  conventions: ")))
        for ref in L.references:
            print("\n".join(_wrap(ref, width, "  reference: ")))
    return 0


def _is_article(L) -> bool:
    return ARTICLE in L.references and L.composition is None


def cmd_table(args) -> int:
    L = _get(args.name)
    if not tabulable(L):
        raise UsageError(
            f"{L.name}: the table needs a loss that is a sum of one term per element "
            "(this one couples the elements of a row through a sum)"
        )
    classes = len(L.indices) == 2
    on_logits = L.composition is not None
    if classes:
        default_y = CLASS_TABLE_Z if on_logits else CLASS_TABLE_Y
        y = np.array(args.y if args.y is not None else default_y, dtype=float)
        t = np.array(args.t if args.t is not None else CLASS_TABLE_T, dtype=float)
    else:
        y = np.array(sum(args.y, []) if args.y is not None else ARTICLE_TABLE_Y, dtype=float)
        t = np.array(sum(args.t, []) if args.t is not None else _default_targets(L), dtype=float)
    if y.shape != t.shape:
        what = "rows of values" if classes else "values"
        raise UsageError(
            f"--y has {_shape(y)} {what} but --t has {_shape(t)}"
            if classes
            else f"--y has {y.size} values but --t has {t.size}"
        )
    try:
        headers, values = per_sample_terms(L, y, t, use_unicode=not args.ascii)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    index = "".join(str(s) for s, _ in L.indices)
    heads = [f"{L.pred.label}_{index}", f"{L.target.label}_{index}", *headers]
    if not args.ascii:
        heads[:2] = [str(L.pred.label) + _subscript(index), str(L.target.label) + _subscript(index)]
    leading: list[list[str]] = []
    if classes:
        # One row per sample x class, as the article's table has one per sample.
        n, m = y.shape
        heads = [str(L.indices[0][0]), str(L.indices[1][0]), *heads]
        leading = [
            [str(r + 1) for r in range(n) for _ in range(m)],
            [str(c + 1) for _ in range(n) for c in range(m)],
        ]
    cells = leading + [[_fmt(v, 6) for v in y.ravel()], [_fmt(v, 6) for v in t.ravel()]]
    cells += [[_fmt(v, args.digits) for v in col.ravel()] for col in values]
    widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(heads, cells)]
    print(" | ".join(h.ljust(w) for h, w in zip(heads, widths)).rstrip())
    print("-|-".join("-" * w for w in widths))
    for r in range(y.size):
        print(" | ".join(col[r].ljust(w) for col, w in zip(cells, widths)).rstrip())
    return 0


def _default_targets(L) -> tuple[float, ...]:
    """The article's targets 0, 0, 1, 1, or the nearest that the target's domain holds:
    labels -1, -1, 1, 1 (a margin loss), or 0.5, 0.5, 1, 1 (a positive target)."""
    domain = L.domains.get(str(L.target.label))
    for candidate in (ARTICLE_TABLE_T, (-1.0, -1.0, 1.0, 1.0), (0.5, 0.5, 1.0, 1.0)):
        if domain is None or not domain.any_violation(np.array(candidate)):
            return candidate
    return ARTICLE_TABLE_T


def _shape(a: np.ndarray) -> str:
    return "x".join(map(str, a.shape))


def _subscript(text: str) -> str:
    digits = dict(zip("ijkn", "ᵢⱼₖₙ"))
    return "".join(digits.get(c, "_" + c) for c in text)


def _fmt(v: float, digits: int) -> str:
    if v == 0:
        return "0"
    text = f"{v:.{digits}f}"
    return text.rstrip("0").rstrip(".") if digits == 6 else text

"""``symloss list``, ``show`` and ``table``: the registry in the terminal."""

from __future__ import annotations

import numpy as np

from symloss.cli.common import floats, whole
from symloss.docs.table import per_sample_terms
from symloss.errors import UsageError
from symloss.losses.article import ARTICLE
from symloss.registry import catalog, get

#: The source article's example table (shared/ARTICLE.md, section 2).
ARTICLE_TABLE_Y = (0.2, 0.8, 0.2, 0.8)
ARTICLE_TABLE_T = (0.0, 0.0, 1.0, 1.0)


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

    table = sub.add_parser("table", help="per-sample terms of a loss, as in the article's table")
    table.set_defaults(run=cmd_table)
    table.add_argument("name", metavar="NAME")
    table.add_argument("--y", type=floats, default=None, help="predictions, comma-separated")
    table.add_argument("--t", type=floats, default=None, help="targets, comma-separated")
    table.add_argument(
        "--digits", type=whole(0, 17), default=2, help="decimals of the terms (0 to 17)"
    )



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


def cmd_show(args) -> int:
    if args.all and args.names:
        raise UsageError("give loss names or --all, not both")
    if not args.all and not args.names:
        raise UsageError("show needs a loss name (see 'symloss list') or --all")
    selected = list(catalog()) if args.all else [_get(x) for x in args.names]
    parts = ("loss", "gradient", "hessian") if args.part == "all" else (args.part,)
    for pos, L in enumerate(selected):
        if pos:
            print()
        print(f"{L.name} ({', '.join(L.aliases)}): {L.title}")
        for line in L.describe_params():
            print(f"  parameter {line}")
        for part in parts:
            if part == "derivation":
                for number, step in enumerate(L.derivation(), 1):
                    if args.latex:
                        print(f"% {number}. {step.title}")
                        print(step.latex(style=args.style or "standard"))
                    else:
                        print(f"{number}. {step.pretty()}")
                continue
            if args.latex:
                style = args.style or (
                    "article" if _is_article(L) and part == "loss" else "standard"
                )
                print(L.latex(style=style, part=part))
            else:
                print(L.pretty(part))
        for c in L.constraints_used():
            print(f"  (uses {c.name}: {c.description})")
    return 0


def _is_article(L) -> bool:
    return ARTICLE in L.references and L.composition is None


def cmd_table(args) -> int:
    L = _get(args.name)
    y = args.y if args.y is not None else list(ARTICLE_TABLE_Y)
    t = args.t if args.t is not None else list(ARTICLE_TABLE_T)
    if len(y) != len(t):
        raise UsageError(f"--y has {len(y)} values but --t has {len(t)}")
    try:
        headers, columns = per_sample_terms(L, np.array(y), np.array(t))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    cells = [[_fmt(v, 6) for v in y], [_fmt(v, 6) for v in t]]
    cells += [[_fmt(v, args.digits) for v in col] for col in columns]
    heads = [str(L.pred.label) + "_i", str(L.target.label) + "_i", *headers]
    widths = [max(len(h), *(len(c) for c in col)) for h, col in zip(heads, cells)]
    print(" | ".join(h.ljust(w) for h, w in zip(heads, widths)))
    print("-|-".join("-" * w for w in widths))
    for r in range(len(y)):
        print(" | ".join(col[r].ljust(w) for col, w in zip(cells, widths)))
    return 0


def _fmt(v: float, digits: int) -> str:
    if v == 0:
        return "0"
    text = f"{v:.{digits}f}"
    return text.rstrip("0").rstrip(".") if digits == 6 else text

"""The ``symloss`` command line.  Every listing is generated from the registry."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_USAGE = 2

#: The source article's example table (shared/ARTICLE.md, section 2).
ARTICLE_TABLE_Y = (0.2, 0.8, 0.2, 0.8)
ARTICLE_TABLE_T = (0.0, 0.0, 1.0, 1.0)


class UsageError(Exception):
    """A mistake in the command line or its values: one line on stderr, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print usage and exit; we want one line
        raise UsageError(message)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    import symloss

    p = _Parser(prog="symloss", description="Loss functions written once in SymPy.")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"symloss {symloss.__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lst = sub.add_parser("list", help="table of names, aliases and titles")
    lst.add_argument(
        "--markdown",
        action="store_true",
        help="a Markdown table with each loss's formula (as in the README)",
    )

    show = sub.add_parser("show", help="a loss, its gradient and Hessian")
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

    parse = sub.add_parser("parse", help="parse a LaTeX formula into a loss")
    parse.add_argument("latex", metavar="LATEX", help="the formula, e.g. 'E = \\frac{1}{n}...'")
    parse.add_argument("--pred", default="y", help="how the prediction is written (default y)")
    parse.add_argument("--target", default="t", help="how the target is written (default t)")
    parse.add_argument("--logits", default="z", help="how the logits are written (default z)")
    parse.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a hyperparameter written as a symbol (repeatable)",
    )
    parse.add_argument("--style", choices=("article", "standard"), default="standard")
    parse.add_argument(
        "--latex-out", dest="as_latex", action="store_true", help="print LaTeX instead of text"
    )
    parse.add_argument(
        "--identify", action="store_true", help="say which registered loss the formula equals"
    )

    table = sub.add_parser("table", help="per-sample terms of a loss, as in the article's table")
    table.add_argument("name", metavar="NAME")
    table.add_argument("--y", type=_floats, default=None, help="predictions, comma-separated")
    table.add_argument("--t", type=_floats, default=None, help="targets, comma-separated")
    table.add_argument("--digits", type=int, default=2)

    from . import docs
    from .checker import add_cli as add_check

    add_check(sub)
    docs.add_cli(sub)
    return p


def _get(name: str):
    import symloss

    try:
        return symloss.get(name)
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None


def markdown_catalog() -> str:
    """The README's catalog table, generated from the registry."""
    import symloss

    lines = ["| name | aliases | title | defaults |", "|---|---|---|---|"]
    for L in symloss.catalog():
        aliases = ", ".join(f"`{a}`" for a in L.aliases)
        params = ", ".join(f"{k}={v!r}" for k, v in L.param_values.items())
        defaults = "; ".join(x for x in (params, f"reduction={L.reduction}") if x)
        lines.append(f"| `{L.name}` | {aliases} | {L.title} | {defaults} |")
    return "\n".join(lines)


def cmd_list(args) -> int:
    import symloss

    if args.markdown:
        print(markdown_catalog())
        return 0
    rows = [(L.name, ", ".join(L.aliases), L.title) for L in symloss.catalog()]
    widths = [max(len(r[c]) for r in rows + [("name", "aliases", "title")]) for c in range(3)]
    for row in [("name", "aliases", "title"), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_show(args) -> int:
    import symloss

    if args.all and args.names:
        raise UsageError("give loss names or --all, not both")
    if not args.all and not args.names:
        raise UsageError("show needs a loss name (see 'symloss list') or --all")
    selected = list(symloss.catalog()) if args.all else [_get(x) for x in args.names]
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
    from .losses._article import ARTICLE

    return ARTICLE in L.references and L.composition is None


def cmd_table(args) -> int:
    import numpy as np

    from ._table import per_sample_terms

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


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise UsageError(f"--param expects NAME=NUMBER, got {text!r}") from None


def cmd_parse(args) -> int:
    from ._errors import ParseError
    from ._from_latex import from_latex, identify

    params = dict(_param(p) for p in args.param)
    try:
        L = from_latex(
            args.latex, pred=args.pred, target=args.target, logits=args.logits, params=params
        )
        for part in ("loss", "gradient"):
            print(L.latex(style=args.style, part=part) if args.as_latex else L.pretty(part))
        for c in L.constraints_used():
            print(f"  (uses {c.name}: {c.description})")
        if args.identify:
            found = identify(L)
            print(f"identified: {found}" if found else "identified: no registered loss matches")
    except ParseError as exc:
        raise UsageError(f"{exc.reason} (at character {exc.position})\n{exc.caret()}") from None
    return 0


def cmd_docs(args) -> int:
    from . import docs

    return docs.run_cli(args)


def cmd_check(args) -> int:
    from .checker import run_cli

    return run_cli(args)


COMMANDS = {
    "list": cmd_list,
    "show": cmd_show,
    "table": cmd_table,
    "parse": cmd_parse,
    "check": cmd_check,
    "docs": cmd_docs,
    "export": cmd_docs,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr.close()
        return 0
    except UsageError as exc:
        if debug:
            raise
        print(f"symloss: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # one line, never a traceback, unless --debug
        if debug:
            raise
        print(f"symloss: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

"""``symloss parse``: a LaTeX formula in, the loss and its gradient out."""

from __future__ import annotations

from symloss.cli.common import parse_param
from symloss.errors import ParseError, UsageError
from symloss.latex_in import from_latex, match


def add_cli(sub) -> None:
    """Add ``parse`` to an argparse *sub* (subparsers) object."""
    parse = sub.add_parser("parse", help="parse a LaTeX formula into a loss")
    parse.set_defaults(run=cmd_parse)
    parse.add_argument("latex", metavar="LATEX", help="the formula, e.g. 'E = \\frac{1}{n}...'")
    parse.add_argument("--pred", default="y", help="how the prediction is written (default y)")
    parse.add_argument("--target", default="t", help="how the target is written (default t)")
    parse.add_argument(
        "--logits", default=None, help="how the logits are written (default z, unless --pred is z)"
    )
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


def cmd_parse(args) -> int:
    params = dict(parse_param(p) for p in args.param)
    try:
        L = from_latex(
            args.latex, pred=args.pred, target=args.target, logits=args.logits, params=params
        )
        for part in ("loss", "gradient"):
            print(L.latex(style=args.style, part=part) if args.as_latex else L.pretty(part))
        for c in L.constraints_used():
            print(f"  (uses {c.name}: {c.description})")
        for key, dom in L.domains.items():
            if dom is not None:
                why = f": {dom.description}" if dom.description else ""
                print(f"  domain of {key}: {dom.text()}{why}")
        if args.identify:
            found = match(L)
            if found is None:
                print("identified: no registered loss matches")
            else:
                name, params = found
                values = ", ".join(f"{k}={v}" for k, v in params.items())
                print(f"identified: {name}" + (f" with {values}" if values else ""))
    except ParseError as exc:
        raise UsageError(f"{exc.reason} (at character {exc.position})\n{exc.caret()}") from None
    return 0

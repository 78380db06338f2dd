"""``symloss docs`` (the formula site) and ``symloss export`` (the LaTeX handout, or a
Python module of losses: :mod:`symloss.cli.export_code`)."""

from __future__ import annotations

import sys

from symloss.cli import export_code
from symloss.docs.site import FORMATS, build_site
from symloss.docs.tex import export_tex
from symloss.errors import UnsafeOutputError, UsageError
from symloss.printing import STYLES


# ============================================================================ CLI
def add_cli(subparsers) -> None:
    """Add the ``docs`` and ``export`` subcommands to an argparse *subparsers* object."""
    docs = subparsers.add_parser(
        "docs", help="build the formula docs: one page per loss and an index"
    )
    docs.set_defaults(run=run_cli)
    docs.add_argument("--out", required=True, metavar="DIR", help="the site's directory")
    docs.add_argument("--format", choices=FORMATS, default="html", help="html (default) or md")
    docs.add_argument("--losses", nargs="+", metavar="NAME", default=None, help="only these losses")
    docs.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty directory that symloss did not build",
    )

    export = subparsers.add_parser(
        "export",
        help="a standalone LaTeX handout for teaching, or a Python module of the losses "
        "(--format numpy|torch|jax)",
    )
    export.set_defaults(run=run_cli)
    export.add_argument("names", nargs="*", metavar="NAME", help="loss names or aliases")
    export.add_argument("--all", action="store_true", help="every registered loss")
    export.add_argument(
        "--format",
        choices=("tex", *export_code.FORMATS),
        default="tex",
        help="tex (default): the handout; numpy, torch, jax: a module with one function "
        "per loss that imports only that framework and NumPy",
    )
    export.add_argument(
        "--derivation", action="store_true", help="add the step-by-step derivations"
    )
    export.add_argument("--style", choices=STYLES, default="standard", help="notation")
    export.add_argument(
        "-o",
        "--output",
        default="-",
        metavar="FILE",
        help="output file (default '-': stdout). An existing FILE is overwritten and keeps "
        "its permissions; a symbolic link is followed; a device or pipe is written in place",
    )


def run_cli(args) -> int:
    """Run the ``docs`` or ``export`` subcommand parsed by :func:`add_cli`."""
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
            if not args.output.strip():
                raise UsageError("-o needs a file name (or '-' for stdout)")
            if args.format != "tex":
                return export_code.run(args)
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

"""The ``symloss`` command: the parser, built from each command module, and ``main``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from symloss.cli import build, catalog, check, docs, parse
from symloss.cli.common import EXIT_USAGE, Parser
from symloss.errors import UsageError
from symloss.version import __version__

#: The command modules, in the order ``symloss --help`` lists them.
COMMAND_MODULES = (catalog, parse, check, docs, build)


def build_parser() -> Parser:
    p = Parser(prog="symloss", description="Loss functions written once in SymPy.")
    p.add_argument(
        "--debug", action="store_true", help="show tracebacks on errors (anywhere on the line)"
    )
    p.add_argument("--version", action="version", version=f"symloss {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMAND_MODULES:
        module.add_cli(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug anywhere before a "--" (argparse would take it before the subcommand only)
    end = argv.index("--") if "--" in argv else len(argv)
    debug = "--debug" in argv[:end]
    argv = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    try:
        args = build_parser().parse_args(argv)
        return args.run(args)
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

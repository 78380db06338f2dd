"""``symloss export --format numpy|torch|jax``: a standalone Python module of losses.

The module has one function per loss, named by its canonical name (and, for NumPy, its
gradient ``NAME_grad``), and imports only its framework and NumPy, never symloss
(:mod:`symloss.frameworks.codegen` writes it).  The ``export`` subcommand itself, and
its LaTeX handout, are in :mod:`symloss.cli.docs`.
"""

from __future__ import annotations

import shlex
import sys

from symloss.docs.files import write_output
from symloss.errors import UsageError
from symloss.registry import get, names

#: symloss.frameworks.codegen.FORMATS, written out: the code generator (and SymPy's
#: printers) are imported only when a module is exported, not for every command.
FORMATS = ("numpy", "torch", "jax")


def export_code(selected, fmt: str, out=None, command: str | None = None) -> str:
    """The module's source for the losses *selected* (names or aliases, in that order,
    each once; every registered loss when None), written to *out* when given."""
    losses, seen = [], set()
    for name in names() if selected is None else selected:
        loss = get(name)
        if loss.name not in seen:
            seen.add(loss.name)
            losses.append(loss)
    from symloss.frameworks import codegen
    from symloss.frameworks.spec import spec

    text = codegen.generate([spec(loss) for loss in losses], fmt, command=command)
    if out is not None:
        write_output(out, text.encode("utf-8"))
    return text


def run(args) -> int:
    """``symloss export NAME... --format numpy|torch|jax [-o FILE]`` (arguments checked
    by :func:`symloss.cli.docs.run_cli`)."""
    if args.derivation or args.style != "standard":
        raise UsageError(f"--derivation and --style are for --format tex, not {args.format}")
    out = None if args.output == "-" else args.output
    shown = ["symloss", "export", *(["--all"] if args.all else args.names), "--format", args.format]
    text = export_code(None if args.all else args.names, args.format, out, shlex.join(shown))
    if out is None:
        sys.stdout.write(text)
    return 0

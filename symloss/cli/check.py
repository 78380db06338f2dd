"""``symloss check``: your loss or gradient code against the symbolic truth."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Callable

from symloss.checker import check
from symloss.cli.common import parse_param, whole
from symloss.errors import UsageError
from symloss.registry import get


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Add ``symloss check`` to an argparse *subparsers* object; run it with :func:`run_cli`."""
    p = subparsers.add_parser(
        "check",
        help="check your loss or gradient code against the symbolic truth",
        description="Check your own loss and/or gradient function against the symbolic "
        "truth. Functions are imported by path (MODULE:FUNCTION, never evaluated as text); "
        "the current directory is importable. Exit 0 when your code is right, 1 when it is "
        "wrong, 2 on a usage error.",
    )
    p.set_defaults(run=run_cli)
    p.add_argument("name", metavar="NAME", help="loss name or alias (see 'symloss list')")
    p.add_argument("value", nargs="?", metavar="MODULE:FUNCTION", help="your loss function")
    p.add_argument("--grad", metavar="MODULE:FUNCTION", help="your gradient function")
    p.add_argument("--torch", action="store_true", help="the functions take torch tensors")
    p.add_argument("--seed", type=whole(0), default=0, help="seed of the input draws (default 0)")
    p.add_argument("--samples", type=whole(1), default=20, help="inputs per family (default 20)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a loss option, e.g. --param delta=1.5 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _load(spec: str) -> Callable:
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise UsageError(f"expected MODULE:FUNCTION, got {spec!r}")
    top = module.partition(".")[0]
    if top in sys.stdlib_module_names and os.path.exists(os.path.join(os.getcwd(), top + ".py")):
        raise UsageError(
            f"{top}.py has the name of a standard-library module, which is imported "
            "instead; rename your file"
        )
    try:
        obj = importlib.import_module(module)
    except (Exception, SystemExit) as exc:  # whatever the import raised is the user's to fix
        raise UsageError(f"cannot import {module!r}: {type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"module {module!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{spec} is not callable")
    return obj


def run_cli(args: argparse.Namespace) -> int:
    """Run ``symloss check``: 0 when the code is right, 1 when wrong, 2 on a usage error."""
    try:
        if args.value is None and args.grad is None:
            raise UsageError("check needs your loss function (MODULE:FUNCTION), --grad, or both")
        # The loss and its options first: a wrong name must not import (and so run)
        # the user's module.
        params = dict(parse_param(p) for p in args.param)
        try:
            L = get(args.name, **params)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(exc.args[0] if exc.args else str(exc)) from None
        if args.torch and importlib.util.find_spec("torch") is None:
            raise UsageError("--torch needs PyTorch (pip install torch)")
        # The current directory is importable, after the standard library and the
        # installed packages, so a file there cannot shadow them.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        value = _load(args.value) if args.value else None
        grad = _load(args.grad) if args.grad else None
    except UsageError as exc:
        if getattr(args, "debug", False):
            raise
        print(f"symloss: error: {exc}", file=sys.stderr)
        return 2
    report = check(
        L, value=value, grad=grad, samples=args.samples, seed=args.seed, torch=args.torch
    )
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if args.json else report)
    return 0 if report.ok else 1

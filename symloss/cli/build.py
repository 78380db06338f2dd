"""``symloss build``: compile the C kernels of some losses, or all, ahead of time."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from symloss.errors import CompilerUnavailable, UsageError
from symloss.numeric import compiled
from symloss.numeric.warm import CLASSES, warm
from symloss.registry import get, names


def add_cli(sub) -> None:
    """Add ``build`` to an argparse *sub* (subparsers) object."""
    p = sub.add_parser(
        "build",
        help="compile kernels ahead of time (for container and CI images)",
        description=(
            "Compile the C kernels of the named losses (or --all) into the kernel cache "
            f"({compiled.cache_dir()}; $SYMLOSS_CACHE_DIR), so that no later process "
            "waits for the compiler on first use."
        ),
    )
    p.set_defaults(run=cmd_build)
    p.add_argument("names", nargs="*", metavar="NAME", help="losses (names or aliases)")
    p.add_argument("--all", action="store_true", help="every registered loss")
    p.add_argument(
        "--classes",
        type=_counts,
        default=CLASSES,
        metavar="M,M,...",
        help="class counts to build row-wise kernels for (rows of 8 to 32 classes have "
        f"their own kernels; default {','.join(map(str, CLASSES))})",
    )
    p.add_argument(
        "--float32",
        action="store_true",
        help="also the float32 kernels (float32 inputs run their own loops)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, errors only")


def _counts(text: str) -> tuple[int, ...]:
    try:
        found = tuple(int(part) for part in text.split(","))
    except ValueError:
        found = ()
    if not found or any(not 1 <= m <= 4096 for m in found):
        raise argparse.ArgumentTypeError(f"expected class counts from 1 to 4096, got {text!r}")
    return found


def _bar(done: int, total: int, name: str, started: float, width: int = 30) -> str:
    filled = int(width * done / total)
    return (
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
        f"{time.monotonic() - started:5.1f} s  {name:<32.32}"
    )


def cmd_build(args) -> int:
    if args.all and args.names:
        raise UsageError("give loss names or --all, not both")
    if not args.all and not args.names:
        raise UsageError("give loss names, or --all for every registered loss")
    chosen = names() if args.all else list(dict.fromkeys(args.names))
    try:  # an unknown name fails before any work
        losses = [get(name) for name in chosen]
    except KeyError as exc:
        raise UsageError(exc.args[0]) from None
    compiled.retry_toolchain()  # a failure an earlier process remembered is tried again
    show = not args.quiet and sys.stderr.isatty()
    started = time.monotonic()
    problems: list[str] = []
    for k, loss in enumerate(losses):
        if show:
            print(_bar(k, len(losses), loss.name, started), end="", file=sys.stderr, flush=True)
        elif not args.quiet:
            print(f"[{k + 1}/{len(losses)}] {loss.name}", file=sys.stderr, flush=True)
        try:
            dtypes = (np.float64, np.float32) if args.float32 else (np.float64,)
            problems += [f"{loss.name}: {p}" for p in warm(loss, args.classes, dtypes)]
        except CompilerUnavailable as exc:
            if show:
                print(file=sys.stderr)
            print(f"symloss: error: no kernels can be compiled here: {exc}", file=sys.stderr)
            return 1
    if show:
        print(_bar(len(losses), len(losses), "done", started), file=sys.stderr)
    for p in problems:
        print(f"symloss: warning: {p}", file=sys.stderr)
    if not args.quiet:
        print(
            f"built the kernels of {len(losses)} loss(es) in {time.monotonic() - started:.1f} s "
            f"into {compiled.cache_dir()}"
        )
    return 1 if problems else 0

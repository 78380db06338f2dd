"""What every command shares: the argument parser that reports one line, and the one
``--param NAME=VALUE`` reader."""

from __future__ import annotations

import argparse

from symloss.errors import UsageError

EXIT_USAGE = 2


class Parser(argparse.ArgumentParser):
    """argparse, except that a mistake raises :class:`~symloss.UsageError` (one line,
    exit 2) instead of printing the usage and exiting."""

    def error(self, message):
        raise UsageError(message)


def parse_param(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` of a repeatable ``--param``: an int, a float, comma-separated
    numbers (a per-class vector), or a word (``reduction=sum``)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise UsageError(f"--param expects NAME=VALUE, got {text!r}")
    try:
        values = [_number(v) for v in raw.split(",")]
    except ValueError:
        if "," in raw:
            raise UsageError(
                f"--param {key}: expected numbers separated by commas, got {raw!r}"
            ) from None
        return key, raw.strip()  # a word, such as reduction=sum
    return key, values[0] if len(values) == 1 else values


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def floats(text: str) -> list[float]:
    """Numbers separated by commas or spaces (``--y 0.2,0.8``)."""
    try:
        return [float(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def whole(low: int, high: int | None = None):
    """An argparse type: a whole number in ``[low, high]`` (a mistake exits 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            upper = "" if high is None else f" and at most {high}"
            raise argparse.ArgumentTypeError(f"must be at least {low}{upper}, got {value}")
        return value

    return parse

"""Time, memory and size budgets for symbolic work that a user's input can trigger.

``simplify``, ``factor``, ``cse`` and ``lambdify`` can run for minutes on an
adversarial expression.  Work on registry losses is trusted; work on a formula
parsed from user text runs inside :func:`budget`, which raises
:class:`~symloss.BudgetExceeded` instead of hanging or exhausting memory.

The limits are checked by a POSIX interval timer (``SIGALRM``) that ticks every
:data:`TICK_SECONDS` while a budget runs: each tick compares the clock with the
deadline and the process's resident memory with the memory budget.  Python can only
install that timer in the main thread; elsewhere (worker threads, Windows) only the
size limits apply.  That is documented, not hidden: :func:`can_time_out` says which.

A tick runs between Python bytecodes, so one long C call (an exact power of a huge
integer, for instance) cannot be interrupted: such work is refused before SymPy sees
it, by the parser's magnitude bounds (:mod:`symloss._latex_in`).
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sympy as sp

from symloss.errors import BudgetExceeded

#: Default wall-clock budget for deriving one user-supplied loss, in seconds.
DEFAULT_SECONDS = 20.0
#: Largest expression (in tree nodes) that a derivation may produce or consume.
MAX_NODES = 5_000
#: Default memory budget of one budgeted step: how far the resident memory of the
#: process may grow while it runs, in MiB.
MAX_MEMORY_MB = 512
#: How often a running budget looks at the clock and the memory, in seconds.
TICK_SECONDS = 0.05


def can_time_out() -> bool:
    """Whether :func:`budget` can interrupt work here (main thread with SIGALRM)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@dataclass
class _Frame:
    """One running :func:`budget`."""

    what: str
    seconds: float
    deadline: float
    memory_mb: float | None
    rss_limit: int | None  # bytes; None: no memory limit
    open: bool = True  # False while the budget is being left: ticks then wait


#: The budgets running in the main thread, outermost first.  One timer serves them all.
_FRAMES: list[_Frame] = []
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The process's resident memory now (Linux), else its peak so far, in bytes."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes


def _tick(signum, frame) -> None:
    if not _FRAMES or not _FRAMES[-1].open or (frame is not None and frame.f_code in _QUIET):
        # A budget is being entered or left (contextlib's __enter__/__exit__, or the
        # generator below): an exception there would leave the timer running with no
        # one to stop it.  The next tick checks again.
        return
    now, rss = time.monotonic(), None
    for f in _FRAMES:  # outermost first: the message names the step that ran over
        if now > f.deadline:
            raise BudgetExceeded(f"{f.what} took longer than its budget of {f.seconds:g} s")
        if f.rss_limit is not None:
            rss = resident_bytes() if rss is None else rss
            if rss > f.rss_limit:
                raise BudgetExceeded(
                    f"{f.what} used more than its memory budget of {f.memory_mb:g} MiB"
                )


@contextmanager
def budget(
    seconds: float | None, what: str, memory_mb: float | None = MAX_MEMORY_MB
) -> Iterator[None]:
    """Run the block with a wall-clock and a memory limit; raise BudgetExceeded past them.

    ``seconds=None`` disables both limits (trusted work).  *memory_mb* bounds how far
    the process's resident memory may grow during the block (``None``: no bound).
    Nested budgets each keep their own limits, so the tighter one wins.  An expired
    budget raises again at every tick until its block is left, so code that catches
    and ignores the first :class:`~symloss.BudgetExceeded` cannot outrun it.  A
    ``MemoryError`` or ``RecursionError`` inside the block is reported as
    :class:`~symloss.BudgetExceeded` too.
    """
    if not seconds or not can_time_out():
        yield
        return
    start = time.monotonic()
    limit = None if memory_mb is None else resident_bytes() + int(memory_mb * 2**20)
    frame = _Frame(what, seconds, start + seconds, memory_mb, limit)
    outermost = not _FRAMES
    if outermost:
        previous_handler = signal.getsignal(signal.SIGALRM)
        remaining, interval = signal.getitimer(signal.ITIMER_REAL)
        if remaining and remaining < seconds:  # someone else's alarm comes first: leave it
            yield
            return
        _FRAMES.append(frame)
        signal.signal(signal.SIGALRM, _tick)
        signal.setitimer(signal.ITIMER_REAL, min(TICK_SECONDS, seconds), TICK_SECONDS)
    else:  # the timer already ticks for an outer budget
        _FRAMES.append(frame)
    try:
        yield
    except MemoryError:
        raise BudgetExceeded(f"{what} ran out of memory") from None
    except RecursionError:
        raise BudgetExceeded(f"{what} nested too deeply") from None
    finally:
        # No call before this store, so no tick can run in between; from here on the
        # ticks wait, and leaving cannot be cut short by our own BudgetExceeded.
        frame.open = False
        if outermost:
            signal.setitimer(signal.ITIMER_REAL, 0)
        _FRAMES.remove(frame)
        if outermost:
            signal.signal(signal.SIGALRM, previous_handler)
            if remaining:  # give someone else's timer back what it had left
                left = remaining - (time.monotonic() - start)
                signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), interval)


#: Code during which ticks wait: entering and leaving a budget.
_QUIET = frozenset(
    f.__code__
    for f in (
        budget.__wrapped__,  # type: ignore[attr-defined]
        getattr(contextlib._GeneratorContextManager, "__enter__", None),
        getattr(contextlib._GeneratorContextManager, "__exit__", None),
    )
    if f is not None
)


def check_size(expr: sp.Basic, what: str, limit: int = MAX_NODES) -> None:
    """Raise BudgetExceeded if *expr* has more than *limit* nodes."""
    count = 0
    for _ in sp.preorder_traversal(expr):
        count += 1
        if count > limit:
            raise BudgetExceeded(f"{what} is too large (more than {limit} nodes)")

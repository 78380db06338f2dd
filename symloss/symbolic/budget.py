"""Time and size budgets for symbolic work that a user's input can trigger.

``simplify``, ``factor``, ``cse`` and ``lambdify`` can run for minutes on an
adversarial expression.  Work on registry losses is trusted; work on a formula
parsed from user text runs inside :func:`budget`, which raises
:class:`~symloss.BudgetExceeded` instead of hanging.

The time limit uses a POSIX interval timer (``SIGALRM``), which Python can only
install in the main thread; elsewhere (worker threads, Windows) only the size
limits apply.  That is documented, not hidden: :func:`can_time_out` says which.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sympy as sp

from symloss.errors import BudgetExceeded

#: Default wall-clock budget for deriving one user-supplied loss, in seconds.
DEFAULT_SECONDS = 20.0
#: Largest expression (in tree nodes) that a derivation may produce or consume.
MAX_NODES = 5_000


def can_time_out() -> bool:
    """Whether :func:`budget` can interrupt work here (main thread with SIGALRM)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def budget(seconds: float | None, what: str) -> Iterator[None]:
    """Run the block with a wall-clock limit; raise BudgetExceeded past it.

    Nested budgets keep the tighter deadline.  ``seconds=None`` disables the limit.
    """
    if not seconds or not can_time_out():
        yield
        return
    previous_handler = signal.getsignal(signal.SIGALRM)
    remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    if remaining and remaining < seconds:  # an outer budget is tighter: leave it alone
        yield
        return

    def expire(signum, frame):
        raise BudgetExceeded(f"{what} took longer than its budget of {seconds:g} s")

    start = time.monotonic()
    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if remaining:  # give the outer budget back what it had left
            left = remaining - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))


def check_size(expr: sp.Basic, what: str, limit: int = MAX_NODES) -> None:
    """Raise BudgetExceeded if *expr* has more than *limit* nodes."""
    count = 0
    for _ in sp.preorder_traversal(expr):
        count += 1
        if count > limit:
            raise BudgetExceeded(f"{what} is too large (more than {limit} nodes)")

"""The timer the benchmark scripts share (imported as ``timing``: each script is run
as ``python benchmarks/NAME.py``, which puts this folder on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_of(
    fn: Callable[[], object],
    repeat: int,
    clock: Callable[[], float] = time.thread_time,
    warm_up: bool = False,
) -> float:
    """The least time of *repeat* runs of *fn*, by *clock*.

    The default clock is the calling thread's CPU time: on a shared machine, wall-clock
    time also counts the turns other processes held the core (so run single-threaded,
    ``--threads 1``).  Pass ``time.perf_counter`` where the work runs on other threads.
    *warm_up* runs *fn* once first, untimed (kernels generated, jit compiled)."""
    if warm_up:
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        fn()
        best = min(best, clock() - start)
    return best

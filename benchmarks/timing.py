"""The timer the benchmark scripts share (imported as ``timing``: each script is run
as ``python benchmarks/NAME.py``, which puts this folder on ``sys.path``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


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
    return best_of_each([fn], repeat, clock, warm_up)[0]


def best_of_each(
    fns: Sequence[Callable[[], object]],
    repeat: int,
    clock: Callable[[], float] = time.thread_time,
    warm_up: bool = False,
) -> list[float]:
    """The least time of *repeat* runs of each of *fns*, the runs taken in turns (one of
    each, *repeat* times): a burst of load from another process slows every function's
    runs alike, not the runs of whichever function it happened to meet."""
    if warm_up:
        for fn in fns:
            fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for k, fn in enumerate(fns):
            start = clock()
            fn()
            best[k] = min(best[k], clock() - start)
    return best

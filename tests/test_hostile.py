r"""Hostile input (issue 19): work that a formula can trigger is bounded in time and memory.

* Budgets (:mod:`symloss._budget`): the timer ticks, checks memory as well as time,
  fires again when its exception is swallowed, and leaves no timer behind.
"""

from __future__ import annotations

import signal
import time

import pytest

from symloss import BudgetExceeded, _budget


# ============================================================================ budgets
def _spin():
    while True:  # real work in the loop: CPython 3.11 may not catch a signal's
        sum(range(100))  # exception raised on a jump to itself (`while True: pass`)


def _no_timer_left():
    assert not _budget._FRAMES
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, None, signal.default_int_handler)


def test_budget_stops_a_long_loop():
    start = time.monotonic()
    with pytest.raises(BudgetExceeded, match="spinning took longer than its budget of 0.2 s"):
        with _budget.budget(0.2, "spinning"):
            _spin()
    assert time.monotonic() - start < 1.0
    _no_timer_left()


def test_budget_bounds_memory():
    """Growing memory is stopped at the memory budget, well before the time budget."""
    kept = []
    start = time.monotonic()
    with pytest.raises(BudgetExceeded, match="memory budget of 64 MiB"):
        with _budget.budget(30.0, "allocating", memory_mb=64):
            while True:
                kept.append(bytearray(2**20))  # touched: resident at once
    assert time.monotonic() - start < 5.0
    assert 40 <= len(kept) < 400, len(kept)  # stopped near 64 MiB, not at the time limit
    kept.clear()
    _no_timer_left()


def _work(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(range(100))


def test_expired_budget_fires_again_when_its_exception_is_swallowed():
    """SymPy has ``except Exception: pass`` in places; the budget must still end the block."""
    swallowed = False
    start = time.monotonic()
    with pytest.raises(BudgetExceeded):
        with _budget.budget(0.2, "stubborn"):
            try:
                _work(10.0)  # the first expiry surely lands here ...
            except BudgetExceeded:
                swallowed = True  # ... and is swallowed
            _work(3.0)  # only a second firing stops this
    assert swallowed and time.monotonic() - start < 1.0
    _no_timer_left()


def test_nested_budgets_the_tighter_wins_and_outer_fires_through_inner():
    with pytest.raises(BudgetExceeded, match="outer took longer"):
        with _budget.budget(0.2, "outer"):
            with _budget.budget(10.0, "inner"):
                _spin()
    with pytest.raises(BudgetExceeded, match="inner took longer"):
        with _budget.budget(10.0, "outer"):
            with _budget.budget(0.2, "inner"):
                _spin()
    _no_timer_left()


def test_many_short_budgets_leave_no_timer_behind():
    """Leaving a budget as its timer ticks must not leave the timer running."""
    for _ in range(2000):
        try:
            with _budget.budget(0.001, "short"):
                sum(range(3000))
        except BudgetExceeded:
            pass
    _no_timer_left()


def test_memory_and_recursion_errors_become_budget_exceeded():
    def deep(k):
        return deep(k + 1)

    with pytest.raises(BudgetExceeded, match="nested too deeply"):
        with _budget.budget(5.0, "recursing"):
            deep(0)
    with pytest.raises(BudgetExceeded, match="ran out of memory"):
        with _budget.budget(5.0, "allocating"):
            raise MemoryError
    _no_timer_left()


def test_no_budget_means_no_timer():
    with _budget.budget(None, "trusted"):
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

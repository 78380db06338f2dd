"""Long fuzz of the LaTeX front end (issue 8): the strategies of tests/test_reliability.py,
>= 10^5 examples by default.  Prints outcome counts (Loss / ParseError by reason),
elapsed time and max RSS.  Usage: python benchmarks/fuzz_long.py --examples 100000
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import test_reliability as R  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=100_000)
    ap.add_argument(
        "--strategies",
        nargs="+",
        choices=sorted(R.ALL_STRATEGIES),
        default=list(R.ALL_STRATEGIES),
        help="run only these (examples are split evenly between all four strategies)",
    )
    args = ap.parse_args()
    counts: collections.Counter = collections.Counter()
    per = args.examples // len(R.ALL_STRATEGIES)
    start = time.monotonic()

    def runner(name, strategy):
        @settings(
            max_examples=per,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def run(text):
            counts[(name, R.outcome_from_latex(text))] += 1

        return run

    for name in args.strategies:
        runner(name, R.ALL_STRATEGIES[name])()
        print(f"{name}: done ({time.monotonic() - start:.0f} s)", flush=True)
    total = sum(counts.values())
    for (strategy, outcome), k in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{k:8d}  {strategy:10s} {outcome}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {total} examples in {time.monotonic() - start:.0f} s; max RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

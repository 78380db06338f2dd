"""float32 against float64: value_and_grad at 10^6 elements, time and memory side by side.

Every figure comes from one run: for each loss, the same inputs in float64 and in
float32 (best of ``--repeat``), the ratio float32 / float64 (the target of issue 18:
below 1), and the peak memory a call allocates beyond its inputs, as a multiple of
the input's size in its own type (tracemalloc sees NumPy's allocations).  Machines
are noisy: compare ratios, not seconds.

    python benchmarks/float32.py              # 10^6 elements, one thread
    python benchmarks/float32.py --threads 2  # two (times are the main thread's CPU)
    python benchmarks/float32.py --quick      # 10^5 elements, to check the script runs
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import best_of  # noqa: E402

import symloss  # noqa: E402

#: (loss, rows, classes): 10^6 elements each (classes None: element-wise).
CASES = [
    ("bce_logits", None),
    ("mse", None),
    ("huber", None),
    ("log_cosh", None),
    ("sigmoid_focal", None),
    ("cce_logits", 10),
    ("softmax_focal", 10),
    ("multilabel_soft_margin", 10),
]


def inputs(loss, size: int, classes, dtype):
    rng = np.random.default_rng(0)
    if classes is None:
        z = rng.normal(scale=3.0, size=size)
        t = (rng.random(size) < 0.5).astype(float)
    else:
        z = rng.normal(scale=3.0, size=(size // classes, classes))
        t = np.eye(classes)[rng.integers(0, classes, size // classes)]
    dom = loss.domains.get(str(loss.pred.label))
    if dom is not None and dom.text() in ("(0, 1)", "[0, 1]"):
        z = 1 / (1 + np.exp(-z))
    return z.astype(dtype), t.astype(dtype)


def peak_extra(fn) -> int:
    """Bytes allocated at the peak of one call (the result included)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^5 elements, 3 repeats")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="1 (default): thread CPU time is exact")
    args = ap.parse_args()
    size = 10**5 if args.quick else 10**6
    repeat = 3 if args.quick else args.repeat
    if args.threads:
        symloss.configure(threads=args.threads)
    threads = symloss.numeric.config.settings().threads
    print(f"value_and_grad at {size:,} elements, {threads} thread(s), best of {repeat}")
    print(f"{'loss':<26}{'float64':>10}{'float32':>10}{'f32/f64':>9}{'mem64':>8}{'mem32':>8}")
    for name, classes in CASES:
        L = symloss.get(name)
        row = {}
        for dtype in (np.float64, np.float32):
            z, t = inputs(L, size, classes, dtype)
            call = L.value_and_grad
            call(z, t)  # compiled (or loaded) before timing
            row[dtype] = (
                best_of(lambda z=z, t=t, call=call: call(z, t), repeat),
                peak_extra(lambda z=z, t=t, call=call: call(z, t)) / z.nbytes,
            )
        (t64, m64), (t32, m32) = row[np.float64], row[np.float32]
        print(
            f"{name:<26}{t64 * 1e3:>8.2f}ms{t32 * 1e3:>8.2f}ms{t32 / t64:>8.2f}x"
            f"{m64:>7.1f}x{m32:>7.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()

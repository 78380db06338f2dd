"""Derivation cost: building the catalog cold, ``symloss show bce``, and independence of n.

Three measurements, in one run, each in fresh subprocesses so that nothing is cached:

1. **Cold catalog build**: import symloss and derive every registered loss's gradient
   and Hessian and compile its value, gradient, Hessian and fused value-and-gradient
   kernels.  Target: under 10 s.
2. **CLI start-up**: ``symloss show bce`` against ``python -c "import sympy, numpy"``,
   best of ``--repeat``.  Target: under 2x.
3. **Derivation does not depend on n**: the first ``value_and_grad`` call in a fresh
   process at a tiny and at a large n, minus the same call once warm.  The difference
   (derivation + compilation) is the same at both sizes, and no kernel is built again
   when the size changes (kernel constructions are counted).

    python benchmarks/derivation.py
    python benchmarks/derivation.py --quick     # one repeat, small "large" sizes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

BUILD = r"""
import json, time
start = time.perf_counter()
import symloss
from symloss.numeric import evaluate
imported = time.perf_counter() - start
per = {}
for L in symloss.catalog():
    t0 = time.perf_counter()
    L.gradient(); L.hessian()
    evaluate.of(L).value; evaluate.of(L).gradient; evaluate.of(L).hessian; evaluate.of(L).fused
    per[L.name] = time.perf_counter() - t0
print(json.dumps({"import": imported, "total": time.perf_counter() - start, "per": per}))
"""

FIRST_CALL = r"""
import json, sys, time
import numpy as np
import symloss
from symloss.numeric import kernel as _numeric
from symloss.numeric import evaluate

built = []
init = _numeric.Kernel.__init__
def counting(self, *a, **k):
    built.append(1)
    init(self, *a, **k)
_numeric.Kernel.__init__ = counting

name, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
if m > 1:
    z = rng.normal(size=(n, m)); t = np.eye(m)[rng.integers(0, m, n)]
else:
    z = rng.normal(size=n); t = (rng.random(n) < 0.5).astype(float)
L = symloss.get(name)
t0 = time.perf_counter(); L.value_and_grad(z, t); first = time.perf_counter() - t0
kernels_first = len(built)
warm = min(
    (lambda t0: (L.value_and_grad(z, t), time.perf_counter() - t0)[1])(time.perf_counter())
    for _ in range(3)
)
# Another size in the same process: nothing is derived or compiled again.
z2, t2 = (z[:7], t[:7])
L.value_and_grad(z2, t2)
print(json.dumps({"first": first, "warm": warm, "kernels_first": kernels_first,
                  "kernels_after_resize": len(built) - kernels_first}))
"""


def best_of(cmd, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def run_json(code, *args):
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one repeat, smaller large sizes")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    repeat = 1 if args.quick else args.repeat

    # 1. cold build of the whole catalog
    build = run_json(BUILD)
    per = sorted(build["per"].items(), key=lambda kv: -kv[1])
    print("1. Cold build of the full catalog (fresh process)")
    print(f"{'':36s} {'seconds':>8s}")
    print(f"{'import symloss':36s} {build['import']:8.3f}")
    for name, secs in per[:5]:
        print(f"{'  slowest: ' + name:36s} {secs:8.3f}")
    print(f"{'total (' + str(len(per)) + ' losses, target < 10 s)':36s} {build['total']:8.3f}")

    # 2. symloss show bce vs importing sympy and numpy
    base = best_of([sys.executable, "-c", "import sympy, numpy"], repeat)
    show = best_of([sys.executable, "-m", "symloss", "show", "bce"], repeat)
    print(f"\n2. CLI start-up, best of {repeat} (fresh processes)")
    print(f"{'':36s} {'seconds':>8s} {'ratio':>8s}")
    label = 'python -c "import sympy, numpy"'
    print(f"{label:36s} {base:8.3f} {1.0:7.2f}x")
    print(f"{'symloss show bce (target < 2x)':36s} {show:8.3f} {show / base:7.2f}x")

    # 3. derivation cost does not depend on n
    big_n = 10**4 if args.quick else 10**6
    big_rows = 10**3 if args.quick else 10**5
    print("\n3. First value_and_grad call in a fresh process, tiny vs large input")
    print("   derivation = first call - warm call (derive + compile, done once per loss)")
    print(
        f"{'loss':14s} {'shape':>10s} {'first s':>9s} {'warm s':>9s} {'derivation s':>13s} "
        f"{'kernels built':>13s} {'rebuilt on resize':>17s}"
    )
    for name, m, sizes in (
        ("bce_logits", 1, (10, big_n)),
        ("cce_logits", 10, (10, big_rows)),
    ):
        for n in sizes:
            r = run_json(FIRST_CALL, name, n, m)
            shape = f"{n}x{m}" if m > 1 else f"{n}"
            print(
                f"{name:14s} {shape:>10s} {r['first']:9.4f} {r['warm']:9.4f} "
                f"{r['first'] - r['warm']:13.4f} {r['kernels_first']:13d} "
                f"{r['kernels_after_resize']:17d}"
            )


if __name__ == "__main__":
    main()

"""Would a numexpr backend pay?  numexpr against symloss's default kernels, side by side.

"default" is ``L.value_and_grad`` as shipped: the compiled C loop on large blocks where a
C compiler works (``symloss.get_backend() == "auto"``), else the fused NumPy code.

The issue tracker suggested numexpr for fused evaluation.  This script measures the
question on the machine at hand, in one run: the same value-and-gradient work as one
``numexpr.evaluate`` per output over the whole array (numexpr's own blocks and
threads), against ``L.value_and_grad``, against the raw functions each needs, and the
copy floor.  The numexpr strings are written here by hand, as the hand NumPy of
benchmarks/kernels.py is: they are the competitor, not a symloss code path.

    pip install numexpr && python benchmarks/numexpr_probe.py
    python benchmarks/numexpr_probe.py --quick     # tiny sizes, to check it runs
"""

from __future__ import annotations

import argparse

import numpy as np
from catalog import best_of  # the one timing helper of benchmarks/

import symloss
from symloss.numeric import config

CASES = {
    # name: (value string, gradient string without the 1/n); stable forms, as symloss's.
    "bce_logits": (
        "log1p(exp(-abs(z))) + where(z > 0, z, 0) - z * t",
        "where(z >= 0, 1, exp(-abs(z))) / (1 + exp(-abs(z))) - t",
    ),
    "huber": (
        "where(abs(z - t) < 1, 0.5 * (z - t) ** 2, abs(z - t) - 0.5)",
        "where(abs(z - t) < 1, z - t, where(z > t, 1, where(z < t, -1, 0)))",
    ),
    "mse": ("(z - t) ** 2", "2 * (z - t)"),
}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    try:
        import numexpr as ne
    except ImportError:
        print("numexpr is not installed: nothing to compare (pip install numexpr).")
        return
    n, repeat = (10**7, args.repeat) if not args.quick else (1000, 1)
    ne.set_num_threads(config.settings().threads)
    print(
        f"numexpr {ne.__version__} ({ne.get_num_threads()} threads, VML: {ne.use_vml}), "
        f"numpy {np.__version__}, symloss threads {config.settings().threads}; n = {n}, float64, "
        f"best of {repeat}"
    )
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=n)
    print(f"\n{'work':46s} {'seconds':>9s}")
    raw = {
        "numpy.exp": lambda: np.exp(z),
        "numexpr exp": lambda: ne.evaluate("exp(z)", local_dict={"z": z}),
        "numpy.log1p": lambda: np.log1p(np.abs(z)),
        "numexpr log1p": lambda: ne.evaluate("log1p(abs(z))", local_dict={"z": z}),
    }
    for label, fn in raw.items():
        print(f"{label:46s} {best_of(fn, repeat):9.4f}")
    for name, (value, grad) in CASES.items():
        t = (rng.random(n) < 0.5) * 1.0 if name == "bce_logits" else rng.normal(size=n)
        compare(ne, name, value, grad, z, t, repeat)


def compare(ne, name, value, grad, z, t, repeat):
    L = symloss.get(name)
    n = z.size
    env = {"z": z, "t": t}
    g = np.empty(n)

    def with_numexpr():
        v = ne.evaluate(f"sum({value})", local_dict=env) / n
        ne.evaluate(f"({grad}) / {float(n)!r}", local_dict=env, out=g)
        return v, g

    ours = L.value_and_grad(z, t)
    theirs = with_numexpr()
    assert np.isclose(ours[0], theirs[0], rtol=1e-9), (name, ours[0], theirs[0])
    assert np.allclose(ours[1], theirs[1], rtol=1e-9, atol=1e-300), name
    t_ours = best_of(lambda: L.value_and_grad(z, t), repeat)
    t_ne = best_of(with_numexpr, repeat)
    t_copy = best_of(lambda: (z.copy(), t.copy()), repeat)
    print(f"{name + ': symloss value_and_grad (default)':46s} {t_ours:9.4f}")
    print(f"{name + ': numexpr, value and gradient':46s} {t_ne:9.4f}")
    print(f"{name + ': copy of the inputs':46s} {t_copy:9.4f}")
    print(f"{name + ': numexpr / symloss':46s} {t_ne / t_ours:8.2f}x")


if __name__ == "__main__":
    main()

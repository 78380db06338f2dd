"""value_and_grad from 10 elements to 10^7, float64 and float32, and the first-use cost.

Every figure comes from one run, measured side by side (the least thread CPU time of
``--repeat``, on one thread); ratios are symloss / other.  Machines are noisy: compare
ratios, not seconds.

    python benchmarks/small.py             # n = 10 ... 10^7, 16 x 10 ... 10^6 x 10
    python benchmarks/small.py --quick     # small sizes only, to check the script runs

Columns: symloss ``value_and_grad`` (float64), the 5-line stable hand NumPy, torch
forward + backward (when installed), the ratios to both, and symloss on float32
inputs with its ratio to float64.  The targets of issue 18: below 1,000 elements
within 3x of hand NumPy, from 1,000 on within 1.5x, at every size at most torch.

The last table is the first-use cost: a fresh process with an empty kernel cache
timing its first large call (which runs the C compiler), the same with the cache
filled, and ``symloss build`` of the two losses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from timing import best_of  # noqa: E402

import symloss  # noqa: E402


def inner(fn, budget: float = 0.02):
    """*fn* repeated enough times that one timing lasts about *budget* seconds."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    k = max(1, int(budget / once))

    def many():
        for _ in range(k):
            fn()

    return many, k


def hand_bce_logits(z, t):
    e = np.exp(-np.abs(z))
    value = np.mean(np.maximum(z, 0) - z * t + np.log1p(e))
    grad = (np.where(z >= 0, 1.0, e) / (1 + e) - t) / z.size
    return value, grad


def hand_cce_logits(z, t):
    shifted = z - z.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    value = -np.sum(t * (shifted - np.log(s))) / z.shape[0]
    grad = (e / s - t) / z.shape[0]
    return value, grad


def torch_pair(name):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    F = torch.nn.functional

    def run(z, t):
        zt = torch.from_numpy(z).requires_grad_(True)
        tt = torch.from_numpy(t)
        if name == "bce_logits":
            loss = F.binary_cross_entropy_with_logits(zt, tt)
        else:
            loss = F.cross_entropy(zt, tt)
        loss.backward()
        return loss.item(), zt.grad

    return run


def inputs(shape, dtype=np.float64):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=shape)
    if len(shape) == 1:
        t = (rng.random(shape) < 0.5).astype(np.float64)
    else:
        t = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    return z.astype(dtype), t.astype(dtype)


def measure(name, shape, repeat, torch_run):
    z, t = inputs(shape)
    z32, t32 = inputs(shape, np.float32)
    L = symloss.get(name)
    hand = hand_bce_logits if name == "bce_logits" else hand_cce_logits
    # Kernels built (and compiled) before timing: a small call runs the compiled loop
    # from a process's compile_after_calls-th call of it on (sooner when cached).
    with symloss.configured(compile_after_calls=0):
        v, g = L.value_and_grad(z, t)
        L.value_and_grad(z32, t32)
    hv, hg = hand(z, t)
    assert np.isclose(v, hv, rtol=1e-10) and np.allclose(g, hg, rtol=1e-9, atol=1e-15)
    row = {}
    for key, fn in (
        ("symloss", lambda: L.value_and_grad(z, t)),
        ("hand", lambda: hand(z, t)),
        ("torch", (lambda: torch_run(z, t)) if torch_run else None),
        ("float32", lambda: L.value_and_grad(z32, t32)),
        ("numpy", lambda: L.value_and_grad(z, t)),
    ):
        if fn is None:
            row[key] = float("nan")
            continue
        # The NumPy code: what calls before the loop is compiled run.
        with symloss.backend("fused" if key == "numpy" else symloss.get_backend()):
            many, k = inner(fn)
            row[key] = best_of(many, repeat) / k
    return row


def fmt(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def first_use(names, quick: bool) -> list[tuple[str, float]]:
    """Seconds of a fresh process's first large value_and_grad, cold and warm cache,
    and of ``symloss build`` for *names*."""
    root = str(HERE.parent)
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    size = 100_000 if quick else 1_000_000
    code = (
        "import time, numpy as np, symloss\n"
        f"names = {list(names)!r}\n"
        "Ls = [symloss.get(n) for n in names]\n"
        "data = []\n"
        f"z = np.random.default_rng(0).normal(size={size})\n"
        "for n, L in zip(names, Ls):\n"
        "    if n == 'cce_logits':\n"
        f"        zz = z.reshape(-1, 10); tt = np.eye(10)[np.arange({size} // 10) % 10]\n"
        "    else:\n"
        "        zz = z; tt = (z > 0).astype(float)\n"
        "    L.gradient()\n"  # the symbolic side, not measured here
        "    data.append((L, zz, tt))\n"
        "start = time.perf_counter()\n"
        "for L, zz, tt in data:\n"
        "    L.value_and_grad(zz, tt)\n"
        "print(time.perf_counter() - start)\n"
    )
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env["SYMLOSS_CACHE_DIR"] = cache
        for label in ("first large call, empty cache (gcc)", "first large call, cache filled"):
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            rows.append((label, float(out.stdout.split()[-1])))
    with tempfile.TemporaryDirectory() as cache:
        env["SYMLOSS_CACHE_DIR"] = cache
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "symloss", "build", *names, "--quiet"],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            rows.append(
                (
                    "symloss build " + " ".join(names) + " (whole process)",
                    time.perf_counter() - start,
                )
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only, 3 repeats")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--no-first-use", action="store_true", help="skip the first-use table")
    args = ap.parse_args()
    repeat = 3 if args.quick else args.repeat
    symloss.configure(threads=1)
    cases = {
        "bce_logits": [(10,), (1000,), (10**5,), (10**7,)],
        "cce_logits": [(16, 10), (256, 10), (10**4, 10), (10**6, 10)],
    }
    if args.quick:
        cases = {k: v[:2] for k, v in cases.items()}
    print(f"value_and_grad, one thread, best of {repeat}; ratios are symloss / other")
    head = (
        f"{'case':<24}{'symloss':>10}{'hand np':>10}{'torch':>10}"
        f"{'/hand':>8}{'/torch':>8}{'float32':>10}{'f32/f64':>9}{'numpy':>10}{'/hand':>8}"
    )
    print(head)
    for name, shapes in cases.items():
        torch_run = torch_pair(name)
        for shape in shapes:
            r = measure(name, shape, repeat, torch_run)
            label = f"{name} {'x'.join(map(str, shape))}"
            print(
                f"{label:<24}{fmt(r['symloss']):>10}{fmt(r['hand']):>10}{fmt(r['torch']):>10}"
                f"{r['symloss'] / r['hand']:>7.2f}x{r['symloss'] / r['torch']:>7.2f}x"
                f"{fmt(r['float32']):>10}{r['float32'] / r['symloss']:>8.2f}x"
                f"{fmt(r['numpy']):>10}{r['numpy'] / r['hand']:>7.2f}x",
                flush=True,
            )
    if not args.no_first_use:
        print("\nfirst use (fresh process, both losses, seconds)")
        for label, seconds in first_use(list(cases), args.quick):
            print(f"{label:<56}{seconds:>8.3f} s")


if __name__ == "__main__":
    main()

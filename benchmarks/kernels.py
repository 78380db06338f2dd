"""Time symloss's kernels against hand-written stable NumPy (and torch, when installed).

Every figure in a table comes from the same run, measured side by side, best of
``--repeat`` runs; ratios are symloss / other.  Machines are noisy: compare ratios, not
seconds.

    python benchmarks/kernels.py            # n = 10^7 (bce_logits), 10^6 x 10 (cce_logits)
    python benchmarks/kernels.py --quick    # tiny sizes, to check the script runs
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np
from catalog import best_of, on_backend  # the timing helpers of benchmarks/

import symloss
from symloss.numeric import config
from symloss.numeric.blocks import block_elements


def hand_bce_logits(z, t):
    # The usual stable form: max(z, 0) - z t + log1p(exp(-|z|)).
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
    torch.set_num_threads(2)
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


def case(name, shape, repeat):
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=shape)
    if len(shape) == 1:
        t = (rng.random(shape) < 0.5).astype(np.float64)
        hand = hand_bce_logits
    else:
        t = np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        hand = hand_cce_logits
    L = symloss.get(name)
    L(z[:4], t[:4]), L.grad(z[:4], t[:4]), L.value_and_grad(z[:4], t[:4])  # compile first

    value, grad = hand(z, t)
    assert np.isclose(L(z, t), value, rtol=1e-10)
    assert np.allclose(L.grad(z, t), grad, rtol=1e-9, atol=1e-15)

    threads = config.settings().threads
    rows = {
        "symloss value_and_grad": best_of(lambda: L.value_and_grad(z, t), repeat),
        "symloss L + L.grad": best_of(lambda: (L(z, t), L.grad(z, t)), repeat),
    }
    for label, backend in (
        ("symloss vag, NumPy code", "fused"),
        ("symloss vag, lambdify", "lambdify"),
    ):
        rows[label] = best_of(on_backend(backend, lambda: L.value_and_grad(z, t)), repeat)
    with symloss.configured(threads=1):
        rows["symloss vag, 1 thread"] = best_of(lambda: L.value_and_grad(z, t), repeat)
    rows.update(
        {
            "hand stable NumPy": best_of(lambda: hand(z, t), repeat),
            "copy of the inputs": best_of(lambda: (z.copy(), t.copy()), repeat),
        }
    )
    torch_run = torch_pair(name)
    if torch_run is not None:
        import torch

        rows[f"torch {torch.__version__} fwd+bwd"] = best_of(lambda: torch_run(z, t), repeat)
    ours = rows["symloss value_and_grad"]
    print(f"\n{name}, float64, shape {shape}")
    print(
        "symloss value_and_grad = the default path (SYMLOSS_BACKEND=auto: one value+gradient"
        " kernel, compiled to one C loop where a C compiler works), blocks of "
        f"{block_elements()} elements on {threads} thread(s), inputs checked per block;"
        " 'NumPy code' = the same kernel as generated in-place NumPy code (no compiler), in"
        f" blocks of {on_backend('fused', block_elements)()} elements;"
        " 'lambdify' = the same blocks through SymPy's lambdify."
    )
    print(f"{'':26s} {'seconds':>10s} {'symloss / this':>15s}")
    for label, secs in rows.items():
        print(f"{label:26s} {secs:10.4f} {ours / secs:14.2f}x")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    n1, (n2, m2), repeat = (
        (10**7, (10**6, 10), args.repeat) if not args.quick else (1000, (100, 10), 1)
    )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    case("bce_logits", (n1,), repeat)
    case("cce_logits", (n2, m2), repeat)


if __name__ == "__main__":
    main()

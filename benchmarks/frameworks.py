"""Forward plus backward of symloss's PyTorch and JAX losses against the frameworks' own.

PyTorch: ``L.to_torch()`` against ``torch.nn.functional``'s binary_cross_entropy_with_logits,
cross_entropy (integer labels, and one-hot rows), huber_loss and mse_loss, and against
torchvision's ``sigmoid_focal_loss``.  torchvision is not installed here, so its formula
is written out below (``torchvision_sigmoid_focal_loss``, as in torchvision 0.2x's
``ops/focal_loss.py``), differentiated by autograd as torchvision's is.

JAX: ``L.to_jax()`` against the same losses written in JAX as optax writes them (optax
is not installed here either; each formula below names its optax function), both under
``jax.jit(jax.value_and_grad(...))``.

Every row is measured side by side in one run, best of ``--repeat``; the ratio is
symloss / built-in (below 1: symloss is faster).  Machines are noisy: compare ratios.
With a CUDA GPU the PyTorch rows run there too.

    python benchmarks/frameworks.py                   # 10^6 elements and 10^5 x 10, float32
    python benchmarks/frameworks.py --dtype float64
    python benchmarks/frameworks.py --quick           # tiny sizes, to check the script runs
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

# This checkout's symloss, not an installed copy (the script's own folder is first on
# sys.path, the repository root is not).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import timing  # noqa: E402

import symloss  # noqa: E402
from symloss.numeric.config import settings  # noqa: E402


def best_of(fns, repeat: int) -> list[float]:
    """Wall-clock time of each of *fns* (torch and JAX run their own threads), after a
    warm-up run of each; the runs taken in turns."""
    return timing.best_of_each(fns, repeat, clock=time.perf_counter, warm_up=True)


# ------------------------------------------------------------------ inputs
def inputs(case: str, n: int, rows: tuple[int, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    if case.startswith("cce_logits"):
        z = rng.normal(scale=3.0, size=rows)
        labels = rng.integers(0, rows[1], rows[0])
        target = labels if case.endswith("labels") else np.eye(rows[1])[labels]
        return z, target
    z = rng.normal(scale=3.0, size=n)
    if case in ("bce_logits", "sigmoid_focal"):
        return z, (rng.random(n) < 0.5).astype(np.float64)
    return z, rng.normal(scale=3.0, size=n)


CASES = {  # the symloss loss of each row
    "bce_logits": ("bce_logits", {}),
    "cce_logits, labels": ("cce_logits", {}),
    "cce_logits, one-hot": ("cce_logits", {}),
    "huber": ("huber", {"delta": 1.0}),
    "mse": ("mse", {}),
    "sigmoid_focal": ("sigmoid_focal", {"alpha": 0.25, "gamma": 2.0}),
}


# ------------------------------------------------------------------ PyTorch
def torchvision_sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="mean"):
    """torchvision.ops.sigmoid_focal_loss, written out (torchvision is not installed)."""
    import torch
    import torch.nn.functional as F

    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    return loss.mean() if reduction == "mean" else loss


def torch_builtin(case: str):
    import torch.nn.functional as F

    return {
        "bce_logits": F.binary_cross_entropy_with_logits,
        "cce_logits, labels": F.cross_entropy,
        "cce_logits, one-hot": F.cross_entropy,
        "huber": lambda y, t: F.huber_loss(y, t, delta=1.0),
        "mse": F.mse_loss,
        "sigmoid_focal": torchvision_sigmoid_focal_loss,
    }[case]


def torch_rows(n, rows, dtype, repeat, device):
    import torch

    out = []
    for case, (name, options) in CASES.items():
        z_np, t_np = inputs(case, n, rows)
        z = torch.tensor(z_np, dtype=dtype, device=device, requires_grad=True)
        t = torch.tensor(t_np, device=device)
        t = t if t.dtype == torch.int64 else t.to(dtype)
        crit = symloss.get(name, **options).to_torch()
        code = symloss.get(name, **options).to_torch(backend="torch")
        builtin = torch_builtin(case)

        def run(fn, z=z, t=t):
            def step():
                z.grad = None
                loss = fn(z, t)
                loss.backward()
                if device != "cpu":
                    torch.cuda.synchronize()
                return loss

            return step

        ours, generated, theirs = run(crit), run(code), run(builtin)
        b = theirs().item()
        gb = z.grad.clone()
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        for fn in (ours, generated):
            a = fn().item()
            assert np.isclose(a, b, rtol=tol), (case, a, b)
            assert torch.allclose(z.grad, gb, rtol=tol, atol=tol * float(gb.abs().max())), case
        times = best_of((theirs, ours, generated), repeat)
        out.append((f"torch {device}", case, tuple(z.shape), *times))
    return out


# ------------------------------------------------------------------ JAX
def jax_builtin(case: str):
    import jax
    import jax.numpy as jnp

    def bce(z, t):  # optax.sigmoid_binary_cross_entropy, mean
        return jnp.mean(-t * jax.nn.log_sigmoid(z) - (1 - t) * jax.nn.log_sigmoid(-z))

    def cce_labels(z, labels):  # optax.softmax_cross_entropy_with_integer_labels, mean
        picked = jnp.take_along_axis(z, labels[:, None], axis=-1)[:, 0]
        return jnp.mean(jax.nn.logsumexp(z, axis=-1) - picked)

    def cce(z, t):  # optax.softmax_cross_entropy, mean
        return jnp.mean(-jnp.sum(t * jax.nn.log_softmax(z, axis=-1), axis=-1))

    def huber(y, t, delta=1.0):  # optax.huber_loss, mean
        abs_errors = jnp.abs(y - t)
        quadratic = jnp.minimum(abs_errors, delta)
        linear = abs_errors - quadratic
        return jnp.mean(0.5 * quadratic**2 + delta * linear)

    def mse(y, t):  # optax.squared_error, mean (without optax's 1/2: as torch's mse_loss)
        return jnp.mean((y - t) ** 2)

    def focal(z, t, alpha=0.25, gamma=2.0):  # optax.sigmoid_focal_loss, mean
        p = jax.nn.sigmoid(z)
        ce = -t * jax.nn.log_sigmoid(z) - (1 - t) * jax.nn.log_sigmoid(-z)
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * ((1 - p_t) ** gamma)
        return jnp.mean((alpha * t + (1 - alpha) * (1 - t)) * loss)

    return {
        "bce_logits": bce,
        "cce_logits, labels": cce_labels,
        "cce_logits, one-hot": cce,
        "huber": huber,
        "mse": mse,
        "sigmoid_focal": focal,
    }[case]


def jax_rows(n, rows, dtype, repeat):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", dtype == "float64")
    out = []
    device = jax.devices()[0].platform
    for case, (name, options) in CASES.items():
        z_np, t_np = inputs(case, n, rows)
        z = jnp.asarray(z_np, dtype=dtype)
        t = jnp.asarray(t_np) if t_np.dtype.kind == "i" else jnp.asarray(t_np, dtype=dtype)
        f = symloss.get(name, **options).to_jax()
        ours = jax.jit(jax.value_and_grad(f))
        theirs = jax.jit(jax.value_and_grad(jax_builtin(case)))
        (a, ga), (b, gb) = ours(z, t), theirs(z, t)
        tol = 1e-4 if dtype == "float32" else 1e-10
        assert np.isclose(float(a), float(b), rtol=tol), (case, a, b)
        assert np.allclose(ga, gb, rtol=tol, atol=tol * float(jnp.abs(gb).max())), case

        def timed(fn, z=z, t=t):
            return lambda: jax.block_until_ready(fn(z, t))

        times = best_of((timed(theirs), timed(ours)), repeat)
        out.append((f"jax {device}", case, tuple(z.shape), *times, None))
    return out


# ------------------------------------------------------------------ main
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--frameworks", nargs="+", choices=("torch", "jax"), default=["torch", "jax"])
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for torch and for symloss's kernels (default: each one's own default)",
    )
    args = p.parse_args(argv)
    if args.threads is not None:
        symloss.configure(threads=args.threads)
    n, rows, repeat = (10**6, (10**5, 10), args.repeat) if not args.quick else (1000, (100, 10), 1)
    print(f"symloss {symloss.__version__} from {Path(symloss.__file__).parent}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, numpy {np.__version__}, {args.dtype}, best of {repeat}"
    )
    found = []
    if "torch" in args.frameworks:
        try:
            import torch
        except ImportError:
            print("torch is not installed: no PyTorch rows")
        else:
            if args.threads is not None:
                torch.set_num_threads(args.threads)
            print(
                f"torch {torch.__version__}, {torch.get_num_threads()} threads; symloss's "
                f"kernels on {settings().threads} thread(s)"
            )
            dtype = getattr(torch, args.dtype)
            found += torch_rows(n, rows, dtype, repeat, "cpu")
            if torch.cuda.is_available():
                found += torch_rows(n, rows, dtype, repeat, "cuda")
    if "jax" in args.frameworks:
        try:
            import jax
        except ImportError:
            print("jax is not installed: no JAX rows")
        else:
            print(f"jax {jax.__version__}")
            found += jax_rows(n, rows, args.dtype, repeat)
    print(
        "\nforward + backward, seconds; built-in = torch.nn.functional (focal: torchvision's"
        " formula) or the optax formula in JAX, autograd; symloss = L.to_torch() (on CPU"
        " tensors: symloss's kernels) or L.to_jax(); generated = L.to_torch(backend='torch'),"
        " the code `symloss export --format torch` writes (what CUDA and torch.compile run)"
    )
    print(f"{'framework':10s} {'case':20s} {'shape':>12s} {'built-in':>9s} {'symloss':>9s} "
          f"{'ratio':>6s} {'generated':>10s} {'ratio':>6s}")  # fmt: skip
    for framework, case, shape, theirs, ours, generated in found:
        extra = "" if generated is None else f" {generated:10.5f} {generated / theirs:5.2f}x"
        print(
            f"{framework:10s} {case:20s} {str(tuple(shape)):>12s} {theirs:9.5f} {ours:9.5f} "
            f"{ours / theirs:5.2f}x{extra}"
        )


if __name__ == "__main__":
    main()

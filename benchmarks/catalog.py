"""Time every registered loss's kernels: value_and_grad, L + L.grad, torch, the copy floor.

For every loss in ``symloss.catalog()``, with inputs drawn inside the loss's domains:

- ``default``: ``L.value_and_grad(pred, target, **kw)`` as shipped (inputs checked block
  by block, one value-and-gradient kernel when the loss has one, blocked and threaded;
  under ``SYMLOSS_BACKEND=auto`` each large block runs the kernel's compiled C loop,
  symloss/_compiled.py, where a C compiler works);
- ``numpy``: the same call under ``symloss.backend("fused")`` (the kernels as
  generated in-place NumPy code, symloss/_fused.py: no compiler needed);
- ``lambdify``: the same call under ``symloss.backend("lambdify")`` (each kernel printed by
  SymPy's lambdify: one new array per operation);
- ``L+grad``: ``L(...)`` and ``L.grad(...)``, two calls;
- ``torch``: forward + backward of the direct ``torch.nn.functional`` equivalent, when
  there is one and its value and gradient agree with symloss's on these very inputs
  (checked before timing; otherwise the column says why it is empty);
- ``copy``: a copy of the input arrays, the memory floor;
- the ratios ``default / torch``, ``default / copy`` and ``numpy / copy``;
- ``x10``: time(default at n) / time(default at n / 10), about 10 when evaluation is linear.

Every figure comes from the same run, measured side by side, best of ``--repeat``.
Element-wise losses use n = 10^7 elements (and 10^6 for the scaling column), row-wise
losses 10^6 x 10 (and 10^5 x 10): the sizes of the issue tracker's targets, large
enough that the copy floor is a memory copy rather than a cache copy.  Machines are
noisy: compare ratios, not seconds.

    python benchmarks/catalog.py                       # the full catalog
    python benchmarks/catalog.py --losses bce_logits mse
    python benchmarks/catalog.py --quick               # tiny sizes, to check it runs
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import sympy as sp
import timing

import symloss
from symloss.numeric import config, evaluate
from symloss.numeric.blocks import block_elements


def best_of(fn, repeat: int) -> float:
    """Wall-clock time: the blocked kernels run on worker threads."""
    return timing.best_of(fn, repeat, clock=time.perf_counter)


def on_backend(backend: str, fn):
    """*fn* as a function that runs under ``symloss.backend(backend)``."""

    def run():
        with symloss.backend(backend):
            return fn()

    return run


# ------------------------------------------------------------------ inputs
def _draw(rng, domain, shape):
    """Values inside a domain, away from its ends (as tests/conftest.py reads domains)."""
    s = domain.set if domain is not None else sp.Interval(-sp.oo, sp.oo)
    if isinstance(s, sp.FiniteSet):
        return rng.choice(np.array([float(v) for v in s]), size=shape)
    if s == sp.Interval(0, 1):  # labels or soft labels
        return rng.choice(np.array([0.0, 1.0, 0.3, 0.75]), size=shape)
    lo = float(s.inf) if s.inf.is_finite else None
    hi = float(s.sup) if s.sup.is_finite else None
    if lo is not None and hi is not None:
        width = hi - lo
        return rng.uniform(lo + 0.02 * width, hi - 0.02 * width, size=shape)
    if lo is not None:  # a scale such as (0, oo) or (-1, oo)
        return rng.uniform(lo + 0.1, lo + 6.0, size=shape)
    return rng.normal(scale=3.0, size=shape)


def make_inputs(L, n: int, m: int, seed: int = 0):
    """``(pred, target, kw)`` for one call, inside the loss's domains and constraints."""
    rng = np.random.default_rng(seed)
    two_d = len(L.input_indices) == 2
    shape = (n, m) if two_d else (n,)
    doms = L.domains
    pred_key, target_key = str(L.pred.label), str(L.target.label)
    pred = _draw(rng, doms.get(pred_key), shape)
    one_hot = any(c.name == "one_hot" for c in L.constraints)
    if L.name == "multi_margin":
        target = rng.integers(0, m, n)  # integer class labels, as torch takes them
    elif one_hot:
        target = np.eye(m)[rng.integers(0, m, n)]
    elif L.name == "kl_divergence":
        # log-probabilities against probability rows, as F.kl_div expects
        logits = rng.normal(size=shape)
        pred = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        w = rng.uniform(0.05, 1.0, size=shape)
        target = w / w.sum(axis=1, keepdims=True)
    else:
        target = _draw(rng, doms.get(target_key), shape)
    kw = {str(b.label): _draw(rng, doms.get(str(b.label)), shape) for b in L.extra_inputs}
    return pred, target, kw


# ------------------------------------------------------------------ torch equivalents
def _torch_fn(L):
    """``f(pred_tensor, target_tensor, kw_tensors) -> scalar`` or ``(None, why)``."""
    try:
        import torch
    except ImportError:
        return None, "torch not installed"
    F = torch.nn.functional
    p = L.param_values
    table = {
        "mean_squared_error": lambda y, t, kw: F.mse_loss(y, t),
        "mean_absolute_error": lambda y, t, kw: F.l1_loss(y, t),
        "huber": lambda y, t, kw: F.huber_loss(y, t, delta=p["delta"]),
        "smooth_l1": lambda y, t, kw: F.smooth_l1_loss(y, t, beta=p["beta"]),
        "binary_cross_entropy": lambda y, t, kw: F.binary_cross_entropy(y, t),
        "sigmoid_binary_cross_entropy": lambda y, t, kw: F.binary_cross_entropy_with_logits(y, t),
        "softmax_cross_entropy": lambda y, t, kw: F.cross_entropy(y, t),  # probability targets
        "kl_divergence": lambda y, t, kw: F.kl_div(y, t, reduction="batchmean"),
        "poisson_nll": lambda y, t, kw: F.poisson_nll_loss(y, t, eps=p["eps"]),
        "gaussian_nll": lambda y, t, kw: F.gaussian_nll_loss(y, t, kw["var"], eps=p["eps"]),
        "soft_margin": lambda y, t, kw: F.soft_margin_loss(y, t),
        "multilabel_soft_margin": lambda y, t, kw: F.multilabel_soft_margin_loss(y, t),
        "multi_margin": lambda y, t, kw: F.multi_margin_loss(y, t, margin=p["margin"]),
    }
    if L.name not in table:
        return None, "no direct torch equivalent"
    return table[L.name], None


def torch_runner(L, pred, target, kw):
    """A zero-argument forward+backward closure, or ``(None, why)`` if semantics differ."""
    f, why = _torch_fn(L)
    if f is None:
        return None, why
    import torch

    torch.set_num_threads(config.settings().threads)
    tt = torch.from_numpy(target)
    kwt = {k: torch.from_numpy(v) for k, v in kw.items()}

    def run():
        yt = torch.from_numpy(pred).requires_grad_(True)
        loss = f(yt, tt, kwt)
        loss.backward()
        return loss.item(), yt.grad

    value, grad = run()
    ours_v, ours_g = L.value_and_grad(pred, target, **kw)
    g = grad.numpy()
    scale = max(np.max(np.abs(ours_g)), 1e-300)
    if not np.isclose(value, ours_v, rtol=1e-8, atol=1e-12) or not np.allclose(
        g, ours_g, rtol=1e-7, atol=1e-9 * scale
    ):
        err = np.max(np.abs(g - ours_g)) / scale
        return None, f"differs (value {value:.6g} vs {ours_v:.6g}, grad rel err {err:.1e})"
    return run, None


# ------------------------------------------------------------------ one loss
def compiled(L) -> bool:
    """Whether every kernel ``L.value_and_grad`` runs has a C form."""
    kernels = [evaluate.of(L).fused] if evaluate.of(L).fused is not None else []
    kernels = kernels or [evaluate.of(L).value, evaluate.of(L).gradient]
    return all(k._compiled is not None for k in kernels)


def measure(L, n, m, repeat, scale=True):
    pred, target, kw = make_inputs(L, n, m)
    small = make_inputs(L, 8, m)
    L.value_and_grad(small[0], small[1], **small[2])  # derive and compile outside timing
    L(small[0], small[1], **small[2]), L.grad(small[0], small[1], **small[2])

    # The two symloss paths agree before anything is timed.
    v1, g1 = L.value_and_grad(pred, target, **kw)
    v2, g2 = L(pred, target, **kw), L.grad(pred, target, **kw)
    gscale = max(float(np.max(np.abs(g1))), 1e-300)
    paths_err = max(abs(v1 - v2) / max(abs(v1), 1e-300), float(np.max(np.abs(g1 - g2))) / gscale)
    assert paths_err < 1e-9, (L.name, paths_err)

    run_torch, why = torch_runner(L, pred, target, kw)
    inputs = (pred, target, *kw.values())

    def vag():
        return L.value_and_grad(pred, target, **kw)

    on_backend("c", vag)()  # compile (or load from the disk cache) outside timing
    row = {
        "vag": best_of(vag, repeat),
        "numpy": best_of(on_backend("fused", vag), repeat),
        "lambdify": best_of(on_backend("lambdify", vag), repeat),
        "sep": best_of(lambda: (L(pred, target, **kw), L.grad(pred, target, **kw)), repeat),
        "torch": best_of(run_torch, repeat) if run_torch else None,
        "copy": best_of(lambda: [a.copy() for a in inputs], repeat),
        "why": why,
        "compiled": compiled(L),
        "paths_err": paths_err,
    }
    if scale:
        small = make_inputs(L, n // 10, m)
        row["vag_small"] = best_of(lambda: L.value_and_grad(small[0], small[1], **small[2]), repeat)
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--losses", nargs="+", help="names or aliases (default: all)")
    p.add_argument("--no-scaling", action="store_true", help="skip the 10 n column")
    args = p.parse_args(argv)
    n1, (n2, m2), repeat = (
        (10**7, (10**6, 10), args.repeat) if not args.quick else (2000, (200, 10), 1)
    )
    losses = [symloss.get(name) for name in args.losses] if args.losses else list(symloss.catalog())
    try:
        import torch

        tv = f"torch {torch.__version__} ({config.settings().threads} threads)"
    except ImportError:
        tv = "torch not installed"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, numpy {np.__version__}, {tv}; symloss threads "
        f"{config.settings().threads}, block {block_elements()} elements (numpy column: "
        f"{on_backend('fused', block_elements)()}); best of {repeat}"
    )
    print(
        f"sizes: element-wise n = {n1} (x10 column: against {n1 // 10}); row-wise {n2} x {m2} "
        f"(against {n2 // 10} x {m2}); float64"
    )
    print(
        "default = L.value_and_grad as shipped (SYMLOSS_BACKEND=auto: the compiled C loop,"
        " symloss/_compiled.py,\nwhere a C compiler works); numpy = the same with the fused"
        " in-place NumPy kernels (SYMLOSS_BACKEND=fused);\nlambdify = SymPy's lambdify"
        " kernels; L+grad = L(...) and L.grad(...) separately; C = every kernel has a C"
        " form;\nx10 = time(default, n) / time(default, n / 10), ~10 if linear.\n"
    )
    head = (
        f"{'loss':30s} {'shape':>10s} {'C':>3s} {'default':>8s} {'numpy s':>8s} "
        f"{'lambdify':>8s} {'L+grad s':>8s} {'torch s':>8s} {'copy s':>7s} {'d/torch':>7s} "
        f"{'d/copy':>6s} {'np/copy':>7s} {'x10':>5s}"
    )
    print(head)
    print("-" * len(head))
    notes = []
    for L in losses:
        two_d = len(L.input_indices) == 2
        n, m = (n2, m2) if two_d else (n1, 1)
        r = measure(L, n, m, repeat, scale=not args.no_scaling)
        shape = f"{n}x{m}" if two_d else f"{n}"
        torch_s = f"{r['torch']:8.4f}" if r["torch"] is not None else f"{'-':>8s}"
        vs_torch = f"{r['vag'] / r['torch']:6.2f}x" if r["torch"] is not None else f"{'-':>7s}"
        x10 = f"{r['vag'] / r['vag_small']:5.1f}" if "vag_small" in r else f"{'-':>5s}"
        print(
            f"{L.name:30s} {shape:>10s} {'yes' if r['compiled'] else 'no':>3s} {r['vag']:8.4f} "
            f"{r['numpy']:8.4f} {r['lambdify']:8.4f} {r['sep']:8.4f} {torch_s} {r['copy']:7.4f} "
            f"{vs_torch} {r['vag'] / r['copy']:5.1f}x {r['numpy'] / r['copy']:6.1f}x {x10}",
            flush=True,
        )
        if r["paths_err"] > 1e-12:
            notes.append(
                f"{L.name}: value_and_grad and L/L.grad differ by {r['paths_err']:.1e} "
                "(relative to max |value|, max |grad|)"
            )
        if r["why"] and r["why"] != "no direct torch equivalent":
            notes.append(f"{L.name}: torch column empty: {r['why']}")
    for note in notes:
        print(note)
    print("torch column '-' without a note: no direct torch.nn.functional equivalent.")


if __name__ == "__main__":
    main()

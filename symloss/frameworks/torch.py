"""``Loss.to_torch()``: a loss as a ``torch.nn.Module`` with symloss's closed-form backward.

Two paths, one formula:

* **the generated code** (:mod:`symloss.frameworks.codegen`, exactly what ``symloss
  export --format torch`` writes, run with symloss's error classes): torch operations
  on the inputs' device and in their dtype, in a ``torch.autograd.Function`` whose
  backward evaluates the closed-form gradient, and under ``create_graph=True`` a
  second Function whose backward is the closed-form Hessian.  It runs on CUDA, under
  ``torch.compile`` (which fuses it), for a backward pass that builds a graph, and
  wherever the fast path below does not apply;
* **symloss's own kernels** for CPU tensors in eager mode (``backend="auto"``, the
  default): the same stabilised expressions as compiled C loops (or in-place NumPy
  code), one pass over the data for the value and the gradient, checked block by
  block (:mod:`symloss.numeric.evaluate`; on large inputs, domains that are intervals
  are checked by the extremes the same loop finds, and an element-wise loss's total
  is added up in it), inside a ``torch.autograd.Function`` of their own; backward
  scales the gradient forward kept.  Op-by-op torch code allocates a fresh tensor
  per operation (about 30 for a focal loss and its gradient), which the kernels do
  not; see ``benchmarks/frameworks.py``.  float32 tensors run the float32 kernels
  (as views, no float64 copy); values are returned in the input's dtype.  A double
  backward through this path re-runs the generated code (its Hessian Function).

torch is imported when the first module is made.

Layer: :mod:`symloss.frameworks`.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from typing import TYPE_CHECKING

import numpy as np

from symloss.frameworks import codegen

if TYPE_CHECKING:
    from symloss.core.loss import Loss

BACKENDS = ("auto", "torch")


def module(loss: Loss, backend: str = "auto"):
    """A ``torch.nn.Module`` computing *loss*: ``crit(pred, target, weight=None, **extra)``.

    *backend* ``"auto"`` runs symloss's kernels on CPU tensors in eager mode and the
    generated torch code elsewhere; ``"torch"`` always the generated torch code.  See
    :meth:`symloss.Loss.to_torch`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"Loss.to_torch() needs PyTorch ({exc}): pip install 'symloss[torch]'"
        ) from exc
    return _module_class()(loss, backend)


@functools.cache
def _module_class():
    import torch

    kernels = _kernel_function()

    class SymlossLoss(torch.nn.Module):
        """A symloss loss as a PyTorch module; call it as ``crit(pred, target,
        weight=None, **extra)`` (extra inputs such as ``var=`` by keyword).

        The backward pass evaluates the gradient symloss derived in closed form (a
        ``torch.autograd.Function``), and a backward pass with ``create_graph=True``
        returns a gradient whose own backward is the closed-form Hessian.  Inputs keep
        their device and dtype.  Its hyperparameters and reduction are the loss's,
        bound at :func:`symloss.get`.  The module has no parameters or buffers, so
        ``.to(device)``, DDP and FSDP leave it as it is.
        """

        def __init__(self, loss, backend="auto"):
            super().__init__()
            self.loss = loss
            self.reduction = loss.reduction
            self.backend = backend
            self._runtime = codegen.runtime(loss, "torch")
            self._params = codegen.parameters(loss)
            self._staging = _Staging()

        def forward(self, pred, target, weight=None, **extra):
            if self.backend == "auto" and _eager_cpu(self.loss, pred, target, weight, extra):
                keys = tuple(extra)
                return kernels.apply(pred, target, weight, self, keys, *extra.values())
            return self._runtime(pred, target, weight, extra, self._params, self.reduction)

        def generated(self, pred, target, weight=None, **extra):
            """The loss through the generated torch code, whatever the inputs."""
            return self._runtime(pred, target, weight, extra, self._params, self.reduction)

        def extra_repr(self) -> str:
            options = [f"{k}={v!r}" for k, v in self._params.items()]
            return ", ".join([repr(self.loss.name), *options, f"reduction={self.reduction!r}"])

        def __reduce__(self):
            # Pickled (torch.save, multiprocessing) as the loss it was made from, without
            # the loss's caches of compiled kernels (rebuilt on first use).
            return (module, (dataclasses.replace(self.loss), self.backend))

    return SymlossLoss


def _eager_cpu(loss, pred, target, weight, extra) -> bool:
    """Whether symloss's kernels can take this call: CPU tensors of float32 or float64
    in eager mode, the target and extra inputs of the prediction's shape (or integer
    labels), no gradient wanted but the prediction's.  Anything else (broadcasting,
    other dtypes, a weight that requires grad, bad input, whose error the generated
    code raises) takes the generated code."""
    import torch

    if not isinstance(pred, torch.Tensor) or pred.dtype not in (torch.float32, torch.float64):
        return False
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and compiler.is_compiling():
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    for x in (target, weight, *extra.values()):
        if x is None:
            continue
        if not isinstance(x, torch.Tensor) or x.requires_grad or x.device.type != "cpu":
            return False
        if x.is_complex() or x.dtype in (torch.float16, torch.bfloat16):
            return False
    if pred.device.type != "cpu" or not isinstance(target, torch.Tensor):
        return False
    labels = not target.is_floating_point() and target.ndim == 1 and pred.ndim == 2
    if target.shape != pred.shape and not labels:
        return False
    if any(x.shape != pred.shape for x in extra.values()):
        return False
    if weight is not None:
        samples = pred.shape[:1] if len(loss.input_indices) == 2 else pred.shape
        if weight.shape != samples:
            return False
    return pred.numel() > 0


class _Staging(threading.local):
    """Inputs as NumPy arrays of the prediction's dtype: views of the tensors where they
    have it (float32 stays float32: symloss's kernels compute in float32 with float64
    sums, docs/numerics.md), else copies into arrays kept from one call to the next (one
    set per thread and module), so that a training loop converts into memory it already
    has instead of allocating new arrays every step."""

    def __init__(self):
        self.arrays: dict = {}

    def numpy(self, x, slot: str, dtype):
        """A NumPy array of *dtype* with *x*'s values (a view of *x* when it has it)."""
        a = x.detach().contiguous().numpy()
        if a.dtype == dtype or a.dtype.kind not in "fc":  # integer labels stay as they are
            return a
        buf = self.arrays.get(slot)
        if buf is None or buf.shape != a.shape or buf.dtype != dtype:
            buf = self.arrays[slot] = np.empty(a.shape, dtype)
        np.copyto(buf, a)
        return buf


@functools.cache
def _kernel_function():
    import torch

    class KernelFunction(torch.autograd.Function):
        """The loss through symloss's NumPy/C kernels: the value and the gradient in one
        pass (:meth:`symloss.Loss.value_and_grad`), the gradient scaled in backward."""

        @staticmethod
        def forward(ctx, pred, target, weight, crit, keys, *extras):
            loss, staging = crit.loss, crit._staging
            p = pred.detach().contiguous().numpy()  # float32 or float64: the call's dtype
            if target.dtype == torch.float32:
                # as given: with float64 logits the NumPy path makes the float64 copy and
                # holds the rows to float32's precision, the one they came in
                t = target.detach().contiguous().numpy()
            else:
                t = staging.numpy(target, "target", p.dtype)
            w = None if weight is None else staging.numpy(weight, "weight", p.dtype).reshape(-1)
            kw = {k: staging.numpy(e, k, p.dtype) for k, e in zip(keys, extras)}
            if ctx.needs_input_grad[0]:  # the gradient written into the tensor
                grad = torch.empty_like(pred, memory_format=torch.contiguous_format)
                value, _ = loss.value_and_grad(p, t, weight=w, out=grad.numpy(), **kw)
            else:
                value, grad = loss(p, t, weight=w, **kw), None
            ctx.save_for_backward(pred, target, weight, grad, *extras)
            ctx.crit, ctx.keys = crit, keys
            return torch.as_tensor(value, dtype=pred.dtype)

        @staticmethod
        def backward(ctx, grad_out):
            pred, target, weight, grad, *extras = ctx.saved_tensors
            none = (None,) * (4 + len(extras))
            if not ctx.needs_input_grad[0]:
                return (None, *none)
            if torch.is_grad_enabled():
                # create_graph=True: the gradient must be differentiable again, through
                # the generated code's Hessian Function
                crit = ctx.crit
                with torch.enable_grad():
                    value = crit.generated(pred, target, weight, **dict(zip(ctx.keys, extras)))
                    (d_pred,) = torch.autograd.grad(value, pred, grad_out, create_graph=True)
                return (d_pred, *none)
            if grad_out.ndim == 0 and float(grad_out) == 1.0:  # loss.backward(): a CPU scalar
                return (grad, *none)
            if grad_out.ndim and grad.ndim > grad_out.ndim:  # reduction="none" over rows
                grad_out = grad_out[:, None]
            return (grad * grad_out, *none)

    return KernelFunction

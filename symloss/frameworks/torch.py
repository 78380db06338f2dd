"""``Loss.to_torch()``: a loss as a ``torch.nn.Module`` with symloss's closed-form backward.

The module runs the source that ``symloss export --format torch`` writes
(:mod:`symloss.frameworks.codegen`), with symloss's error classes: its forward pass
evaluates the stabilised kernels, and its ``torch.autograd.Function`` backward pass the
closed-form gradient (and, under ``create_graph=True``, a second Function whose backward
is the closed-form Hessian).  torch is imported when the first module is made.

Layer: :mod:`symloss.frameworks`.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from symloss.frameworks import codegen

if TYPE_CHECKING:
    from symloss.core.loss import Loss


def module(loss: Loss):
    """A ``torch.nn.Module`` computing *loss*: ``crit(pred, target, weight=None, **extra)``.

    See :meth:`symloss.Loss.to_torch`.
    """
    return _module_class()(loss)


@functools.cache
def _module_class():
    import torch

    class SymlossLoss(torch.nn.Module):
        """A symloss loss as a PyTorch module; call it as ``crit(pred, target,
        weight=None, **extra)`` (extra inputs such as ``var=`` by keyword).

        The forward pass evaluates symloss's stabilised kernels with torch operations,
        on the inputs' device and in their dtype; the backward pass evaluates the
        gradient symloss derived in closed form (a ``torch.autograd.Function``), and
        a backward pass with ``create_graph=True`` returns a gradient whose own
        backward is the closed-form Hessian.  Its hyperparameters and reduction are
        the loss's, bound at :func:`symloss.get`.  The module has no parameters or
        buffers, so ``.to(device)``, DDP and FSDP leave it as it is.
        """

        def __init__(self, loss):
            super().__init__()
            self.loss = loss
            self.reduction = loss.reduction
            self._runtime = codegen.runtime(loss, "torch")
            self._params = codegen.parameters(loss)

        def forward(self, pred, target, weight=None, **extra):
            return self._runtime(pred, target, weight, extra, self._params, self.reduction)

        def extra_repr(self) -> str:
            options = [f"{k}={v!r}" for k, v in self._params.items()]
            return ", ".join([repr(self.loss.name), *options, f"reduction={self.reduction!r}"])

        def __reduce__(self):  # pickled as the loss it was made from
            return (module, (self.loss,))

    return SymlossLoss

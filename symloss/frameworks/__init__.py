"""symloss losses as PyTorch modules, JAX functions and standalone modules; dask input.

Layer 4, above :mod:`symloss.numeric` and below :mod:`symloss.core`: a
:class:`~symloss.Loss` is used through its attributes (its type is imported only
under ``TYPE_CHECKING``), and ``Loss.to_torch()`` / ``Loss.to_jax()`` call down here.
torch, jax and dask are imported inside functions, when they are used.

* :mod:`~symloss.frameworks.lowering`: a kernel expression as named array statements;
* :mod:`~symloss.frameworks.printers`: SymPy's NumPy, PyTorch and JAX printers,
  subclassed for those statements;
* :mod:`~symloss.frameworks.spec` and :mod:`~symloss.frameworks.codegen`: a loss's
  conventions as data, and the source of a module with one function per loss;
* :mod:`~symloss.frameworks.torch`, :mod:`~symloss.frameworks.jax`: ``to_torch`` and
  ``to_jax``, which run that same generated source;
* :mod:`~symloss.frameworks.lazy`: dask arrays in ``L(pred, target)``, chunk by chunk.
"""

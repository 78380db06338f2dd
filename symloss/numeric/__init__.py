"""From expressions to numbers: stable forms, kernels, backends, blocked evaluation.

Layer 3: may import :mod:`symloss.symbolic` and below, never :mod:`symloss.core` (a
``Loss`` is used through its attributes; the type is imported only under
``TYPE_CHECKING``).  From the bottom up:

- :mod:`~symloss.numeric.config`: the backend, threads and block sizes, with an API;
- :mod:`~symloss.numeric.ops`: kernel-only SymPy functions and their NumPy forms;
- :mod:`~symloss.numeric.fused`: kernels as generated in-place NumPy code;
- :mod:`~symloss.numeric.compiled`: the same statements as one C loop (gcc, cached);
- :mod:`~symloss.numeric.rows`: row sums, maxima, softmax, log-sum-exp;
- :mod:`~symloss.numeric.stabilize`: rewrites to float64-stable equal forms;
- :mod:`~symloss.numeric.kernel`: an expression lifted to arrays and compiled;
- :mod:`~symloss.numeric.blocks`: blocks of rows on worker threads;
- :mod:`~symloss.numeric.checks`: the element-wise input checks (domains, row sums);
- :mod:`~symloss.numeric.evaluate`: a loss's value, gradient and Hessian on arrays.
"""

"""Symbolic work: calculus over indexed sums, derivatives, derivations, budgets.

Layer 2: may import :mod:`symloss.printing`, :mod:`symloss.symbols` and
:mod:`symloss.errors`, never numeric code or the Loss class (a ``Loss`` is used
through its attributes; the type is imported only under ``TYPE_CHECKING``).

- :mod:`~symloss.symbolic.calculus`: derivatives of indexed sums in closed form
  (Kronecker deltas collapsed, constraints applied), kinks, clean-up;
- :mod:`~symloss.symbolic.derivatives`: one loss's gradient and Hessian, kernel and
  display forms, cached;
- :mod:`~symloss.symbolic.derivation`: the gradient's derivation, step by step;
- :mod:`~symloss.symbolic.step`: one step of it (:class:`Step`) and how it prints;
- :mod:`~symloss.symbolic.naming`: the quantities loss families name (residual,
  TP/FP/FN, ``p_t``), written into expressions and expanded back;
- :mod:`~symloss.symbolic.budget`: time and size budgets for work on user input.
"""

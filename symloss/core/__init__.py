"""The data model: :class:`~symloss.core.loss.Loss`, :class:`~symloss.core.domain.Domain`
and :class:`~symloss.core.domain.Param`.

Layer 4: may import :mod:`symloss.numeric`, :mod:`symloss.symbolic`,
:mod:`symloss.printing` and below.  A Loss keeps its expression, symbols, domains,
parameters and metadata; its methods are thin and delegate to those layers.
"""

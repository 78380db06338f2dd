"""The catalog, one module per family, and what the families share (:mod:`.common`).

Each family module declares its losses as data: ``CATALOG``, a tuple of
:class:`~symloss.core.loss.Loss` values and of builders (functions of keyword-only
options returning a Loss, for losses with structural options).  Importing a family
registers nothing; the registry registers a family's ``CATALOG`` through the same
public :func:`symloss.register` users call, when it first needs that family.  It loads
the families in the order of ``FAMILIES``, and only as far as it must:
``symloss.get("bce")`` imports only the family that defines ``bce``, which keeps
``symloss show bce`` quick to start; ``symloss.names()`` and ``symloss.catalog()``
load them all.

Layer 5: may import :mod:`symloss.core` and the layers below it, never the registry
(layer 6) that lists these losses.
"""

FAMILIES = (
    "article",
    "classification",
    "distributions",
    "margin",
    "probabilistic",
    "regression",
    "similarity",
)

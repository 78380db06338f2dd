"""The catalog.  Importing this package registers every loss, one module per family."""

from . import (  # noqa: F401  (imported for their registrations)
    _article,
    _classification,
    _distributions,
    _margin,
    _probabilistic,
    _regression,
    _similarity,
)

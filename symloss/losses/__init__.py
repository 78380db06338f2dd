"""The catalog.  Importing this package registers every loss."""

from . import _article  # noqa: F401

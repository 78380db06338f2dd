"""The ``symloss`` command line: one module per command group.

Layer: the top; it may import everything below and nothing imports it.  Every listing
is generated from the registry.  :mod:`~symloss.cli.main` builds the parser from the
command modules (:mod:`~symloss.cli.catalog`: ``list``, ``show``, ``table``;
:mod:`~symloss.cli.parse`; :mod:`~symloss.cli.check`; :mod:`~symloss.cli.docs`:
``docs``, ``export``), each of which adds its subcommands and their handlers.
:mod:`~symloss.cli.common` holds the one ``--param`` reader and the parser that turns
a mistake into one line on stderr and exit status 2
(:class:`~symloss.UsageError`); any other error is one line and exit status 1, with
the traceback only under ``--debug``.
"""

from symloss.cli.catalog import markdown_catalog
from symloss.cli.main import build_parser, main

__all__ = ["build_parser", "main", "markdown_catalog"]

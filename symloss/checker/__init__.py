"""The gradient checker: your loss or gradient code against the symbolic truth.

Layer 7: may import the registry and everything below it.
:mod:`~symloss.checker.inputs` draws inputs from a loss's domains, constraints and
kinks; :mod:`~symloss.checker.diagnose` compares and names what is wrong;
:mod:`~symloss.checker.check` runs it all and reports (:func:`check`, :class:`Report`).
The command ``symloss check`` lives in :mod:`symloss.cli.check`.
"""

from symloss.checker.check import Finding, KinkFinding, Report, check
from symloss.errors import CheckFailed

__all__ = ["CheckFailed", "Finding", "KinkFinding", "Report", "check"]

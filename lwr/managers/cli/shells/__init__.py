"""Shells run one command (an argv list) somewhere and hand back what it printed.

They know nothing of schedulers; :mod:`lwr.registry` names them (``local``, ``ssh``).
"""

from lwr.managers.cli.shells.base import CommandResult, Shell

__all__ = ["CommandResult", "Shell"]

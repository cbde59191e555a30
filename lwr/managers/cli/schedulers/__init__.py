"""Scheduler plugins: pure command-line builders and output parsers (see :mod:`lwr.registry`)."""

from lwr.managers.cli.schedulers.base import Scheduler, SchedulerStatus

__all__ = ["Scheduler", "SchedulerStatus"]

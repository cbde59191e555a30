"""LWR, the Lightweight Runner: run Galaxy jobs on another machine without a shared filesystem."""

__version__ = "0.1.0"

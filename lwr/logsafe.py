"""Log lines a client cannot forge: control characters from requests are escaped.

A name, path, header or job id sent by a client can carry a newline (or CR, ESC, any C0/C1
control): logged raw, it starts a line of the client's making, or repaints a terminal. ``escape``
is the one helper that makes such text safe; :func:`install` applies it to every string argument
of every log record in the process, so no ``log.info("... %s", name)`` can be missed. The format
strings themselves are ours and are left alone.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _replace(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(_replace, text)


def _safe_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return escape(arg)
    if arg is None or isinstance(arg, int | float):
        return arg  # keeps %d and %f working
    text = str(arg)  # Paths, exceptions…: only rewritten when they hold a control character
    return escape(text) if _CONTROL.search(text) else arg


_installed = False


def install() -> None:
    """Escape the string arguments of every log record from now on (idempotent).

    A record factory rather than a handler filter: server.ini's logging sections (read by
    PasteDeploy) choose the handlers, and this must hold whichever they are.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if isinstance(record.args, tuple):
            record.args = tuple(_safe_arg(arg) for arg in record.args)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True

"""Control characters from clients never reach a log line raw."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from lwr import logsafe


def test_escape_writes_every_control_visibly() -> None:
    assert logsafe.escape("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert logsafe.escape("\x1b[31mred\x00\x7f\x85\u2028") == "\\x1b[31mred\\x00\\x7f\\x85\\u2028"
    assert logsafe.escape("plain é/ü C:\\x") == "plain é/ü C:\\x"


def test_installed_factory_escapes_every_string_argument() -> None:
    logsafe.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("lwr.test_logsafe")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("job %s: %d %s", "x\nFAKE LINE", 3, Path("a\r\nb"))
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "job x\\nFAKE LINE: 3 a\\r\\nb\n"

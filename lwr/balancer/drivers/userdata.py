"""The user data of a cloud worker: a shell script that writes the worker template and starts
LWR as a pool worker pointed at the broker. A ``string.Template``, so a missing value is an error
rather than a half-written script."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from string import Template

from lwr.errors import ConfigurationError

#: EC2 refuses user data above 16 KiB (before base64)
LIMIT = 16 * 1024
DELIMITER = "LWR_WORKER_FILE_END"

SCRIPT = Template(
    """#!/bin/sh
# LWR pool worker $worker_id (written by lwr balancer; see docs/elastic.md)
set -e
mkdir -p $directory
cd $directory
$files
$chown
export LWR_POOL_WORKER_ID=$worker_id
$start
"""
)


def render_user_data(
    template: Path, worker_id: str, broker_url: str, directory: str, command: str, user: str
) -> str:
    files = []
    for path in sorted(template.iterdir()):
        if not path.is_file() or path.suffix in (".log", ".pid"):
            continue
        text = path.read_text()
        if path.name == "server.ini":
            text = point_at_broker(text, broker_url)
        if DELIMITER in text:
            raise ConfigurationError(f"{path} contains {DELIMITER}")
        files.append(f"cat > {shlex.quote(path.name)} <<'{DELIMITER}'\n{text}\n{DELIMITER}")
    inner = f"LWR_POOL_WORKER_ID={worker_id} {command} >> worker.log 2>&1 &"
    start = f"su -s /bin/sh {shlex.quote(user)} -c {shlex.quote(inner)}" if user else inner
    script = SCRIPT.substitute(
        worker_id=worker_id,
        directory=shlex.quote(directory),
        files="\n".join(files),
        chown=f"chown -R {shlex.quote(user)} ." if user else "",
        start=start,
    )
    if len(script.encode()) > LIMIT:
        raise ConfigurationError(
            f"the worker template makes {len(script.encode())} bytes of user data; EC2 takes "
            f"{LIMIT} at most"
        )
    return script


def point_at_broker(server_ini: str, url: str) -> str:
    """``server_ini`` with ``message_queue_url`` in ``[app:main]`` set to ``url``."""
    setting = f"message_queue_url = {url}"
    pattern = re.compile(r"^message_queue_url\s*=.*$", re.MULTILINE)
    if pattern.search(server_ini):
        return pattern.sub(lambda _: setting, server_ini, count=1)
    return server_ini.replace("[app:main]\n", f"[app:main]\n{setting}\n", 1)

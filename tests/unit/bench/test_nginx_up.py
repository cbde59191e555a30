"""scripts/services/nginx-up.sh: the bench's staging ceiling gets an nginx with WebDAV, no service.

Installing is left to the script's run in ``run_tests.sh`` (it needs apt and root); here the
installed path runs (fast, idempotent) and a stand-in nginx without the WebDAV module is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import require_service

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "services" / "nginx-up.sh"


def _nginx_processes() -> set[str]:
    result = subprocess.run(["pgrep", "-x", "nginx"], capture_output=True, text=True)
    return set(result.stdout.split())


def test_an_installed_nginx_is_reported_and_nothing_is_started() -> None:
    installed = shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")
    require_service(bool(installed), "nginx (scripts/services/nginx-up.sh installs it)")
    before = _nginx_processes()
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nginx: /") and result.stdout.split()[2][0].isdigit()
    assert "installed" not in result.stderr  # already there: nothing was installed
    assert _nginx_processes() == before


def test_an_nginx_without_webdav_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "nginx"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = -V ]; then echo "configure arguments: --with-http_ssl_module" >&2; fi\n'
        'if [ "$1" = -v ]; then echo "nginx version: nginx/1.0" >&2; fi\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 1
    assert "http_dav_module" in result.stderr

"""``lwr balancer --background --user`` end to end, as root starts it from an init script: the
daemon becomes the user for good, the pid/log files and the state directory are its own, its
local workers (real LWR pool workers on the real RabbitMQ) run as it and take a job from
Galaxy's ``pulsar.client``, ``--status`` and ``--kill`` answer from root, and nothing is left.

The site lives in a directory of /tmp that the user can enter (pytest's temp root is root's
own, mode 700), owned by root as /run would be. The user must be able to run the Python LWR is
installed in; where it cannot (this machine's Python is under /root, mode 700), the fixture makes
a small virtualenv of the system's Python of the same minor version, without pip, whose
site-packages add the project's (a ``.pth`` line): the same code and libraries, reachable by the
user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.integration.amqp.support import Client, delete_queues
from tests.integration.balancer.site import BIN, BalancerSite, check_exactly_once, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq, pytest.mark.timeout(180)]

USER = "nobody"


def real_uid(pid: int) -> int:
    """The real uid from /proc/<pid>/status (``Uid: real effective saved fs``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for {pid}")


def runs_as_user(python: Path) -> bool:
    probe = [str(python), "-c", "import lwr.balancer.daemon, prometheus_client"]
    try:
        return subprocess.run(probe, user=USER, capture_output=True, cwd="/").returncode == 0
    except PermissionError:  # the interpreter itself is out of the user's reach
        return False


def user_bin(root: Path) -> Path:
    """A bin directory with a ``python`` and an ``lwr`` the user can run (see the docstring)."""
    if runs_as_user(BIN / "python"):
        return BIN
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    venv = root / "venv"
    subprocess.run([f"/usr/bin/{version}", "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = next(BIN.parent.glob(f"lib/{version}/site-packages"))
    (venv / "lib" / version / "site-packages" / "lwr-tests.pth").write_text(
        f"import site; site.addsitedir({str(site_packages)!r})\n"
    )
    lwr = venv / "bin" / "lwr"
    lwr.write_text(f"#!{venv}/bin/python\nimport sys\nfrom lwr.cli import main\nsys.exit(main())\n")
    lwr.chmod(0o755)
    assert runs_as_user(venv / "bin" / "python")
    return venv / "bin"


@pytest.fixture
def user_site(manager_name: str) -> Iterator[BalancerSite]:
    require_service(os.geteuid() == 0, "--user needs the tests to run as root (CI does)")
    root = Path(tempfile.mkdtemp(prefix="lwr-balancer-user-"))
    try:
        root.chmod(0o755)
        site = BalancerSite(root / "site", bin_dir=user_bin(root))
        yield site
        site.cleanup()
        delete_queues(site.manager)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_background_user_runs_the_daemon_and_its_workers_as_the_user(
    user_site: BalancerSite, client_factory: Callable[..., Client]
) -> None:
    site, uid = user_site, pwd.getpwnam(USER).pw_uid
    pid = site.start("--user", USER)
    assert real_uid(pid) == uid
    for path in (site.pidfile, site.logfile, site.state, site.state / "status.json"):
        assert path.stat().st_uid == uid, path
    wait_for(lambda: len(site.workers()) == 1 and site.status().get("pool") == 1, 60, site.log)
    (worker,) = site.workers()
    assert real_uid(worker.pid) == uid
    assert all(p.stat().st_uid == uid for p in Path(worker.cwd()).iterdir())
    client = client_factory(site.manager)
    client.setup("u0", "id -u; echo out")
    check_exactly_once(client, {"u0": f"{uid}\nout\n"})
    running = site.status_command()
    assert running.returncode == 0, running
    assert f"running (pid {pid})" in running.stdout and "pool: 1 worker(s)" in running.stdout
    stopped = site.stop()
    assert stopped.returncode == 0, (stopped, site.log())
    assert site.workers() == []  # no orphan worker
    assert site.status_command().returncode == 3
    assert not site.pidfile.exists()  # --kill removed what the user could not
    assert "Traceback" not in site.log(), site.log()

"""bench/ceiling.py and the ini edits of bench/servers.py, with real servers on loopback.

Both static servers (nginx when installed, Python's http.server otherwise) are run here with
pulsar.client's real curl transport and a small file; nothing is timed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import ceiling, measure
from bench.servers import _set_option

INI = "[server:main]\nthreads = 16\n\n[logger_trace]\n# a comment\nlevel = WARNING\n"


def test_set_option_changes_only_its_section() -> None:
    text = _set_option(INI, "logger_trace", "level", "DEBUG")
    assert text == INI.replace("level = WARNING", "level = DEBUG")
    assert _set_option(INI, "server:main", "threads", "4").startswith(
        "[server:main]\nthreads = 4\n"
    )


def test_set_option_refuses_what_is_not_there() -> None:
    with pytest.raises(RuntimeError, match="no timeout in"):
        _set_option(INI, "server:main", "timeout", "1")
    with pytest.raises(RuntimeError):
        _set_option(INI, "logger_other", "level", "DEBUG")


@pytest.mark.parametrize("nginx", [True, False], ids=["nginx-if-installed", "http.server"])
def test_a_transfer_up_and_down_through_the_static_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nginx: bool
) -> None:
    if not nginx:
        monkeypatch.setattr(ceiling.shutil, "which", lambda _name: None)
        monkeypatch.setattr(ceiling, "_NGINX_PATHS", ())
    source = tmp_path / "in.dat"
    digest = measure.make_file(source, 3 * measure.MIB + 5)
    settle = measure.Settle(tmp_path, source.stat().st_size)
    with ceiling.static_server(tmp_path / "static") as (url, what):
        if not nginx:
            assert what.startswith("Python http.server")
        up, down = ceiling.transfer_once(url, tmp_path / "static", source, digest, settle)
    assert up > 0 and down > 0
    assert not (tmp_path / "static" / "files" / "ceiling.dat").exists()

"""balancer.ini loading: typed values, unknown keys and bad tables refused with their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.balancer.config import load_balancer_config
from lwr.errors import ConfigurationError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "balancer.ini"
    path.write_text(text)
    return path


def test_values_are_typed_and_the_prefix_follows_the_manager(tmp_path: Path) -> None:
    config = load_balancer_config(
        write(
            tmp_path,
            "[balancer]\nmanager = gpu\npoll_interval = 0.05\nmetrics_port = 9100\n"
            "signal = backlog\nterminate_on_exit = no\n\n[load table]\n0 0 2\n",
        )
    )
    assert config.queue_prefix == "pulsar_gpu_" and config.setup_queue == "pulsar_gpu__setup"
    assert config.poll_seconds == pytest.approx(3.0)
    assert config.metrics_port == 9100 and config.signal == "backlog"
    assert config.terminate_on_exit is False
    assert config.state_directory == tmp_path.resolve() / "balancer-state"


def test_amqp_key_prefix_replaces_the_manager_part(tmp_path: Path) -> None:
    text = "[balancer]\namqp_key_prefix = site_{manager}\nmanager = m\n[load table]\n0 0 1\n"
    assert load_balancer_config(write(tmp_path, text)).setup_queue == "site_m_setup"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[balancer]\npoll_intervall = 1\n[load table]\n0 0 1\n", "option 'poll_intervall'"),
        ("[balancer]\npoll_interval = 0\n[load table]\n0 0 1\n", "poll_interval"),
        ("[balancer]\npoll_interval = soon\n[load table]\n0 0 1\n", "poll_interval"),
        ("[balancer]\nsignal = vibes\n[load table]\n0 0 1\n", "signal must be one of"),
        ("[balancer]\nname = a.b\n[load table]\n0 0 1\n", "name must be"),
        ("[balancer]\n", "no [load table] section"),
        ("[balancer]\n\n[load table]\n0 1 1\n# comment\n0.5 2\n", "[load table] line 6: '0.5 2'"),
        ("[load table]\n0 0 1\n[drivers:local]\n", "unknown section(s) drivers:local"),
    ],
)
def test_mistakes_are_refused_by_name(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_balancer_config(write(tmp_path, text))
    assert message in refused.value.message


def test_unknown_driver_option_is_refused(tmp_path: Path) -> None:
    from lwr.balancer.drivers.local import LocalDriver

    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "server.ini").write_text("")
    config = load_balancer_config(
        write(tmp_path, "[load table]\n0 0 1\n[driver:local]\nworker_template = w\nthreads = 2\n")
    )
    with pytest.raises(ConfigurationError, match="unknown option 'threads'"):
        LocalDriver(config)

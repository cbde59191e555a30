"""``lwr users``: the admin command against a server directory's own configuration."""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import pytest

from lwr.cli import main as lwr_main
from lwr.errors import InvalidRequestError
from lwr.service import admin

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def server_ini(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "server.ini.sample", tmp_path / "server.ini")
    return tmp_path / "server.ini"


def run(server_ini: Path, *argv: str) -> str:
    """``lwr users --config SERVER_INI ARGV``'s output."""
    out = io.StringIO()
    args = argparse.ArgumentParser()
    admin.register(args.add_subparsers(dest="command", required=True))
    assert admin.main(args.parse_args(["users", "--config", str(server_ini), *argv]), out) == 0
    return out.getvalue()


def test_text_output(server_ini: Path) -> None:
    added = run(server_ini, "add", "alice")
    token_line = next(line for line in added.splitlines() if line.startswith("token: "))
    assert token_line.startswith("token: lwr_") and "shown this once" in added
    assert run(server_ini, "list") == "alice\tplan free\tactive\n"
    shown = run(server_ini, "show", "alice")
    assert "max_input_size: 150000" in shown and "retention_minutes: 10.0" in shown
    run(server_ini, "set-plan", "alice", "premium")
    shown = run(server_ini, "show", "alice")
    assert "max_input_size: unlimited" in shown and "retention_minutes: forever" in shown
    assert run(server_ini, "revoke", "alice").strip() == "alice\tplan premium\trevoked"
    # the server's own database: persistence_directory relative to server.ini
    assert (server_ini.parent / "files" / "persisted_data" / "jobs.sqlite3").exists()


def test_json_output_and_errors_through_lwr(
    server_ini: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert lwr_main(["users", "--config", str(server_ini), "--json", "add", "bob"]) == 0
    assert json.loads(capsys.readouterr().out)["user"]["name"] == "bob"
    assert lwr_main(["users", "--config", str(server_ini), "add", "bob"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert lwr_main(["users", "--config", str(server_ini), "set-plan", "bob", "gold"]) == 1
    assert "unknown plan" in capsys.readouterr().err
    missing = str(server_ini.parent / "nope.ini")
    assert lwr_main(["users", "--config", missing, "list"]) == 1


def test_set_notify(server_ini: Path) -> None:
    run(server_ini, "add", "carol")
    shown = run(server_ini, "set-notify", "carol", "--webhook-url", "https://hook.example/in")
    assert "webhook_url: https://hook.example/in" in shown and "webhook secret: " in shown
    shown = run(server_ini, "set-notify", "carol", "--email", "carol@example.org")
    assert "email: carol@example.org" in shown and "webhook secret: " not in shown
    assert "webhook_url: None" in run(server_ini, "set-notify", "carol", "--webhook-url", "")
    with pytest.raises(InvalidRequestError, match="not an email address"):
        run(server_ini, "set-notify", "carol", "--email", "carol")


def _allow(server_ini: Path, networks: str) -> None:
    """Set ``notify_webhook_allowed_networks`` in the server's ``[app:main]``."""
    text = server_ini.read_text()
    kept = [line for line in text.splitlines() if not line.startswith("notify_webhook_allowed")]
    text = "\n".join(kept)
    extra = f"notify_webhook_allowed_networks = {networks}\n" if networks else ""
    server_ini.write_text(text.replace("use = egg:lwr\n", "use = egg:lwr\n" + extra) + "\n")


def test_show_lists_the_channels_masked_and_whether_they_are_enabled(server_ini: Path) -> None:
    run(server_ini, "add", "dave")
    shown = run(server_ini, "show", "dave")
    assert "  email: - (disabled: not set)\n  webhook: - (disabled: not set)\n" in shown
    assert "  deliveries: 0 pending, 0 sent, 0 failed\n" in shown
    _allow(server_ini, "127.0.0.0/8")
    answer = json.loads(
        run(
            server_ini,
            "--json",
            "set-notify",
            "dave",
            "--email",
            "d@example.org",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
        )
    )
    secret = answer["webhook_secret"]
    shown = run(server_ini, "show", "dave")
    assert "  email: d@example.org (disabled: this server has no smtp_host)\n" in shown
    assert f"  webhook: http://127.0.0.1:9/hook (enabled, secret ****{secret[-4:]})\n" in shown
    assert secret not in shown
    _allow(server_ini, "")  # the operator closes the network: the URL would now be refused
    report = json.loads(run(server_ini, "--json", "show", "dave"))["channels"]
    assert report["webhook"] == {
        "url": "http://127.0.0.1:9/hook",
        "secret": f"****{secret[-4:]}",
        "enabled": False,
        "note": report["webhook"]["note"],
    }
    assert "127.0.0.1 is an internal address (loopback)" in report["webhook"]["note"]
    with pytest.raises(InvalidRequestError, match="loopback"):
        run(server_ini, "set-notify", "dave", "--webhook-url", "http://localhost:9/hook")
    run(server_ini, "set-notify", "dave", "--webhook-secret", "short")
    assert "secret ****)" in run(server_ini, "show", "dave")  # a short secret: stars only

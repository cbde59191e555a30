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

"""The client's action decisions: the shared rules plus ``symlink``, and their wire form."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwr.client.actions import ClientActions
from lwr.errors import ConfigurationError
from lwr.staging.rules import load_rules


def test_default_transfer_and_none_for_unstructured() -> None:
    actions = ClientActions.load()
    assert actions.decide("/d/a.dat", "input").action_type == "transfer"
    assert actions.decide("/d/index.fa", "unstructured").action_type == "none"
    assert actions.decide("/d/w/f", "workdir").action_type == "transfer"


def test_none_means_copy_for_job_directories() -> None:
    actions = ClientActions.load("none")
    assert actions.decide("/d/a.dat", "input").action_type == "none"
    assert actions.decide("/d/w/f", "workdir").action_type == "copy"
    assert actions.decide("/d/w/f", "output_workdir").action_type == "copy"


def test_symlink_default_only_for_read_only_kinds() -> None:
    actions = ClientActions.load("symlink")
    assert actions.decide("/d/a.dat", "input").action_type == "symlink"
    assert actions.decide("/t/tool.py", "tool").action_type == "symlink"
    assert actions.decide("/d/w/f", "workdir").action_type == "copy"
    assert actions.decide("/d/out.dat", "output").action_type == "copy"
    assert actions.decide("/d/idx.fa", "unstructured").action_type == "none"  # not a default kind


def test_symlink_rule_from_a_yaml_file(tmp_path: Path) -> None:
    config = tmp_path / "actions.yaml"
    config.write_text(
        "paths:\n"
        "  - path: /big\n    action: symlink\n"
        "  - path: /idx\n    path_types: unstructured\n    action: symlink\n    depth: 1\n"
    )
    actions = ClientActions.load("transfer", config)
    assert actions.decide("/big/a.bam", "input").action_type == "symlink"
    assert actions.decide("/small/a.bam", "input").action_type == "transfer"
    decision = actions.decide("/idx/h.fa", "unstructured")
    assert (decision.action_type, decision.depth) == ("symlink", 1)


def test_wire_form_hides_symlink_and_reloads_on_the_server_side() -> None:
    actions = ClientActions.load(
        "symlink",
        {
            "paths": [
                {"path": "/big", "action": "symlink"},
                {"path": "*.bam", "match_type": "glob", "action": "remote_copy"},
                {"path_types": "output", "action": "remote_transfer"},
                {
                    "path": "/g/idx",
                    "path_types": "unstructured",
                    "action": "rewrite",
                    "source_directory": "/g/idx",
                    "destination_directory": "/mnt/idx",
                },
            ]
        },
        files_endpoint="http://galaxy/api/jobs/1/files?job_key=k",
    )
    wire = actions.to_wire()
    assert "symlink" not in str(wire)
    assert wire["default_action"] == "copy"
    server_rules = load_rules(wire)  # what LWR's server does with remote_staging.action_mapper
    assert server_rules.action_for("/x/a.bam", "input").action_type == "remote_copy"
    assert server_rules.action_for("/out/a.dat", "output").action_type == "remote_transfer"
    assert server_rules.action_for("/g/idx/h.fa", "unstructured").rewrite("/g/idx/h.fa") == (
        "/mnt/idx/h.fa"
    )


def test_rewrite_decision_keeps_its_rule() -> None:
    actions = ClientActions.load(
        "transfer",
        [
            {
                "path": "/shared",
                "action": "rewrite",
                "source_directory": "/shared",
                "destination_directory": "/mnt/shared",
            }
        ],
    )
    decision = actions.decide("/shared/x/a.dat", "input")
    assert not decision.moves
    assert decision.action.rewrite("/shared/x/a.dat") == "/mnt/shared/x/a.dat"


def test_malformed_rules_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown action"):
        ClientActions.load("transfer", [{"path": "/x", "action": "teleport"}])

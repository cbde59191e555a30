"""File-action rules: the matchers' properties, the client's own decisions, and load errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lwr.errors import ConfigurationError, InvalidRequestError
from lwr.staging.rules import ALL_PATH_TYPES, DEFAULT_PATH_TYPES, load_rules, load_rules_file

segment = st.text(alphabet="abcxyz019_-.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
absolute = st.lists(segment, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
path_type = st.sampled_from(ALL_PATH_TYPES)


def one_rule(**rule: object) -> object:
    return load_rules({"default_action": "none", "paths": [rule]})


# -- matcher properties -----------------------------------------------------------------------


@given(prefix=absolute, path=absolute)
def test_prefix_matches_exactly_the_paths_starting_with_it(prefix: str, path: str) -> None:
    rules = one_rule(path=prefix, action="remote_transfer")
    chosen = rules.action_for(path, "input").action_type
    assert (chosen == "remote_transfer") == path.startswith(prefix)


@given(prefix=absolute, rest=absolute)
def test_prefix_always_matches_paths_below_it(prefix: str, rest: str) -> None:
    rules = one_rule(path=prefix, action="copy")
    assert rules.action_for(prefix + rest, "input").action_type == "copy"


@given(path=absolute, other=absolute)
def test_a_literal_glob_matches_only_itself(path: str, other: str) -> None:
    rules = one_rule(path=path, match_type="glob", action="copy")
    assert rules.action_for(path, "input").action_type == "copy"
    assert (rules.action_for(other, "input").action_type == "copy") == (other == path)


@given(head=absolute, path=absolute)
def test_a_trailing_star_glob_crosses_directories(head: str, path: str) -> None:
    rules = one_rule(path=head + "*", match_type="glob", action="copy")
    assert (rules.action_for(path, "input").action_type == "copy") == path.startswith(head)


@given(head=absolute, tail=segment, path=absolute)
def test_question_mark_glob_matches_one_character(head: str, tail: str, path: str) -> None:
    rules = one_rule(path=f"{head}/?{tail}", match_type="glob", action="copy")
    expected = (
        path.startswith(head + "/")
        and len(path) == len(head) + 2 + len(tail)
        and path.endswith(tail)
    )
    assert (rules.action_for(path, "input").action_type == "copy") == expected


@given(literal=absolute, path=absolute)
def test_regex_is_anchored_at_the_start_only(literal: str, path: str) -> None:
    rules = one_rule(path=re.escape(literal), match_type="regex", action="copy")
    assert (rules.action_for(path, "input").action_type == "copy") == path.startswith(literal)


@given(path=absolute, kind=path_type)
def test_without_rules_the_default_applies_to_the_default_types_only(path: str, kind: str) -> None:
    rules = load_rules({"default_action": "remote_transfer"})
    expected = "remote_transfer" if kind in DEFAULT_PATH_TYPES else "none"
    assert rules.action_for(path, kind).action_type == expected


# -- agreement with Galaxy's client -----------------------------------------------------------

CLIENT_RULES = [
    {"path": "/data/shared", "action": "none"},
    {"path": "/data/**/*.bam", "match_type": "glob", "action": "remote_copy"},
    {"path": r"/old/.*/dataset_\d+\.dat", "match_type": "regex", "action": "copy"},
    {"path": "/idx", "path_types": "unstructured", "depth": 2, "action": "remote_transfer"},
    {
        "path": "/srv",
        "action": "rewrite",
        "path_types": "*any*",
        "source_directory": "/srv",
        "destination_directory": "/mnt/srv",
    },
    {"action": "transfer", "path_types": "output_metadata"},
]
client_path = st.one_of(
    absolute,
    st.builds(lambda p: "/data" + p, absolute),
    st.builds(lambda p: "/data" + p + ".bam", absolute),
    st.builds(lambda p, n: f"/old{p}/dataset_{n}.dat", absolute, st.integers(0, 999)),
    st.builds(lambda p: "/idx" + p, absolute),
    st.builds(lambda p: "/srv" + p, absolute),
)


@settings(max_examples=300, deadline=None)  # the first example imports pulsar.client
@given(path=client_path, kind=path_type, default=st.sampled_from(["transfer", "none", "copy"]))
def test_decisions_agree_with_the_client_action_mapper(path: str, kind: str, default: str) -> None:
    """The client's own FileActionMapper, serialized as it sends it, decides the same action."""
    from pulsar.client.action_mapper import FileActionMapper

    config = {"default_action": default, "files_endpoint": "http://g/api", "paths": CLIENT_RULES}
    sent = FileActionMapper(config=config).to_dict()  # exactly what remote_staging carries
    theirs = FileActionMapper(config=sent).action({"path": path}, kind).action_type
    ours = load_rules(sent, error=InvalidRequestError).action_for(path, kind).action_type
    assert ours == theirs


def test_url_is_built_like_the_client_builds_it() -> None:
    from pulsar.client.action_mapper import FileActionMapper

    endpoint = "http://galaxy/api/jobs/7/files?job_key=abc"
    config = {"default_action": "remote_transfer", "files_endpoint": endpoint}
    client_action = FileActionMapper(config=config).action({"path": "/d/a b&c.dat"}, "input")
    assert load_rules(config).url_for("/d/a b&c.dat", "input") == client_action.url


def test_none_becomes_copy_for_the_job_directories() -> None:
    rules = load_rules({"default_action": "none"})
    for kind in ("workdir", "jobdir", "metadata", "output_workdir", "output_metadata"):
        assert rules.action_for("/x", kind).action_type == "copy"
    assert rules.action_for("/x", "input").action_type == "none"


def test_first_matching_rule_wins_and_path_types_filter() -> None:
    rules = load_rules(
        {
            "paths": [
                {"path": "/a", "action": "none", "path_types": "input"},
                {"path": "/a", "action": "remote_copy", "path_types": ["output", "input"]},
                {"path": "/a", "action": "copy", "path_types": "*any*"},
            ]
        }
    )
    assert rules.action_for("/a/f", "input").action_type == "none"
    assert rules.action_for("/a/f", "output").action_type == "remote_copy"
    assert rules.action_for("/a/f", "unstructured").action_type == "copy"
    assert rules.rules[0].depth == 0


def test_rewrite_keeps_its_directories() -> None:
    rules = one_rule(
        path="/srv", action="rewrite", source_directory="/srv", destination_directory="/m"
    )
    action = rules.action_for("/srv/x/y", "input")
    assert action.rewrite("/srv/x/y") == "/m/x/y"
    assert action.rewrite("/other") is None
    assert not action.is_remote


# -- loading ----------------------------------------------------------------------------------


def test_loads_yaml_json_bare_lists_and_files(tmp_path: Path) -> None:
    yaml_text = """
paths:
  - path: /galaxy/data
    action: remote_transfer
  - path: /cool/**/*.bam
    match_type: glob
    depth: 1
    action: copy
"""
    bare = [{"path": "/x", "action": "none"}]
    assert load_rules(yaml_text).rules[1].match_type == "glob"
    assert load_rules(json.dumps({"paths": bare})).rules[0].action.action_type == "none"
    assert load_rules(json.dumps(bare)).rules[0].path == "/x"
    assert load_rules("- {path: /x, action: none}").rules[0].path == "/x"
    assert load_rules(None).rules == ()
    path = tmp_path / "actions.yml"
    path.write_text(yaml_text)
    assert load_rules_file(path).rules[0].action.action_type == "remote_transfer"
    assert load_rules(yaml_text).has_remote_actions


def test_client_ssh_rules_load() -> None:
    ssh = {
        "path": "/x",
        "action": "remote_scp_transfer",
        "ssh_key": "__UNSET__",
        "ssh_user": "galaxy",
        "ssh_host": "__UNSET__",
        "ssh_port": "__UNSET__",
        "path_types": "input,output",
        "match_type": "prefix",
        "depth": 0,
    }
    rules = load_rules({"paths": [ssh], "ssh_user": None, "ssh_key": None})
    assert dict(rules.rules[0].action.params) == {"ssh_user": "galaxy"}


BAD = [
    ({"path": "/x", "action": "teleport"}, "unknown action 'teleport'"),
    ({"path": "(", "match_type": "regex"}, "invalid regex"),
    ({"path": "/x", "match_type": "fuzzy"}, "unknown match_type 'fuzzy'"),
    ({"match_type": "glob"}, "needs a 'path'"),
    ({"path": "/x", "path_types": "input,outptu"}, "unknown path type 'outptu'"),
    ({"path": "/x", "path_types": 7}, "'path_types' must be"),
    ({"path": "/x", "depth": -1}, "'depth' must be a non-negative integer"),
    ({"path": "/x", "depth": "deep"}, "'depth' must be a non-negative integer"),
    (
        {"path": "/x", "action": "rewrite", "source_directory": "/x"},
        "requires 'destination_directory'",
    ),
    ({"path": "/x", "acton": "copy"}, "unknown key(s) acton"),
    ({"path": "/x", "source_directory": "/y"}, "not options of action 'transfer'"),
    ({"path": ""}, "'path' must be a non-empty string"),
    ("just a string", "expected a mapping"),
]


@pytest.mark.parametrize(("rule", "complaint"), BAD)
def test_a_malformed_rule_is_refused_with_its_position(rule: object, complaint: str) -> None:
    good = {"path": "/ok", "action": "none"}
    with pytest.raises(ConfigurationError) as caught:
        load_rules({"paths": [good, good, rule]}, origin="actions.yml")
    assert "actions.yml: rule 2" in caught.value.message
    assert complaint in caught.value.message


def test_client_supplied_rules_are_refused_as_bad_requests() -> None:
    with pytest.raises(InvalidRequestError, match="rule 0: unknown action"):
        load_rules({"paths": [{"action": "warp"}]}, error=InvalidRequestError)


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        ({"default_action": "warp"}, "unknown default_action 'warp'"),
        ({"paths": {"path": "/x"}}, "'paths' must be a list"),
        ({"pahts": []}, "unknown key(s) pahts"),
        ("paths: [unclosed", "not valid YAML or JSON"),
        ("42", "expected a mapping"),
    ],
)
def test_malformed_configurations_are_refused(source: object, complaint: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_rules(source)  # type: ignore[arg-type]
    assert complaint in caught.value.message


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read file actions"):
        load_rules_file(tmp_path / "nope.yml")


def test_url_without_files_endpoint_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="files_endpoint"):
        load_rules({}).url_for("/x", "input")


def test_relative_prefixes_are_made_absolute_like_the_client() -> None:
    rules = one_rule(path="rel/dir", action="copy")
    assert rules.rules[0].path == os.path.abspath("rel/dir")

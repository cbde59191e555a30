"""RFC 9530 digest fields: what we ask for, what we offer, and garbage refused."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwr.staging import digest


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(9 * 1024 * 1024 + 3)  # more than one read block
    path = tmp_path / "f"
    path.write_bytes(data)
    assert digest.sha256_file(path) == hashlib.sha256(data).digest()
    (tmp_path / "empty").write_bytes(b"")
    assert digest.sha256_file(tmp_path / "empty") == hashlib.sha256(b"").digest()


@given(st.binary(min_size=32, max_size=32))
def test_repr_digest_round_trips(value: bytes) -> None:
    assert digest.parse_sha256(digest.repr_digest(value)) == value
    assert digest.parse_sha256("sha-512=:AAAA:, " + digest.repr_digest(value)) == value


@pytest.mark.parametrize(
    "field",
    [
        None,
        "",
        "sha-512=:" + base64.b64encode(bytes(64)).decode() + ":",
        "sha-256=" + base64.b64encode(bytes(32)).decode(),  # not a byte sequence (no colons)
        "sha-256=:not base64!:",
        "sha-256=:" + base64.b64encode(bytes(31)).decode() + ":",  # wrong length
        "sha-256=",
    ],
)
def test_no_usable_sha256_is_none(field: str | None) -> None:
    assert digest.parse_sha256(field) is None


@pytest.mark.parametrize(
    ("field", "wanted"),
    [
        (digest.WANT_SHA256, True),
        ("sha-512=3, SHA-256=1", True),
        ("sha-256", True),
        ("sha-256=0", False),
        ("sha-512=10", False),
        ("", False),
        (None, False),
    ],
)
def test_wants_sha256(field: str | None, wanted: bool) -> None:
    assert digest.wants_sha256(field) is wanted

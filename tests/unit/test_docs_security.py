"""docs/security.md names, for every protection, the tests that prove it; those tests must exist.

A renamed or deleted test would otherwise leave the page claiming a proof nobody runs. The page
is parsed for ``tests/…py::test_name`` references and each is looked up in its module's syntax
tree (module-level or class-level test functions), so nothing is imported or run. A bare
```test_name``` in backticks is not allowed: it could not be checked.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "security.md"
REFERENCE = re.compile(r"\b(tests/[\w/]+\.py)::(test_\w+)")


@cache
def defined_tests(path: Path) -> frozenset[str]:
    """Names of the test functions defined in ``path`` (classes included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


def references(text: str) -> list[tuple[str, str]]:
    return REFERENCE.findall(text)


def missing(text: str) -> list[str]:
    """The references in ``text`` whose file or function does not exist."""
    gone = []
    for file, name in references(text):
        path = REPO / file
        if not path.is_file() or name not in defined_tests(path):
            gone.append(f"{file}::{name}")
    return gone


def test_every_test_the_security_page_names_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    assert len(set(references(text))) >= 60, "the page should name the proof of each protection"
    assert missing(text) == []


def test_no_test_is_named_without_its_file() -> None:
    text = PAGE.read_text(encoding="utf-8")
    bare = re.findall(r"`(test_\w+)`", text)
    assert bare == [], f"name these as tests/…py::name so they can be checked: {bare}"


def test_the_check_catches_a_renamed_or_moved_test() -> None:
    real = "tests/unit/test_docs_security.py::test_every_test_the_security_page_names_exists"
    assert missing(real) == []
    renamed = real.replace("names_exists", "names_exist")
    assert missing(renamed) == [renamed]
    assert missing("tests/unit/nowhere.py::test_x") == ["tests/unit/nowhere.py::test_x"]

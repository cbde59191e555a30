"""Finding and rewriting paths in command lines and config files: strings in, strings out."""

from __future__ import annotations

from pathlib import Path

from lwr.client.rewrite import (
    PathRewriter,
    is_referenced,
    path_tokens,
    references_below,
    remote_join,
    unique_prefix,
    unstructured_files,
)


def test_rewrites_in_one_pass_longest_first() -> None:
    rewriter = PathRewriter()
    rewriter.add("/tmp", "/tmp/lwr/staging/1/working")
    rewriter.add("/tmp/a.dat", "/tmp/lwr/staging/1/inputs/a.dat")
    text = "cat /tmp/a.dat > /tmp/out; ls /tmp"
    assert rewriter.apply(text) == (
        "cat /tmp/lwr/staging/1/inputs/a.dat > /tmp/lwr/staging/1/working/out; "
        "ls /tmp/lwr/staging/1/working"
    )


def test_later_registration_wins_and_identity_is_ignored() -> None:
    rewriter = PathRewriter()
    rewriter.add("/w/config.txt", "/r/working/config.txt")
    rewriter.add("/w/config.txt", "/r/configs/config.txt")
    rewriter.add("/same", "/same")
    assert rewriter.apply('"/w/config.txt" /same') == '"/r/configs/config.txt" /same'
    assert rewriter.renames == {"/w/config.txt": "/r/configs/config.txt"}


def test_path_tokens_find_quoted_and_assigned_paths() -> None:
    text = """tool --in=/d/a.fa '/d/b c' "/d/x.txt" rel/not/abs http://host/path x:/d/y"""
    assert path_tokens([text]) == ["/d/a.fa", "/d/b", "/d/x.txt", "/d/y"]


def test_references_below_a_directory() -> None:
    texts = ["python /tools/t/run.py /tools/t/sub/h.R /tools/tx/other", "cfg=/tools/t/c.txt"]
    assert references_below(texts, "/tools/t") == [
        "/tools/t/run.py",
        "/tools/t/sub/h.R",
        "/tools/t/c.txt",
    ]


def test_is_referenced_is_a_plain_substring_test() -> None:
    assert is_referenced(["cat /d/dataset_0_files/x"], "/d/dataset_0_files")
    assert not is_referenced(["cat /d/dataset_1.dat"], "/d/dataset_0.dat")


def test_unstructured_files_with_depth(tmp_path: Path) -> None:
    (tmp_path / "idx" / "bwa").mkdir(parents=True)
    (tmp_path / "idx" / "seq").mkdir()
    for name in ("bwa/h.fa", "bwa/h.fa.fai", "seq/all.fa"):
        (tmp_path / "idx" / name).write_text("x")
    index = str(tmp_path / "idx" / "bwa" / "h.fa")
    assert unstructured_files(index, 0) == {index: "h.fa"}
    assert unstructured_files(index, 1) == {
        index: "h.fa",
        index + ".fai": "h.fa.fai",
    }
    assert sorted(unstructured_files(index, 2).values()) == [
        "bwa/h.fa",
        "bwa/h.fa.fai",
        "seq/all.fa",
    ]


def test_unique_prefix_and_remote_join() -> None:
    assert unique_prefix("/a") == unique_prefix("/a") != unique_prefix("/b")
    assert len(unique_prefix("/a")) == 32
    assert (
        remote_join("\\", "C:\\jobs\\1\\inputs\\", "d_files/sub/x")
        == "C:\\jobs\\1\\inputs\\d_files\\sub\\x"
    )
    assert remote_join("/", "/j/inputs", "a.dat") == "/j/inputs/a.dat"

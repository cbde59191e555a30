"""JobDirectory: the layout of a job and the confinement of every client-supplied name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lwr.errors import AuthorizationError, InvalidRequestError
from lwr.managers.directory import (
    INPUT_TYPES,
    OUTPUT_TYPES,
    SETUP_KEYS,
    SUBDIRECTORIES,
    JobDirectory,
    check_job_id,
    read_bounded,
    split_name,
)


@pytest.fixture
def job(tmp_path: Path) -> JobDirectory:
    directory = JobDirectory(tmp_path / "staging" / "42")
    directory.create()
    return directory


@pytest.fixture(scope="module")
def shared_job(tmp_path_factory: pytest.TempPathFactory) -> JobDirectory:
    """One job directory for the property tests (hypothesis runs many examples per test)."""
    directory = JobDirectory(tmp_path_factory.mktemp("prop") / "job")
    directory.create()
    (directory.sub("working") / "inner").mkdir()
    os.symlink("/etc", directory.sub("working") / "etc_link")
    os.symlink("../outputs", directory.sub("working") / "outputs_link")
    return directory


def _inside(path: Path, root: Path) -> bool:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root + os.sep)


# -- property: confinement --------------------------------------------------------------------

_pieces = st.sampled_from(
    [
        "..",
        ".",
        "",
        "a",
        "b.txt",
        "etc_link",
        "outputs_link",
        "inner",
        "/",
        "\\",
        "C:",
        "~",
        "\x00",
        "passwd",
    ]
)
_names = st.one_of(
    st.text(),
    st.lists(_pieces, max_size=8).map("/".join),
    st.lists(st.one_of(_pieces, st.text(max_size=5)), max_size=8).map("\\".join),
)


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    file_type=st.sampled_from(sorted(INPUT_TYPES)),
    name=_names,
)
@example(file_type="workdir", name="etc_link/passwd")
@example(file_type="workdir", name="outputs_link/x")
@example(file_type="input", name="\ud800")
def test_resolve_never_leaves_the_job(shared_job: JobDirectory, file_type: str, name: str) -> None:
    try:
        path = shared_job.resolve(file_type, name)
    except (AuthorizationError, InvalidRequestError):
        return
    assert _inside(path, shared_job.root), (name, path)
    assert "\x00" not in str(path)


@settings(max_examples=200, deadline=None)
@given(file_type=st.sampled_from(sorted(OUTPUT_TYPES)), name=_names)
def test_resolve_for_output_never_leaves_the_job(
    shared_job: JobDirectory, file_type: str, name: str
) -> None:
    try:
        path = shared_job.resolve(file_type, name, for_output=True)
    except (AuthorizationError, InvalidRequestError):
        return
    assert _inside(path, shared_job.root), (name, path)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}\Z"), min_size=1, max_size=5)
)
def test_plain_nested_names_are_accepted_where_expected(
    shared_job: JobDirectory, parts: list[str]
) -> None:
    """The other side of confinement: ordinary nested names must not be refused."""
    name = "/".join(parts)
    path = shared_job.resolve("input", name)
    assert path == shared_job.sub("inputs").joinpath(*parts)


# -- explicit cases ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("..", AuthorizationError),
        ("../x", AuthorizationError),
        ("a/../../b", AuthorizationError),
        ("a/../b", AuthorizationError),  # '..' is refused even when it would stay inside
        ("..\\..\\x", AuthorizationError),
        ("/etc/passwd", AuthorizationError),
        ("C:\\x", AuthorizationError),
        ("c:x", AuthorizationError),
        ("\\\\server\\share", AuthorizationError),
        ("a\x00b", InvalidRequestError),
        ("", InvalidRequestError),
        (".", InvalidRequestError),
        ("./", InvalidRequestError),
        ("//", AuthorizationError),
    ],
)
def test_bad_names_are_refused(job: JobDirectory, name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        job.resolve("input", name)


def test_lone_surrogates_are_refused_not_crashing(job: JobDirectory) -> None:
    """A JSON client can send "\\ud800"; it must be a 400, not an encoding error deep in os."""
    with pytest.raises(InvalidRequestError):
        job.resolve("workdir", "galaxy\ud800.json")


def test_unknown_type_is_refused(job: JobDirectory) -> None:
    with pytest.raises(InvalidRequestError, match="unknown file type 'output'"):
        job.resolve("output", "x")  # an output type is not an upload type
    with pytest.raises(InvalidRequestError, match="unknown file type 'input'"):
        job.resolve("input", "x", for_output=True)
    with pytest.raises(InvalidRequestError):
        job.resolve("../inputs", "x")


@pytest.mark.parametrize(
    ("file_type", "sub"),
    [*INPUT_TYPES.items()],
)
def test_input_types_land_in_their_subdirectory(
    job: JobDirectory, file_type: str, sub: str
) -> None:
    assert job.resolve(file_type, "d/x.dat") == job.root / sub / "d" / "x.dat"


def test_output_types_are_read_from_their_subdirectory(job: JobDirectory) -> None:
    assert job.resolve("output", "out.txt", for_output=True) == job.root / "outputs" / "out.txt"
    assert job.resolve("output_workdir", "w.txt", for_output=True) == job.root / "working" / "w.txt"
    assert job.resolve("output_metadata", "m", for_output=True) == job.root / "metadata" / "m"
    assert job.resolve("output_jobdir", "stdout", for_output=True) == job.root / "stdout"


def test_windows_separators_nest(job: JobDirectory) -> None:
    assert (
        job.resolve("input", "dataset_1_files\\sub\\x")
        == job.root / "inputs" / "dataset_1_files" / "sub" / "x"
    )
    assert job.resolve("input", "./a//b/") == job.root / "inputs" / "a" / "b"


def test_symlink_out_of_the_job_is_refused(job: JobDirectory) -> None:
    os.symlink("/etc", job.sub("working") / "escape")
    os.symlink("/etc/passwd", job.sub("working") / "passwd")
    with pytest.raises(AuthorizationError):
        job.resolve("output_workdir", "escape/passwd", for_output=True)
    with pytest.raises(AuthorizationError):
        job.resolve("output_workdir", "passwd", for_output=True)
    with pytest.raises(AuthorizationError):
        job.resolve("workdir", "escape/new_file")  # an upload through it too


def test_dangling_symlink_out_of_the_job_is_refused(job: JobDirectory, tmp_path: Path) -> None:
    os.symlink(tmp_path / "not_yet", job.sub("working") / "later")
    with pytest.raises(AuthorizationError):
        job.resolve("workdir", "later")


def test_symlink_to_a_sibling_file_in_the_job_is_allowed(job: JobDirectory) -> None:
    (job.sub("outputs") / "result.txt").write_text("42\n")
    os.symlink("../outputs/result.txt", job.sub("working") / "result.txt")
    path = job.resolve("output_workdir", "result.txt", for_output=True)
    assert path == job.sub("working") / "result.txt"
    assert path.read_text() == "42\n"


def test_job_directory_itself_through_a_symlinked_staging_root(tmp_path: Path) -> None:
    """A staging directory reached through a symlink must not make every name 'outside'."""
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "link")
    job = JobDirectory(tmp_path / "link" / "7")
    job.create()
    assert job.resolve("input", "x") == tmp_path / "link" / "7" / "inputs" / "x"


def test_sibling_job_with_a_common_prefix_is_outside(tmp_path: Path) -> None:
    job = JobDirectory(tmp_path / "4")
    job.create()
    (tmp_path / "42").mkdir()
    os.symlink(tmp_path / "42", job.sub("working") / "neighbour")
    with pytest.raises(AuthorizationError):
        job.resolve("workdir", "neighbour/x")


@pytest.mark.parametrize(
    "job_id", ["", ".", "..", "a/b", "a\\b", "a..b", "-x", ".hidden", "x" * 300, "a b", "a\x00"]
)
def test_check_job_id_refuses(job_id: str) -> None:
    with pytest.raises(InvalidRequestError, match="invalid job id"):
        check_job_id(job_id)


@pytest.mark.parametrize(
    "job_id", ["1", "42", "job_7-a.b", "A" * 200, "7f3c0d9e2b1a4c5d8e9f0a1b2c3d4e5f"]
)
def test_check_job_id_accepts(job_id: str) -> None:
    assert check_job_id(job_id) == job_id


def test_check_job_id_refuses_non_strings() -> None:
    with pytest.raises(InvalidRequestError):
        check_job_id(42)  # type: ignore[arg-type]


def test_split_name() -> None:
    assert split_name("a/./b\\c") == ["a", "b", "c"]
    with pytest.raises(InvalidRequestError):
        split_name(None)  # type: ignore[arg-type]


# -- layout -----------------------------------------------------------------------------------


def test_create_makes_every_subdirectory_and_is_idempotent(tmp_path: Path) -> None:
    job = JobDirectory(tmp_path / "j")
    job.create()
    (job.sub("inputs") / "keep").write_text("x")
    job.create()
    assert sorted(p.name for p in job.root.iterdir()) == sorted(SUBDIRECTORIES)
    assert (job.sub("inputs") / "keep").read_text() == "x"
    assert job.exists()


def test_wipe_empties_but_keeps_symlink_targets(job: JobDirectory, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "data").write_text("keep me")
    os.symlink(outside, job.sub("working") / "link")
    os.symlink(outside, job.root / "top_link")
    (job.sub("outputs") / "o").write_text("old")
    (job.root / "return_code").write_text("0")
    job.wipe()
    assert (outside / "data").read_text() == "keep me"
    assert not (job.sub("outputs") / "o").exists()
    assert not (job.root / "return_code").exists()
    assert not os.path.lexists(job.root / "top_link")
    assert sorted(p.name for p in job.root.iterdir()) == sorted(SUBDIRECTORIES)


def test_delete(job: JobDirectory) -> None:
    (job.sub("outputs") / "o").write_text("x")
    job.delete()
    assert not job.root.exists()
    job.delete()  # deleting twice is fine


def test_setup_answer_lists_every_directory(job: JobDirectory) -> None:
    answer = job.setup_answer()
    assert answer["job_directory"] == str(job.root)
    for key, sub in SETUP_KEYS.items():
        assert answer[key] == str(job.root / sub)
        assert Path(answer[key]).is_dir()


def test_contents_lists_nested_files_relative(job: JobDirectory) -> None:
    working = job.sub("working")
    (working / "a.txt").write_text("a")
    (working / "dataset_1_files" / "deep").mkdir(parents=True)
    (working / "dataset_1_files" / "deep" / "x").write_text("x")
    (working / "dataset_1_files" / "y").write_text("y")
    (working / "empty_dir").mkdir()
    assert job.contents("working") == [
        "a.txt",
        os.path.join("dataset_1_files", "deep", "x"),
        os.path.join("dataset_1_files", "y"),
    ]
    assert job.contents("outputs") == []
    assert job.contents("no_such_sub") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0\n", 0), ("3", 3), (" 137 \n", 137), ("-1\n", -1), ("", None), ("\n", None), ("abc", None)],
)
def test_return_code_parsing(job: JobDirectory, text: str, expected: int | None) -> None:
    (job.root / "return_code").write_text(text)
    assert job.return_code() == expected


def test_return_code_missing(job: JobDirectory) -> None:
    assert job.return_code() is None
    assert job.read_text("stdout") is None


def test_read_bounded_small_file_is_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello\n")
    assert read_bounded(path, 6) == "hello\n"
    assert read_bounded(path, None) == "hello\n"


@pytest.mark.parametrize("limit", [5, 10, 64, 1000])
def test_read_bounded_keeps_head_and_tail_within_the_limit(tmp_path: Path, limit: int) -> None:
    path = tmp_path / "f"
    data = b"HEAD" + b"m" * 10_000 + b"TAIL"
    path.write_bytes(data)
    text = read_bounded(path, limit)
    assert len(text.encode()) <= limit
    if limit >= 12:
        assert text.startswith("HEAD")
        assert text.endswith("TAIL")
        assert "\n..\n" in text


def test_read_bounded_survives_cutting_a_multibyte_character(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes("é".encode() * 100)
    text = read_bounded(path, 21)
    assert "\ufffd" in text or text.count("é") >= 1

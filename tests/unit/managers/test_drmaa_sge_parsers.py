"""SGE output parsers, fed with output captured from a real SGE 8.1.9 (tests/data/sge/)."""

from __future__ import annotations

from pathlib import Path

from lwr.managers.drmaa_sge import (
    parse_qacct,
    parse_qstat_j_error,
    parse_qstat_xml_names,
    qacct_reason,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "sge"


def test_qstat_xml_lists_running_and_pending_jobs_of_all_users() -> None:
    names = parse_qstat_xml_names((DATA / "qstat_xml_jobs.xml").read_text())
    assert names == {"lwr-default-42-1": "10", "lwr-default-43-1": "11", "eqwjob": "12"}


def test_qstat_xml_without_jobs() -> None:
    assert parse_qstat_xml_names((DATA / "qstat_xml_empty.xml").read_text()) == {}


def test_eqw_error_reason_without_timestamp() -> None:
    reason = parse_qstat_j_error((DATA / "qstat_j_eqw.txt").read_text())
    assert reason == "error: can't chdir to /home/lwrprobe: No such file or directory"
    assert parse_qstat_j_error((DATA / "qstat_j_unknown.txt").read_text()) is None


def test_qacct_failed_record_gives_a_reason() -> None:
    fields = parse_qacct((DATA / "qacct_j_deleted_eqw.txt").read_text())
    assert fields["jobnumber"] == "12"
    assert qacct_reason(fields) == "SGE accounting: failed 28 (changing into working directory)"


def test_qacct_success_has_no_reason() -> None:
    fields = parse_qacct((DATA / "qacct_j_exit7.txt").read_text())
    assert fields["exit_status"] == "7"
    assert qacct_reason(fields) is None

"""The size of each input a TES task fetched is recorded: ``GET /jobs``, the dashboard, the plan.

Stage-in records what each ``http(s)`` input brought in the job's files table, the table
``GET /jobs`` and the dashboard list inputs from and the plan's per-job total
(``max_total_input``) is checked against when more files are uploaded into the job. An input
stopped at the plan's limit is not kept and keeps size 0. Real servers (SQLite and PostgreSQL,
the ``site`` fixture of :mod:`tests.integration.test_tes_users`), ``py-tes`` as the client.
"""

from __future__ import annotations

import pytest
import tes

from tests.integration.test_tes_users import Site, _dashboard, site, task, until

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

__all__ = ["site"]  # the module-scoped fixture: one server per database for this module


def _inputs(site: Site, who: str, task_id: str, **params: str) -> dict[str, int]:
    jobs = {job["id"]: job for job in site.jobs(who, **params)}
    return {f["name"]: f["size"] for f in jobs[task_id]["inputs"]}


def test_fetched_inputs_have_their_sizes(site: Site) -> None:
    """A user's and the admin token's http inputs, beside a content input, after stage-in."""
    (site.store.root / "five.bin").write_bytes(b"5" * 500)
    (site.store.root / "three.bin").write_bytes(b"3" * 300)
    inputs = [
        tes.Input(path="/in/five.bin", url=site.store.url("five.bin")),
        tes.Input(path="/in/three.bin", url=site.store.url("three.bin")),
        tes.Input(path="/in/note.txt", content="twelve bytes"),
    ]
    mine = site.client("alice").create_task(task("cat /in/* | wc -c", inputs=inputs))
    assert site.wait("alice", mine).state == "COMPLETE"
    expected = {"/in/five.bin": 500, "/in/three.bin": 300, "/in/note.txt": 12}
    assert _inputs(site, "alice", mine) == expected
    page = _dashboard(site, "alice", f"/ui/jobs/{mine}")[0]
    assert "(500 B)" in page and "(300 B)" in page

    admins = site.client("admin").create_task(task("true", inputs=inputs[:1]))
    assert site.wait("admin", admins).state == "COMPLETE"
    assert _inputs(site, "admin", admins, owner="-") == {"/in/five.bin": 500}


def test_fetched_sizes_count_in_the_plans_total(site: Site) -> None:
    """alice (free: 1500 B per job) fetched 800 B: an 800 B upload into the task passes it."""
    (site.store.root / "eight.bin").write_bytes(b"8" * 800)
    hold = site.server.directory / "hold-sizes"
    wait = f"while [ ! -e {hold} ]; do sleep 0.05; done"
    inputs = [tes.Input(path="/in/eight.bin", url=site.store.url("eight.bin"))]
    mine = site.client("alice").create_task(task(wait, inputs=inputs))
    try:
        assert site.wait("alice", mine, ("QUEUED", "INITIALIZING")).state == "RUNNING"
        assert _inputs(site, "alice", mine) == {"/in/eight.bin": 800}
        upload = site.raw(
            "alice",
            "PUT",
            f"/jobs/{mine}/files",
            params={"type": "input", "name": "more.bin"},
            data=b"m" * 800,
        )
        assert upload.status_code == 413, upload.text
        assert upload.json()["limit"] == "max_total_input"
    finally:
        hold.touch()
    assert site.wait("alice", mine).state == "COMPLETE"


def test_an_input_stopped_at_the_plan_is_not_kept_nor_counted(site: Site) -> None:
    (site.store.root / "huge.bin").write_bytes(b"h" * 1200)  # free: max_input_size 1 KB
    inputs = [tes.Input(path="/in/huge.bin", url=site.store.url("huge.bin"))]
    mine = site.client("alice").create_task(task("true", inputs=inputs))
    done = site.wait("alice", mine)
    assert done.state == "SYSTEM_ERROR" and "max_input_size" in "".join(done.logs[0].system_logs)
    working = site.staging() / ".users" / "alice" / mine / "working"
    assert not [p for p in working.rglob("*") if p.is_file()]
    until(lambda: mine in {j["id"] for j in site.jobs("alice")}, "the task listed")
    assert _inputs(site, "alice", mine) == {"/in/huge.bin": 0}

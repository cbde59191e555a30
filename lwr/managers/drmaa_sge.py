"""What SGE's own commands add to DRMAA: finding a job by name, and why a job failed.

DRMAA forgets a job once it ends (and every job of an earlier session), and it says ``failed``
without a reason. For Son of Grid Engine, ``qstat -xml``, ``qstat -j`` and ``qacct -j`` fill those
gaps: an orphan launched just before a crash is found by its name, and a failure carries SGE's
"error reason" (the ``Eqw`` cause) or the accounting's ``failed`` line. The parsers are pure so the
unit tests feed them output captured from a real SGE 8.1.9 (``tests/data/sge/``); the runner never
waits longer than ``timeout``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Sequence

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 15.0


def parse_qstat_xml_names(xml_text: str) -> dict[str, str]:
    """Map job name -> job number from ``qstat -xml`` (running and pending lists alike).

    When names repeat (a job resubmitted by hand), the highest job number, the newest, wins.
    """
    names: dict[str, str] = {}
    root = ET.fromstring(xml_text)
    for entry in root.iter("job_list"):
        number = (entry.findtext("JB_job_number") or "").strip()
        name = (entry.findtext("JB_name") or "").strip()
        if not number or not name:
            continue
        if name not in names or int(number) > int(names[name]):
            names[name] = number
    return names


def parse_qstat_j_error(text: str) -> str | None:
    """The "error reason" of ``qstat -j ID`` (set for jobs in ``Eqw``), without its timestamp."""
    for line in text.splitlines():
        if line.startswith("error reason"):
            _, _, reason = line.partition(":")
            reason = reason.strip()
            # "11/22/2026 02:11:45 [1001:12388]: error: can't chdir to ..." -> the message part
            marker = reason.find("]: ")
            return reason[marker + 3 :].strip() if marker >= 0 else reason
    return None


def parse_qacct(text: str) -> dict[str, str]:
    """The ``key value`` lines of one ``qacct -j`` record; repeated records: the last one wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("="):
            continue
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    return fields


def qacct_reason(fields: dict[str, str]) -> str | None:
    """A one-line reason from qacct fields, or None when SGE recorded no failure."""
    failed = fields.get("failed", "0").split(":", 1)
    code = failed[0].strip()
    if code in ("", "0"):
        return None
    detail = failed[1].strip() if len(failed) > 1 else ""
    return f"SGE accounting: failed {code}" + (f" ({detail})" if detail else "")


class SgeCommands:
    """Runs ``qstat``/``qacct`` where this host has them; every method degrades to None."""

    def __init__(self, timeout: float = COMMAND_TIMEOUT) -> None:
        self.timeout = timeout
        self.available = bool(os.environ.get("SGE_ROOT")) and shutil.which("qstat") is not None

    def find_job(self, job_name: str) -> str | None:
        """The id of a queued or running job called ``job_name``, of any user."""
        out = self._run(["qstat", "-xml", "-u", "*"])
        if out is None:
            return None
        try:
            return parse_qstat_xml_names(out).get(job_name)
        except ET.ParseError as exc:
            log.warning("unparseable qstat -xml output: %s", exc)
            return None

    def failure_reason(self, external_id: str) -> str | None:
        """Why SGE failed a job: its error reason while queued, else its accounting record."""
        out = self._run(["qstat", "-j", external_id])
        reason = parse_qstat_j_error(out) if out else None
        if reason:
            return reason
        out = self._run(["qacct", "-j", external_id])
        return qacct_reason(parse_qacct(out)) if out else None

    def _run(self, argv: Sequence[str]) -> str | None:
        if not self.available:
            return None
        try:
            result = subprocess.run(
                list(argv), capture_output=True, text=True, timeout=self.timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("%s failed: %s", " ".join(argv), exc)
            return None
        if result.returncode != 0:
            log.debug("%s exited %s: %s", " ".join(argv), result.returncode, result.stderr.strip())
            return None
        return result.stdout

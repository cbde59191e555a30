"""Pure parsers for HTCondor: the job user log (event log) and ``condor_submit``'s answer.

HTCondor records a job's life in the user log named by ``log =`` in the submit description; each
event is a header ``NNN (cluster.proc.subproc) date time text``, indented detail lines and a
``...`` terminator. Following that file needs no daemon query and works the same on the submit
host and after a restart. The formats follow HTCondor's manual ("Job event log codes"); HTCondor
cannot run on our build machines, so the tests use hand-written samples of those formats.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lwr.managers.base import ExternalStatus, JobState

log = logging.getLogger(__name__)

_HEADER = re.compile(r"^(\d{3}) \((\d+)\.(\d+)\.(\d+)\) (\S+ \S+) (.*)$")
_SUBMITTED = re.compile(r"submitted to cluster (\d+)")
_RETURN_VALUE = re.compile(r"\(return value (-?\d+)\)")
_SIGNAL = re.compile(r"\(signal (\d+)\)")


@dataclass(frozen=True)
class LogEvent:
    """One event of the user log: its code, job id, time stamp, header text and detail lines."""

    code: int
    cluster: str
    proc: str
    timestamp: str
    text: str
    details: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        """The detail lines joined, for reasons shown to an operator."""
        return " ".join(line.strip() for line in self.details if line.strip())


#: Every event code of HTCondor's manual with its effect on LWR's state; None leaves it as is.
EVENT_TABLE: Mapping[int, tuple[str, JobState | None]] = {
    0: ("submit", JobState.QUEUED),
    1: ("execute", JobState.RUNNING),
    2: ("executable_error", JobState.FAILED),
    3: ("checkpointed", None),
    4: ("job_evicted", JobState.QUEUED),
    5: ("job_terminated", JobState.COMPLETE),
    6: ("image_size", None),
    7: ("shadow_exception", None),
    8: ("generic", None),
    9: ("job_aborted", JobState.FAILED),
    10: ("job_suspended", JobState.RUNNING),
    11: ("job_unsuspended", JobState.RUNNING),
    12: ("job_held", JobState.FAILED),
    13: ("job_released", JobState.QUEUED),
    14: ("node_execute", None),
    15: ("node_terminated", None),
    16: ("post_script_terminated", None),
    17: ("globus_submit", None),
    18: ("globus_submit_failed", None),
    19: ("globus_resource_up", None),
    20: ("globus_resource_down", None),
    21: ("remote_error", None),
    22: ("job_disconnected", None),
    23: ("job_reconnected", None),
    24: ("job_reconnect_failed", JobState.QUEUED),
    25: ("grid_resource_up", None),
    26: ("grid_resource_down", None),
    27: ("grid_submit", None),
    28: ("job_ad_information", None),
    29: ("job_status_unknown", None),
    30: ("job_status_known", None),
    31: ("job_stage_in", None),
    32: ("job_stage_out", None),
    33: ("attribute_update", None),
    34: ("presubmit", None),
    35: ("cluster_submit", None),
    36: ("cluster_remove", None),
    37: ("factory_paused", None),
    38: ("factory_resumed", None),
    39: ("none", None),
    40: ("file_transfer", None),
    41: ("reserve_space", None),
    42: ("release_space", None),
    43: ("file_complete", None),
    44: ("file_used", None),
    45: ("file_removed", None),
}


def parse_submit_output(stdout: str) -> str:
    """The cluster id from ``condor_submit``'s "N job(s) submitted to cluster C." line."""
    match = _SUBMITTED.search(stdout)
    if match is None:
        raise ValueError(f"no cluster id in condor_submit output: {stdout.strip()!r}")
    return match.group(1)


def parse_events(text: str) -> list[LogEvent]:
    """Split a user log into events; a half-written last event (no ``...`` yet) is kept too.

    HTCondor appends while we read, so a truncated tail is normal, and lines that are not part
    of an event are skipped with a debug message rather than failing the poll.
    """
    events: list[LogEvent] = []
    current: tuple[re.Match[str], list[str]] | None = None
    for line in text.splitlines():
        if current is None:
            header = _HEADER.match(line)
            if header:
                current = (header, [])
            elif line.strip():
                log.debug("skipping user log line outside an event: %r", line)
            continue
        if line.strip() == "...":
            events.append(_event(*current))
            current = None
        else:
            current[1].append(line)
    if current is not None:
        events.append(_event(*current))
    return events


def _event(header: re.Match[str], details: list[str]) -> LogEvent:
    code, cluster, proc, _subproc, timestamp, text = header.groups()
    return LogEvent(int(code), cluster, proc, timestamp, text.strip(), tuple(details))


def job_status(events: Iterable[LogEvent], cluster: str) -> ExternalStatus:
    """Fold the events of ``cluster`` into one status; no event yet means still QUEUED."""
    status = ExternalStatus(JobState.QUEUED, native_state="no events yet")
    for event in events:
        if event.cluster != cluster:
            continue
        entry = EVENT_TABLE.get(event.code)
        if entry is None:
            log.warning(
                "unknown HTCondor event %03d for cluster %s: %s", event.code, cluster, event.text
            )
            continue
        name, state = entry
        if state is not None:
            status = _status_for(event, name, state)
    return status


def _status_for(event: LogEvent, name: str, state: JobState) -> ExternalStatus:
    if event.code == 5:
        return _terminated(event, name)
    reason = None
    if state is JobState.FAILED:
        reason = f"HTCondor: {event.text}" + (f" {event.detail}" if event.detail else "")
    return ExternalStatus(state, reason=reason, native_state=name)


def _terminated(event: LogEvent, name: str) -> ExternalStatus:
    """Normal termination is COMPLETE (the core reads return_code); death by signal is FAILED."""
    details = event.detail
    value = _RETURN_VALUE.search(details)
    if value is not None:
        return ExternalStatus(JobState.COMPLETE, native_state=f"{name} (return value {value[1]})")
    signal = _SIGNAL.search(details)
    if signal is not None:
        return ExternalStatus(
            JobState.FAILED,
            reason=f"HTCondor: killed by signal {signal[1]}",
            native_state=f"{name} (signal {signal[1]})",
        )
    return ExternalStatus(JobState.COMPLETE, native_state=name)

"""The Pulsar protocol version LWR reports to Galaxy, and how a site may report an older one.

Galaxy's Pulsar runner reads ``pulsar_version`` from the setup answer and changes what it does
at three thresholds (Galaxy 26.1, ``lib/galaxy/jobs/runners/pulsar.py``):

* below ``0.7.0.dev3`` it refuses the destination and fails the job before submitting it;
* below ``0.14.999`` it stops running the tool's command in a new shell (the command line then
  carries the whole tool command instead of running ``tool_script.sh``);
* from ``0.15.13.dev0`` it sends ``dataset_collector_descriptions`` for discovered outputs
  (and no longer adds the tools' raw ``output_discover_patterns`` to ``dynamic_outputs``).

LWR serves both sides of every threshold, so it reports the newest protocol it is tested
against: that of ``pulsar.client`` 0.16.0 (whose full ``check`` scenario passes in every
variant; Galaxy 26.1 itself pins the 0.15.16 client, which LWR is tested against through a real
Galaxy). ``lwr_version`` in the same answer stays LWR's own version. The ``[app:main]`` option
``pulsar_protocol_version`` lets a site report an older one — a compatibility knob, e.g. to keep
a Galaxy on the legacy discovered-output patterns — but never a newer one than this.
"""

from __future__ import annotations

import re

#: the Pulsar protocol version LWR implements (see the module docstring for why this one)
PULSAR_PROTOCOL_VERSION = "0.16.0"

_VERSION = re.compile(r"^(\d+(?:\.\d+){0,3})(?:\.?(dev|a|b|rc)(\d+))?$")
_PRE_RELEASE = {"dev": 0, "a": 1, "b": 2, "rc": 3}
_FINAL = 4


def version_key(text: str) -> tuple[tuple[int, ...], int, int]:
    """A sortable key for a release number such as ``0.15.13.dev0`` (PEP 440's common forms).

    Raises ValueError for anything else, so a typo in the configuration is caught at start-up
    rather than by Galaxy's own parser at the first job.
    """
    match = _VERSION.match(text.strip())
    if not match:
        raise ValueError(f"not a release number: {text!r} (expected e.g. 0.15.13 or 0.14.0.dev1)")
    release = [int(part) for part in match.group(1).split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()  # 0.15 == 0.15.0
    phase = _PRE_RELEASE[match.group(2)] if match.group(2) else _FINAL
    return tuple(release), phase, int(match.group(3) or 0)

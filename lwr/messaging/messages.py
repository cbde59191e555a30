"""The bodies of the protocol's messages: validated going in, built going out.

An incoming body is untrusted JSON; everything here raises
:class:`~lwr.errors.InvalidRequestError` on a body that does not have the shape Galaxy's client
gives it, so the consumer can reject exactly those messages and keep going. A setup message
carries as real JSON values what the HTTP ``submit`` carries as JSON strings, and a few under
other names (``submit_params`` for ``params``, a bare ``token_endpoint``); they are translated
here into the one ``launch`` dictionary :meth:`StatefulManager.submit` takes from either path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lwr import jsondepth
from lwr.errors import InvalidRequestError
from lwr.managers.directory import check_job_id
from lwr.messaging.exchange import ACK_QUEUE, ACK_SUFFIX, ACK_UUID, ACK_UUID_RESPONSE

#: optional setup fields and the JSON type each must have
_SETUP_FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "submit_params": dict,
    "env": list,
    "dependencies_description": dict,
    "remote_staging": dict,
    "setup_params": dict,
    "dynamic_file_sources": list,
    "token_endpoint": str,
    "cvmfsexec": (dict, str),
    "touch_outputs": list,
}

_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}\Z")


def body_dict(body: object) -> dict[str, Any]:
    """The body as a dictionary no deeper than HTTP parameters may be, or InvalidRequestError.

    Bodies nested so deep that decoding them exhausts Python's recursion never get here: kombu
    refuses them as undecodable (see ``RequestConsumer._on_decode_error``).
    """
    if not isinstance(body, dict):
        raise InvalidRequestError(f"message body must be a JSON object, not {type(body).__name__}")
    jsondepth.check_depth(body, "message body")
    return body


def job_id_of(body: Mapping[str, Any]) -> str:
    """The body's ``job_id``, checked like every job id LWR accepts."""
    if "job_id" not in body:
        raise InvalidRequestError("message has no job_id")
    return check_job_id(body["job_id"])


def setup_launch(body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(job_id, launch)`` from a setup message (setup and submit in one)."""
    job_id = job_id_of(body)
    command_line = body.get("command_line")
    if not isinstance(command_line, str) or not command_line.strip():
        raise InvalidRequestError(f"setup message for job {job_id!r} has no command_line")
    fields: dict[str, Any] = {}
    for name, kind in _SETUP_FIELDS.items():
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, kind):
            raise InvalidRequestError(f"setup message field {name!r} has the wrong JSON type")
        fields[name] = value
    launch: dict[str, Any] = {"command_line": command_line}
    if "submit_params" in fields:
        launch["params"] = fields.pop("submit_params")
    if "touch_outputs" in fields:
        launch["submit_extras"] = {"touch_outputs": fields.pop("touch_outputs")}
    if "token_endpoint" in fields:
        launch["token_endpoint"] = {"token_endpoint": fields.pop("token_endpoint")}
    if body.get("setup") and "setup_params" not in fields:
        fields["setup_params"] = {}  # the client's "set it up first" flag without parameters
    launch.update(fields)
    return job_id, launch


def ack_request(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(uuid, reply queue)`` when the sender wants an acknowledgement, else None."""
    if ACK_UUID not in body:
        return None
    uuid, queue = body.get(ACK_UUID), body.get(ACK_QUEUE)
    if not isinstance(uuid, str) or not uuid or len(uuid) > 200:
        raise InvalidRequestError(f"invalid {ACK_UUID} {uuid!r}")
    if not isinstance(queue, str) or not queue.endswith(ACK_SUFFIX) or not _QUEUE_NAME.match(queue):
        raise InvalidRequestError(f"invalid {ACK_QUEUE} {queue!r}")
    return uuid, queue


def ack_response(body: Mapping[str, Any]) -> str:
    """The uuid an acknowledgement message acknowledges."""
    uuid = body.get(ACK_UUID_RESPONSE)
    if not isinstance(uuid, str) or not uuid:
        raise InvalidRequestError(f"acknowledgement without a valid {ACK_UUID_RESPONSE}")
    return uuid


def ack_reply(uuid: str) -> dict[str, str]:
    return {ACK_UUID_RESPONSE: uuid}


def failed_status(job_id: str, reason: str) -> dict[str, Any]:
    """A final ``failed`` status for a job LWR could not accept, so Galaxy stops waiting."""
    return {
        "job_id": job_id,
        "complete": "true",
        "status": "failed",
        "returncode": None,
        "stdout": "",
        "stderr": f"LWR: {reason}",
        "job_stdout": "",
        "job_stderr": "",
        "reason": reason,
    }

"""SHA-256 checksums of staged files, asked for and offered with RFC 9530 digest fields.

A size check catches a truncated transfer; a checksum also catches bytes changed on the way (a
broken proxy, bad memory, a file rewritten while it was being sent). Hashing costs a full read
of the file on each side, so it is opt-in: a client sends ``Want-Repr-Digest: sha-256=…`` and
only then does LWR's server hash the file, answering a download with ``Repr-Digest`` and an
upload with the stored file's ``sha256`` in its JSON answer. A server that offers nothing (Pulsar)
is simply not checked beyond the size.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from pathlib import Path

#: what a client sends in ``Want-Repr-Digest``: SHA-256, the only algorithm we offer
WANT_SHA256 = "sha-256=10"
_BLOCK = 4 * 1024 * 1024


def sha256_file(path: Path | str) -> bytes:
    """The SHA-256 of a file, read in blocks into one reused buffer."""
    with open(path, "rb", buffering=0) as handle:
        return sha256_handle(handle)


def sha256_handle(handle: io.RawIOBase | io.BufferedIOBase) -> bytes:
    """The SHA-256 of an open file from its current position (a file opened safely elsewhere)."""
    digest = hashlib.sha256()
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    while count := handle.readinto(buffer):
        digest.update(view[:count])
    return digest.digest()


def wants_sha256(field: str | None) -> bool:
    """Whether a ``Want-Repr-Digest`` field asks for SHA-256 (a preference above 0)."""
    for entry in (field or "").split(","):
        name, _, preference = entry.strip().partition("=")
        if name.strip().lower() == "sha-256":
            return preference.strip() != "0"
    return False


def repr_digest(digest: bytes) -> str:
    """The ``Repr-Digest`` field value for a SHA-256 digest."""
    return f"sha-256=:{base64.b64encode(digest).decode('ascii')}:"


def parse_sha256(field: str | None) -> bytes | None:
    """The SHA-256 digest in a ``Repr-Digest`` field, or None when it offers none (or garbage)."""
    for entry in (field or "").split(","):
        name, _, value = entry.strip().partition("=")
        value = value.strip()
        if name.strip().lower() != "sha-256" or len(value) < 2:
            continue
        if not (value.startswith(":") and value.endswith(":")):
            return None
        try:
            digest = base64.b64decode(value[1:-1], validate=True)
        except (binascii.Error, ValueError):
            return None
        return digest if len(digest) == hashlib.sha256().digest_size else None
    return None

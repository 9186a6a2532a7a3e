"""Encoding of the daemon's replies (one JSON object per line; see docs/protocol.md)."""

from __future__ import annotations

import json

from broker.core.errors import KubetrayError
from shim import wire


def reply(kind: str, **fields: object) -> bytes:
    doc: dict[str, object] = {"v": wire.PROTOCOL_VERSION, "type": kind}
    doc.update(fields)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def credential(exec_credential: bytes) -> bytes:
    """The credential reply, in the exact shape the shim slices (wire.CREDENTIAL_PREFIX)."""
    return wire.CREDENTIAL_PREFIX + exec_credential + b"}\n"


def progress(message: str) -> bytes:
    return reply("progress", message=message)


def error(exc: KubetrayError) -> bytes:
    return reply("error", code=exc.code, message=exc.message)

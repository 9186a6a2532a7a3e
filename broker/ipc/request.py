"""One request line as the daemon accepts it: decoded, versioned, and each field checked and bounded.

Shared by the Handler and by the first answers a daemon gives before its Handler exists
(broker/ipc/early.py), so both refuse the same requests for the same reasons.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from broker import __version__
from broker.core.errors import BadRequest, InvalidArguments, UnsupportedVersion
from shim import wire
from shim.main import is_forwarded
from shim.spawn import looks_secret

# Bounds on one request's fields (the whole line is bounded by wire.MAX_REQUEST_BYTES already).
MAX_ARGS = 256
MAX_ENV = 128
MAX_FIELD_CHARS = 32 * 1024


def decode(line: bytes) -> dict[str, Any]:
    """The request object in ``line``: JSON, an object, this protocol version; BadRequest or
    UnsupportedVersion (each with the fix) otherwise."""
    try:
        request = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request is not a JSON line") from None
    except RecursionError:
        raise BadRequest("the request is nested too deeply to be a kubetray request") from None
    if not isinstance(request, dict):
        raise BadRequest("the request must be a JSON object")
    if request.get("v") != wire.PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"protocol version {request.get('v')!r} is not supported (this daemon speaks "
            f"{wire.PROTOCOL_VERSION}); restart the daemon after upgrading: `kubetray stop`"
        )
    return request


def check_text(value: str, what: str, limit: int = MAX_FIELD_CHARS) -> None:
    """Refuse what would fail later, deep inside (hashing, the keyring, a log line): lone surrogates
    (bytes that are not UTF-8, passed through by the shim) and oversized values."""
    if len(value) > limit:
        raise InvalidArguments(f"{what} is longer than {limit} characters; shorten it in the kubeconfig")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArguments(f"{what} is not valid UTF-8; fix it in the kubeconfig (or the environment)") from None


def argv_of(request: dict[str, Any]) -> list[str]:
    argv = request.get("argv")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise BadRequest("argv must be a list of strings")
    if len(argv) > MAX_ARGS:
        raise InvalidArguments(f"more than {MAX_ARGS} arguments; check the kubeconfig's exec args")
    for i, arg in enumerate(argv):
        check_text(arg, f"argument {i + 1}")
    return argv


def env_of(request: dict[str, Any]) -> dict[str, str]:
    """The caller's forwarded variables, filtered again by the documented list (an older or foreign
    client may send more: the rest is dropped here, never looked at)."""
    env = request.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise BadRequest("env must be an object of strings")
    kept = {k: v for k, v in env.items() if is_forwarded(k)}
    if len(kept) > MAX_ENV:
        raise InvalidArguments(f"more than {MAX_ENV} AAD_* variables in the environment")
    for name, value in kept.items():
        check_text(name, "an environment variable's name")
        check_text(value, f"the environment variable {name}")
    return kept


def cwd_of(request: dict[str, Any]) -> str:
    cwd = request.get("cwd") or ""
    if not isinstance(cwd, str):
        raise BadRequest("cwd must be a string")
    check_text(cwd, "the current directory")
    return cwd


def digest(argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> str:
    """A request's identity in the request index (broker/store/request_index.py): this kubetray version,
    the arguments, the forwarded environment and — for requests whose profile depends on it — the
    current directory (``cwd`` None otherwise). Only requests that carry no secret are ever indexed
    (:func:`indexable`), so the digest of one reveals nothing a profile record does not."""
    material = json.dumps([__version__, list(argv), sorted(env.items()), cwd], ensure_ascii=True,
                          separators=(",", ":"))
    return hashlib.sha256(material.encode("ascii")).hexdigest()


def indexable(env: Mapping[str, str], has_secrets: bool) -> bool:
    """Whether a request may be remembered by digest: no secret among its arguments (``has_secrets``,
    as the parser found them) and no variable named like one in its environment."""
    return not has_secrets and not any(looks_secret(name) for name in env)

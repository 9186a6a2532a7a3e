"""The chunked layout of a secret in a keyring: names, the manifest, splitting, and reading it back.

Standard library only, so a reader that is not the `keyring` library (broker/store/secret_service.py,
which answers the first kubectl after a restart) reads exactly what KeyringSecretStore wrote. The layout
and why it is crash-safe are described in broker/store/keyring_store.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import NamedTuple

log = logging.getLogger(__name__)

MANIFEST_PREFIX = "kubetray-chunked:"
SLOTS = ("a", "b")


class Manifest(NamedTuple):  # not a dataclass: dataclasses are not imported on the first call's path
    slot: str
    n: int
    sha256: str

    def encode(self) -> str:
        body = {"v": 1, "slot": self.slot, "n": self.n, "sha256": self.sha256}
        return MANIFEST_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Manifest | None:
        """The manifest in ``text``, or None when it is malformed or from an unknown version."""
        try:
            body = json.loads(text[len(MANIFEST_PREFIX) :])
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("v") != 1:
            return None
        slot, n, digest = body.get("slot"), body.get("n"), body.get("sha256")
        if slot not in SLOTS or type(n) is not int or n < 1 or not isinstance(digest, str):
            return None
        return cls(slot, n, digest)


def manifest_of(head: str | None) -> Manifest | None:
    """The manifest an entry holds, or None when it holds a plain value (or nothing)."""
    return Manifest.decode(head) if head is not None and head.startswith(MANIFEST_PREFIX) else None


def read(get: Callable[[str], str | None], name: str) -> str | None:
    """The value stored under ``name``, through ``get`` (one keyring entry by name); None when absent or
    when its chunks are missing or fail their checksum."""
    head = get(name)
    if head is None or not head.startswith(MANIFEST_PREFIX):
        return head
    manifest = Manifest.decode(head)
    if manifest is None:
        log.warning("secret %r has an unreadable chunk manifest; treating it as absent", name)
        return None
    parts = []
    for i in range(manifest.n):
        part = get(chunk_name(name, manifest.slot, i))
        if part is None:
            log.warning("secret %r is missing chunk %d of %d; treating it as absent", name, i, manifest.n)
            return None
        parts.append(part)
    value = "".join(parts)
    if digest(value) != manifest.sha256:
        log.warning("secret %r failed its checksum; treating it as absent", name)
        return None
    return value


def known(manifest: Manifest | None, slot: str) -> int:
    """How many chunks of ``slot`` the manifest vouches for (no need to probe for those)."""
    return manifest.n if manifest is not None and manifest.slot == slot else 0


def chunk_name(name: str, slot: str, index: int) -> str:
    return f"{name}#{slot}.{index}"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def units(value: str) -> int:
    """Length in UTF-16 code units: characters outside the BMP count twice."""
    return len(value) if value.isascii() else len(value.encode("utf-16-le")) // 2


def split(value: str, size: int) -> list[str]:
    """Pieces of at most ``size`` UTF-16 code units each, never splitting a surrogate pair."""
    if value.isascii():
        return [value[i : i + size] for i in range(0, len(value), size)]
    data = value.encode("utf-16-le")
    pieces: list[str] = []
    start, step = 0, 2 * size
    while start < len(data):
        end = min(start + step, len(data))
        if end < len(data) and 0xD800 <= int.from_bytes(data[end - 2 : end], "little") <= 0xDBFF:
            end -= 2  # the unit before the cut is a high surrogate: keep the pair together
        pieces.append(data[start:end].decode("utf-16-le"))
        start = end
    return pieces

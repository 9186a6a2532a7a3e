"""The profile registry: non-secret metadata of served profiles, as one JSON file.

Written atomically (temp file, fsync, rename) with mode 0600. It holds authority, client and server
ids, account names and expiry times, never a token: those live only in the keyring.
"""

from __future__ import annotations

from broker.store import jsonfile

_VERSION = 1


class JsonProfileRegistry:
    """ProfileRegistry kept in ``<state dir>/profiles.json``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> list[dict[str, object]]:
        records = jsonfile.read_list(self.path, "profiles", "profile registry")
        return [r for r in records if isinstance(r, dict)]

    def save(self, records: list[dict[str, object]]) -> None:
        jsonfile.write(self.path, {"version": _VERSION, "profiles": records})

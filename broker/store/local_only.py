"""The local-only profile keys (see broker/core/remote.py) as one small JSON file beside profiles.json.

Non-secret. Written atomically with mode 0600, like the profile registry.
"""

from __future__ import annotations

from broker.store import jsonfile


class JsonLocalOnlyStore:
    """LocalOnlyStore kept in ``<state dir>/remote.json``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> list[str]:
        keys = jsonfile.read_list(self.path, "local_only", "remote-use policy")
        return [k for k in keys if isinstance(k, str)]

    def save(self, keys: list[str]) -> None:
        jsonfile.write(self.path, {"version": 1, "local_only": keys})

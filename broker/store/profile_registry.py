"""The profile registry: non-secret metadata of served profiles, as one JSON file.

Written atomically (temp file, fsync, rename) with mode 0600. It holds authority, client and server
ids, account names and expiry times, never a token: those live only in the keyring.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile

log = logging.getLogger(__name__)

_VERSION = 1


class JsonProfileRegistry:
    """ProfileRegistry kept in ``<state dir>/profiles.json``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> list[dict[str, object]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable profile registry %s: %s", self.path, exc)
            return []
        profiles = doc.get("profiles") if isinstance(doc, dict) else None
        return [p for p in profiles if isinstance(p, dict)] if isinstance(profiles, list) else []

    def save(self, records: list[dict[str, object]]) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".profiles-", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": _VERSION, "profiles": records}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

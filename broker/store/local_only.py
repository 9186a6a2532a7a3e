"""The local-only profile keys (see broker/core/remote.py) as one small JSON file beside profiles.json.

Non-secret. Written atomically with mode 0600, like the profile registry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile

log = logging.getLogger(__name__)


class JsonLocalOnlyStore:
    """LocalOnlyStore kept in ``<state dir>/remote.json``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> list[str]:
        try:
            with open(self.path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable remote-use policy %s: %s", self.path, exc)
            return []
        keys = doc.get("local_only") if isinstance(doc, dict) else None
        return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []

    def save(self, keys: list[str]) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".remote-", suffix=".json", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "local_only": keys}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

"""Small non-secret JSON state files (profiles.json, remote.json): read leniently, written atomically.

A file is written to a 0600 temporary file beside it (mkstemp), fsynced and renamed over the old one, so
a crash leaves the old document or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def read_list(path: str, field: str, what: str) -> list[Any]:
    """The list under ``field`` of the document at ``path``; [] when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s %s: %s", what, path, exc)
        return []
    items = doc.get(field) if isinstance(doc, dict) else None
    return items if isinstance(items, list) else []


def write(path: str, doc: dict[str, Any]) -> None:
    """Replace the file at ``path`` with ``doc``, atomically (see the module docstring)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = os.path.basename(path)
    import tempfile  # here: its import (shutil, bz2, lzma, …) is not for the first call's path, which only reads

    fd, tmp = tempfile.mkstemp(prefix=f".{name}-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

"""Which profile a kubectl request maps to, remembered across restarts (``requests.json``, non-secret).

Parsing get-token arguments needs the argument parser and the profile model; the first answers of a
daemon that has just started (broker/ipc/early.py) come before either has loaded. So the daemon
remembers, for each request it has parsed, the request's digest (broker/ipc/request.py ``digest``: the
kubetray version, the arguments, the forwarded environment and, where the profile depends on it, the
directory) and the profile key it parsed to. Only requests that carry no secret are remembered, so the
file holds digests of what the kubeconfig and profiles.json already say, and profile keys. The most
recent ``LIMIT`` requests are kept; an entry of another kubetray version never matches (the version is
part of the digest).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from broker.store import jsonfile

LIMIT = 64


class JsonRequestIndex:
    def __init__(self, path: str, limit: int = LIMIT) -> None:
        self._path = path
        self._limit = limit
        self._lock = threading.Lock()  # the daemon is the only writer; its flight threads take turns

    def lookup(self, digests: Iterable[str]) -> str | None:
        """The profile key of the first of ``digests`` that is remembered, or None."""
        known = dict(self._entries())
        return next((known[d] for d in digests if d in known), None)

    def remember(self, digest: str, key: str) -> None:
        """Put ``digest`` → ``key`` first (written only when that changes anything)."""
        with self._lock:
            current = self._entries()
            if current[:1] == [(digest, key)]:
                return
            entries = [(digest, key), *((d, k) for d, k in current if d != digest)][: self._limit]
            jsonfile.write(self._path, {"v": 1, "requests": [list(e) for e in entries]})

    def _entries(self) -> list[tuple[str, str]]:
        rows = jsonfile.read_list(self._path, "requests", "request index")
        return [(r[0], r[1]) for r in rows
                if isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r)]

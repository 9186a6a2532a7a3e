"""Remote use through a forwarded socket: who came through ssh, for which profile, and what is refused.

A caller is *forwarded* when the kernel names an ssh process as the peer of its connection (see
broker/ipc/origin.py): that much is verified. The host a request says it comes from (``origin``) is
only what the remote shim claims and is shown as such. Profiles can be marked local-only, so that a
forwarded caller is refused for them; the mark lives in the daemon (never in a kubeconfig the remote
side could edit) and is kept across restarts through a :class:`LocalOnlyStore`.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from broker.core.errors import LocalOnly
from broker.core.ports import Clock

# How many remote uses status and the tray remember (most recent first); memory only.
KEEP_RECENT = 20
# An origin is a hostname; anything longer or stranger is cut and cleaned before it is shown.
MAX_ORIGIN = 64


@dataclass(frozen=True)
class Caller:
    """Who is at the other end of one connection, as far as the kernel can tell.

    ``forwarded`` is True when the peer process is an ssh client or server (``via`` names it), i.e.
    the request was relayed from another machine; ``pid`` is the peer's pid where the OS gives one.
    """

    forwarded: bool = False
    via: str = ""
    pid: int | None = None


LOCAL = Caller()


@dataclass(frozen=True)
class RemoteUse:
    """Requests a forwarded caller made in a row (``count``, the last at ``at``). ``origin`` is the
    remote shim's claim, not verified."""

    origin: str
    profile: str
    at: float
    via: str
    refused: bool = False
    count: int = 1

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class LocalOnlyStore(Protocol):
    """Where the set of local-only profile keys is kept between daemon runs (non-secret)."""

    def load(self) -> list[str]: ...

    def save(self, keys: list[str]) -> None: ...


def clean_origin(origin: object) -> str:
    """A printable, bounded hostname from a request's ``origin`` field ("" when absent or not text)."""
    if not isinstance(origin, str):
        return ""
    kept = "".join(c for c in origin if c.isalnum() or c in "-._:")
    return kept[:MAX_ORIGIN]


class RemoteGate:
    """Admits or refuses forwarded callers per profile and remembers recent remote use. Thread-safe."""

    def __init__(self, clock: Clock, store: LocalOnlyStore | None = None, keep: int = KEEP_RECENT) -> None:
        self._clock = clock
        self._store = store
        self._lock = threading.Lock()
        self._recent: deque[RemoteUse] = deque(maxlen=keep)
        self._local_only: set[str] = set()
        if store is not None:
            try:
                self._local_only = {k for k in store.load() if isinstance(k, str)}
            except (OSError, ValueError):
                self._local_only = set()  # unreadable: start open, `kubetray remote deny` rewrites it

    def admit(self, caller: Caller, origin: str, key: str, *, local_only_flag: bool = False,
              person_login: bool = True, login: str = "") -> None:
        """Let the call through, or raise LocalOnly. A local call carrying --local-only marks the profile.

        Forwarded callers are served only sign-ins a person does (browser, device code): every other mode
        would use what is on THIS machine (a CLI on PATH, a token file, an identity endpoint, the
        environment) on the word of the remote side, so those profiles count as local-only for them.
        """
        if not caller.forwarded:
            if local_only_flag and key not in self.local_only():
                self.mark(key, local_only=True)
            return
        if not person_login:
            with self._lock:
                self._recent.appendleft(RemoteUse(origin or "unknown host", key, self._clock.now(), caller.via,
                                                  True))
            raise LocalOnly(
                f"--login {login or 'this mode'} uses what is on the machine where kubetray runs (a CLI, files, "
                f"an identity endpoint, the caller's environment), so it is not served to callers forwarded "
                f"through {caller.via or 'ssh'}; use a browser or device-code sign-in there, or run kubectl on "
                "the desktop")
        refused = local_only_flag or key in self.local_only()
        use = RemoteUse(origin or "unknown host", key, self._clock.now(), caller.via, refused)
        with self._lock:
            last = self._recent[0] if self._recent else None
            if last is not None and (last.origin, last.profile, last.via, last.refused) == (
                    use.origin, use.profile, use.via, use.refused):
                # kubectl calls the shim for every command: one line per run of calls, not per call.
                self._recent[0] = replace(use, count=last.count + 1)
            else:
                self._recent.appendleft(use)
        if refused:
            raise LocalOnly(
                f"profile {key} is local-only: kubetray does not serve it to callers forwarded through "
                f"{caller.via or 'ssh'}; run kubectl on the desktop, or there run `kubetray remote allow {key}`"
            )

    def mark(self, key: str, *, local_only: bool) -> None:
        """Mark (or unmark) a profile local-only, and save the set."""
        with self._lock:
            if local_only:
                self._local_only.add(key)
            else:
                self._local_only.discard(key)
            keys = sorted(self._local_only)
        if self._store is not None:
            self._store.save(keys)

    def local_only(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._local_only)

    def recent(self) -> list[RemoteUse]:
        """Remote uses, most recent first."""
        with self._lock:
            return list(self._recent)

    def to_json(self) -> dict[str, object]:
        """For the status reply: recent uses and local-only keys."""
        return {"recent": [u.to_json() for u in self.recent()], "local_only": sorted(self.local_only())}

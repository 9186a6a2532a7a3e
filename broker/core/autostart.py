"""Start at login, as the core sees it: the Autostart port, what it reports, and its one error.

The per-OS implementations live in broker/autostart; the tray and the CLI hold only this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ENABLED = "enabled"  # ours, and starts this installation
STALE = "stale"  # ours, but starts another command (e.g. an old virtualenv)
FOREIGN = "foreign"  # someone else's file at our location: reported, never touched


class AutostartError(Exception):
    """Autostart cannot be managed here; the message says why (and what was tried)."""


@dataclass(frozen=True)
class Entry:
    kind: str  # "xdg-autostart", "systemd-user", "launch-agent", "run-key"
    location: str
    state: str  # ENABLED, STALE or FOREIGN
    command: str  # what it starts, as written

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "location": self.location, "state": self.state, "command": self.command}


@dataclass(frozen=True)
class Status:
    """What is on disk (or in the registry) now. Absent entries are not listed."""

    backend: str
    entries: tuple[Entry, ...]
    would_start: str  # the command ``enable`` writes

    @property
    def enabled(self) -> bool:
        """True when an entry of ours starts kubetray at login (a stale one still runs something)."""
        return any(e.state in (ENABLED, STALE) for e in self.entries)

    def lines(self) -> list[str]:
        if not self.entries:
            return [f"start at login: off ({self.backend}); `kubetray autostart enable` turns it on"]
        head = "on" if self.enabled else "off"
        out = [f"start at login: {head} ({self.backend})"]
        for e in self.entries:
            out.append(f"  {e.kind}: {e.location} [{e.state}]")
            out.append(f"    starts: {e.command}")
            if e.state == STALE:
                out.append(f"    this installation would start: {self.would_start}; "
                           "run `kubetray autostart enable` to update it")
            elif e.state == FOREIGN:
                out.append("    not written by kubetray; left alone")
        return out

    def to_json(self) -> dict[str, object]:
        return {"backend": self.backend, "enabled": self.enabled, "would_start": self.would_start,
                "entries": [e.to_json() for e in self.entries]}


class Autostart(Protocol):
    """One OS's way of starting kubetray at login."""

    name: str

    def status(self) -> Status: ...

    def enable(self, *, systemd: bool = False) -> Status:
        """Write (or rewrite) our entry; idempotent. ``systemd`` selects the Linux systemd unit."""
        ...

    def disable(self) -> Status:
        """Remove our entries, and only ours."""
        ...

"""Start kubetray at login: one implementation per OS, chosen in one function.

Linux (and the BSDs): an XDG autostart entry, or a systemd user unit; macOS: a LaunchAgent; Windows: a
value under HKCU's Run key. Each implementation writes only its own entry, recognises it again (so
``disable`` removes only what ``enable`` wrote), and reports an entry of ours that starts another
command (kubetray moved to another environment) as "stale". Entries always name an absolute path.
"""

from __future__ import annotations

import importlib
import os
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

ENV_BACKEND = "KUBETRAY_AUTOSTART_BACKEND"
BACKENDS = ("linux", "macos", "windows")

ENABLED = "enabled"  # ours, and starts this installation
STALE = "stale"  # ours, but starts another command (e.g. an old virtualenv)
FOREIGN = "foreign"  # someone else's file at our location: reported, never touched

# What an autostarted kubetray runs: the daemon with its output detached, so a login starts it quietly
# (it logs to its log file; nothing goes to a terminal or the session's error log).
RUN_ARGS = ("run", "--detach")


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


def entry_command(
    *,
    executable: str | None = None,
    platform: str | None = None,
    scripts_dirs: Sequence[str] | None = None,
    isfile: Callable[[str], bool] = os.path.isfile,
) -> list[str]:
    """The absolute command line that starts this installation's daemon quietly.

    Prefers the ``kubetray`` console script installed next to the interpreter (what the person runs);
    falls back to ``python -m broker``. On Windows it is ``pythonw.exe -m broker``: a console script
    would open a console window at every login.
    """
    python = os.path.abspath(executable or sys.executable)  # not resolved: a venv's python is a symlink
    plat = platform or sys.platform
    if plat == "win32":
        pythonw = os.path.join(os.path.dirname(python), "pythonw.exe")
        return [pythonw if isfile(pythonw) else python, "-m", "broker", *RUN_ARGS]
    dirs = list(scripts_dirs) if scripts_dirs is not None else [os.path.dirname(python), sysconfig.get_path("scripts")]
    for directory in dirs:
        script = os.path.join(directory, "kubetray")
        if directory and isfile(script):
            return [os.path.abspath(script), *RUN_ARGS]
    return [python, "-m", "broker", *RUN_ARGS]


def default_backend_name(platform: str | None = None) -> str:
    plat = platform or sys.platform
    if plat == "darwin":
        return "macos"
    if plat == "win32":
        return "windows"
    return "linux"  # Linux and the BSDs: XDG autostart


def backend(
    name: str | None = None,
    *,
    command: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Autostart:
    """The implementation for this OS (or ``name``, or $KUBETRAY_AUTOSTART_BACKEND).

    Raises AutostartError listing every import error, as pystray's and keyring's selectors do.
    """
    env = os.environ if environ is None else environ
    chosen = name or env.get(ENV_BACKEND) or default_backend_name()
    if chosen not in BACKENDS:
        raise AutostartError(f"unknown autostart backend {chosen!r} (from ${ENV_BACKEND}?); "
                             f"choose one of {', '.join(BACKENDS)}")
    cmd = list(command) if command is not None else entry_command()
    errors: list[str] = []
    try:
        module = importlib.import_module(f"broker.autostart.{chosen}")
        impl: Autostart = module.create(cmd, env)
        return impl
    except (ImportError, OSError) as exc:
        errors.append(f"{chosen}: {exc}")
    raise AutostartError("start at login is not available here: " + "; ".join(errors))

"""macOS: a LaunchAgent in ~/Library/LaunchAgents with RunAtLoad, loaded by launchd at the next login.

Only the file is written (no ``launchctl bootstrap``): the daemon that asked is usually already
running, and a second one would only report "already running". The label is ours alone, which is how
``disable`` knows the file is ours.

launchd gives an agent PATH=/usr/bin:/bin:/usr/sbin:/sbin, where neither Homebrew's ``az`` nor ``kubelogin``
live, so the agent sets its own PATH: kubetray's own bin directory, Homebrew's (Apple silicon, then
Intel), then the system's. Not the PATH of the shell that ran ``autostart enable``: it may hold relative or
temporary entries, and for the CLI login modes the shim forwards the PATH of each kubectl call anyway.
"""

from __future__ import annotations

import os
import plistlib
from collections.abc import Mapping, Sequence
from typing import Any

from broker.autostart import ENABLED, FOREIGN, STALE, Entry, Status

LABEL = "io.kubetray.broker"
HOMEBREW_BINS = ("/opt/homebrew/bin", "/opt/homebrew/sbin", "/usr/local/bin", "/usr/local/sbin")
SYSTEM_PATH = ("/usr/bin", "/bin", "/usr/sbin", "/sbin")


def agent_search_path(command: Sequence[str]) -> str:
    """The agent's PATH: the directory of kubetray's own executable (when absolute), Homebrew's, the system's."""
    own = [os.path.dirname(command[0])] if command and os.path.isabs(command[0]) else []
    seen: list[str] = []
    for entry in (*own, *HOMEBREW_BINS, *SYSTEM_PATH):
        if entry not in seen:
            seen.append(entry)
    return ":".join(seen)


def agent_path(environ: Mapping[str, str]) -> str:
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, "Library", "LaunchAgents", f"{LABEL}.plist")


def agent(command: Sequence[str]) -> dict[str, Any]:
    """The LaunchAgent's contents (packaging/macos/io.kubetray.broker.plist.in is the same, as a template)."""
    return {
        "Label": LABEL,
        "ProgramArguments": list(command),
        "RunAtLoad": True,
        # Restart after a crash, not after Quit or `kubetray stop` (a clean exit).
        "KeepAlive": {"SuccessfulExit": False},
        # Only in a graphical login (not for SSH sessions), with the priority of an app the person uses.
        "LimitLoadToSessionType": "Aqua",
        "ProcessType": "Interactive",
        "EnvironmentVariables": {"PATH": agent_search_path(command)},
    }


def render(command: Sequence[str]) -> bytes:
    return plistlib.dumps(agent(command), fmt=plistlib.FMT_XML, sort_keys=True)


class MacAutostart:
    name = "macos"

    def __init__(self, command: Sequence[str], environ: Mapping[str, str]) -> None:
        self.command = list(command)
        self.path = agent_path(environ)

    def _entry(self) -> Entry | None:
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            doc = plistlib.loads(data)
        except (plistlib.InvalidFileException, ValueError):
            doc = {}
        if not isinstance(doc, dict) or doc.get("Label") != LABEL:
            return Entry("launch-agent", self.path, FOREIGN, "")
        args = doc.get("ProgramArguments")
        shown = " ".join(str(a) for a in args) if isinstance(args, list) else ""
        return Entry("launch-agent", self.path, ENABLED if data == render(self.command) else STALE, shown)

    def status(self) -> Status:
        entry = self._entry()
        return Status(self.name, (entry,) if entry else (), " ".join(self.command))

    def enable(self, *, systemd: bool = False) -> Status:
        if systemd:
            raise ValueError("--systemd is for Linux; macOS starts kubetray with a LaunchAgent")
        entry = self._entry()
        if entry is not None and entry.state == FOREIGN:
            raise FileExistsError(f"{self.path} exists and was not written by kubetray; remove it first")
        content = render(self.command)
        if entry is None or entry.state != ENABLED:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            tmp = f"{self.path}.kubetray-tmp"
            with open(tmp, "wb") as f:
                f.write(content)
            os.replace(tmp, self.path)
        return self.status()

    def disable(self) -> Status:
        entry = self._entry()
        if entry is not None and entry.state != FOREIGN:
            os.unlink(self.path)
        return self.status()


def create(command: Sequence[str], environ: Mapping[str, str]) -> MacAutostart:
    return MacAutostart(command, environ)

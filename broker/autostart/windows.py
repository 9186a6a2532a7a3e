"""Windows: a value named "kubetray" under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run.

winreg is imported only when the real registry is used, so the command-line rules and the logic are
tested anywhere with a dictionary standing in for the key.
"""

from __future__ import annotations

import importlib
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from broker.autostart import ENABLED, STALE, Entry, Status

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
VALUE_NAME = "kubetray"


def command_line(args: Sequence[str]) -> str:
    """One Windows command line (the rules CommandLineToArgvW and the C runtime parse back)."""
    return subprocess.list2cmdline(list(args))


class RunKey(Protocol):
    """The string values of one registry key."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class WinregRunKey:
    """HKCU's Run key through winreg."""

    def __init__(self) -> None:
        self._winreg: Any = importlib.import_module("winreg")  # ImportError off Windows: reported by backend()

    def get(self, name: str) -> str | None:
        w = self._winreg
        try:
            with w.OpenKey(w.HKEY_CURRENT_USER, RUN_KEY, 0, w.KEY_READ) as key:
                value, kind = w.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value) if kind in (w.REG_SZ, w.REG_EXPAND_SZ) else ""

    def set(self, name: str, value: str) -> None:
        w = self._winreg
        with w.CreateKeyEx(w.HKEY_CURRENT_USER, RUN_KEY, 0, w.KEY_SET_VALUE) as key:
            w.SetValueEx(key, name, 0, w.REG_SZ, value)

    def delete(self, name: str) -> None:
        w = self._winreg
        try:
            with w.OpenKey(w.HKEY_CURRENT_USER, RUN_KEY, 0, w.KEY_SET_VALUE) as key:
                w.DeleteValue(key, name)
        except FileNotFoundError:
            pass


class WindowsAutostart:
    name = "windows"
    location = f"HKCU\\{RUN_KEY}\\{VALUE_NAME}"

    def __init__(self, command: Sequence[str], run_key: RunKey) -> None:
        self.command = list(command)
        self.line = command_line(self.command)
        self._key = run_key

    def status(self) -> Status:
        value = self._key.get(VALUE_NAME)
        if value is None:
            return Status(self.name, (), self.line)
        # The value name is ours: whatever it holds, kubetray wrote it (or a person edited ours).
        return Status(self.name, (Entry("run-key", self.location, ENABLED if value == self.line else STALE, value),),
                      self.line)

    def enable(self, *, systemd: bool = False) -> Status:
        if systemd:
            raise ValueError("--systemd is for Linux; Windows starts kubetray from the Run key")
        if self._key.get(VALUE_NAME) != self.line:
            self._key.set(VALUE_NAME, self.line)
        return self.status()

    def disable(self) -> Status:
        if self._key.get(VALUE_NAME) is not None:
            self._key.delete(VALUE_NAME)
        return self.status()


def create(command: Sequence[str], environ: Mapping[str, str]) -> WindowsAutostart:
    return WindowsAutostart(command, WinregRunKey())

"""Linux (and the BSDs): an XDG autostart entry, or (``--systemd``) a systemd user unit.

XDG: ``$XDG_CONFIG_HOME/autostart/kubetray.desktop``, which every XDG desktop (GNOME, KDE, Xfce, …)
starts at login. systemd: ``$XDG_CONFIG_HOME/systemd/user/kubetray.service`` wanted by
``graphical-session.target``, for sessions that start that target; enabling it means the same symlink
``systemctl --user enable`` makes, written directly so it works without a running user manager and
takes effect at the next login. One mechanism at a time: enabling one removes our other one, since
both would start the daemon (harmlessly, but twice).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

from broker.autostart import ENABLED, FOREIGN, STALE, Entry, Status

DESKTOP_NAME = "kubetray.desktop"
UNIT_NAME = "kubetray.service"
WANTED_BY = "graphical-session.target"
# Written as a comment and an X- key: how we recognise our files again ("disable removes only ours").
MARKER = "X-Kubetray-Managed=true"
UNIT_MARKER = "# kubetray-autostart: managed"

# Characters that force quoting in a desktop entry's Exec key (Desktop Entry Specification, "Exec").
_EXEC_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")


def config_home(environ: Mapping[str, str]) -> str:
    """$XDG_CONFIG_HOME when it is absolute (the spec says to ignore a relative one), else ~/.config."""
    value = environ.get("XDG_CONFIG_HOME", "")
    if os.path.isabs(value):
        return value
    home = environ.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".config")


def exec_quote(args: Sequence[str]) -> str:
    """Quote ``args`` for a desktop entry's Exec key.

    Quoting comes first, then the general string escaping (a reader undoes them in the other order),
    so a literal backslash in a quoted argument ends up as four.
    """
    out = []
    for arg in args:
        if "\n" in arg or "\r" in arg:
            raise ValueError("a command-line argument for a desktop entry cannot hold a line break")
        if not arg or any(c in _EXEC_RESERVED for c in arg):
            arg = '"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"'
        out.append(arg.replace("%", "%%").replace("\\", "\\\\"))
    return " ".join(out)


def systemd_quote(args: Sequence[str]) -> str:
    """Quote ``args`` for ExecStart=: double quotes with C escapes; ``%`` and ``$`` doubled."""
    out = []
    for arg in args:
        if "\n" in arg or "\r" in arg:
            raise ValueError("a command-line argument for a systemd unit cannot hold a line break")
        text = arg.replace("%", "%%").replace("$", "$$")
        if not text or re.search(r"[\s\"'\\;]", text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(text)
    return " ".join(out)


def render_desktop_entry(command: Sequence[str], icon: str) -> str:
    return "\n".join((
        "# Written by `kubetray autostart enable`; `kubetray autostart disable` removes it.",
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",
        "Name=kubetray",
        "GenericName=Credential broker for kubectl",
        "Comment=Keeps kubectl signed in to Microsoft Entra ID",
        f"Exec={exec_quote(command)}",
        f"Icon={icon}",
        "Terminal=false",
        "StartupNotify=false",
        "X-GNOME-Autostart-enabled=true",
        MARKER,
        "",
    ))


def render_unit(command: Sequence[str]) -> str:
    return "\n".join((
        UNIT_MARKER,
        "# Written by `kubetray autostart enable --systemd`; `kubetray autostart disable` removes it.",
        "[Unit]",
        "Description=kubetray, the credential broker for kubectl",
        f"PartOf={WANTED_BY}",
        f"After={WANTED_BY}",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={systemd_quote(command)}",
        # A clean exit (Quit in the tray, `kubetray stop`) stays stopped; a crash is restarted.
        "Restart=on-failure",
        "RestartSec=5",
        "",
        "[Install]",
        f"WantedBy={WANTED_BY}",
        "",
    ))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return ""  # unreadable: certainly not one we can vouch for


def _write(path: str, content: str) -> None:
    """Write atomically, and not at all when unchanged (enable is idempotent, mtime included)."""
    if _read(path) == content:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.kubetray-tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(content)
    os.replace(tmp, path)


class LinuxAutostart:
    name = "linux"

    def __init__(self, command: Sequence[str], environ: Mapping[str, str], icon: str = "") -> None:
        self.command = list(command)
        self.icon = icon
        base = config_home(environ)
        self.desktop_path = os.path.join(base, "autostart", DESKTOP_NAME)
        self.unit_path = os.path.join(base, "systemd", "user", UNIT_NAME)
        self.wants_link = os.path.join(base, "systemd", "user", f"{WANTED_BY}.wants", UNIT_NAME)

    # -- what is there -------------------------------------------------------------------------------
    def _desktop_entry(self) -> Entry | None:
        text = _read(self.desktop_path)
        if text is None:
            return None
        exec_line = next((line[5:] for line in text.splitlines() if line.startswith("Exec=")), "")
        if MARKER not in text.splitlines():
            state = FOREIGN
        else:
            state = ENABLED if text == render_desktop_entry(self.command, self.icon) else STALE
        return Entry("xdg-autostart", self.desktop_path, state, exec_line)

    def _unit_entry(self) -> Entry | None:
        text = _read(self.unit_path)
        if text is None:
            return None
        exec_line = next((line[10:] for line in text.splitlines() if line.startswith("ExecStart=")), "")
        if not text.startswith(UNIT_MARKER):
            state = FOREIGN
        elif text != render_unit(self.command) or os.path.realpath(self.wants_link) != os.path.realpath(
                self.unit_path) or not os.path.lexists(self.wants_link):
            state = STALE  # rewritten by hand, or not wanted by the session target any more
        else:
            state = ENABLED
        return Entry("systemd-user", self.unit_path, state, exec_line)

    def status(self) -> Status:
        entries = tuple(e for e in (self._desktop_entry(), self._unit_entry()) if e is not None)
        return Status(self.name, entries, exec_quote(self.command))

    # -- changing it ---------------------------------------------------------------------------------
    def enable(self, *, systemd: bool = False) -> Status:
        if systemd:
            self._refuse_foreign(self._unit_entry())
            _write(self.unit_path, render_unit(self.command))
            if os.path.realpath(self.wants_link) != os.path.realpath(self.unit_path) or not os.path.lexists(
                    self.wants_link):
                os.makedirs(os.path.dirname(self.wants_link), exist_ok=True)
                if os.path.lexists(self.wants_link):
                    os.unlink(self.wants_link)
                os.symlink(self.unit_path, self.wants_link)
            self._remove_desktop_entry()
        else:
            self._refuse_foreign(self._desktop_entry())
            _write(self.desktop_path, render_desktop_entry(self.command, self.icon))
            self._remove_unit()
        return self.status()

    def disable(self) -> Status:
        self._remove_desktop_entry()
        self._remove_unit()
        return self.status()

    @staticmethod
    def _refuse_foreign(entry: Entry | None) -> None:
        if entry is not None and entry.state == FOREIGN:
            raise FileExistsError(f"{entry.location} exists and was not written by kubetray; "
                                  "remove or rename it first")

    def _remove_desktop_entry(self) -> None:
        entry = self._desktop_entry()
        if entry is not None and entry.state != FOREIGN:
            os.unlink(self.desktop_path)

    def _remove_unit(self) -> None:
        entry = self._unit_entry()
        if entry is None or entry.state == FOREIGN:
            return
        if os.path.islink(self.wants_link) and os.path.realpath(self.wants_link) == os.path.realpath(self.unit_path):
            os.unlink(self.wants_link)
        os.unlink(self.unit_path)


def create(command: Sequence[str], environ: Mapping[str, str]) -> LinuxAutostart:
    from broker import assets

    return LinuxAutostart(command, environ, icon=assets.path("kubetray.png"))  # absolute, as Exec is

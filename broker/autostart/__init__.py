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

# The port and its values live in the core (the tray uses them); re-exported here for the backends.
from broker.core.autostart import ENABLED, FOREIGN, STALE, Autostart, AutostartError, Entry, Status

__all__ = ["ENABLED", "FOREIGN", "STALE", "Autostart", "AutostartError", "Entry", "Status", "backend",
           "entry_command", "default_backend_name", "BACKENDS", "ENV_BACKEND", "RUN_ARGS"]

ENV_BACKEND = "KUBETRAY_AUTOSTART_BACKEND"
BACKENDS = ("linux", "macos", "windows")

# What an autostarted kubetray runs: the daemon with its output detached, so a login starts it quietly
# (it logs to its log file; nothing goes to a terminal or the session's error log).
RUN_ARGS = ("run", "--detach")


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

"""Where kubetray keeps things, per user, overridable for tests and odd setups.

On Linux and the BSDs these are the XDG base-directory rules, computed here: what platformdirs computes
there (tests/unit/test_paths.py compares), without its import (pathlib, tempfile: ~5 ms of the first
kubectl after a restart, which waits for the daemon). Elsewhere platformdirs decides.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import NamedTuple

from shim import wire


def user_state_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """Where profiles.json and remote.json live: $XDG_STATE_HOME/kubetray (~/.local/state/kubetray)."""
    if _is_xdg(platform):
        return os.path.join(_xdg_state_home(os.environ if environ is None else environ), wire.APP_NAME)
    import platformdirs

    # appauthor=False: %LOCALAPPDATA%\kubetray\… on Windows, not kubetray\kubetray (no effect elsewhere)
    return platformdirs.user_state_dir(wire.APP_NAME, appauthor=False)


def user_log_dir(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str:
    """The daemon's log: $XDG_STATE_HOME/kubetray/log on Linux, as platformdirs has it."""
    if _is_xdg(platform):
        return os.path.join(user_state_dir(environ, platform), "log")
    import platformdirs

    return platformdirs.user_log_dir(wire.APP_NAME, appauthor=False)


def _is_xdg(platform: str | None) -> bool:
    return (platform or sys.platform) not in ("win32", "darwin")


def _xdg_state_home(environ: Mapping[str, str]) -> str:
    """$XDG_STATE_HOME when it is an absolute path (the spec: a relative one is ignored), else
    ~/.local/state."""
    value = environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(value):
        return value
    home = environ.get("HOME", "")
    return os.path.join(home if os.path.isabs(home) else os.path.expanduser("~"), ".local", "state")


class Paths(NamedTuple):  # not a dataclass: the first answers read it before dataclasses load
    runtime_dir: str  # the socket, start lock, start log (0700)
    socket: str
    state_dir: str  # profiles.json (non-secret)
    log_dir: str

    @classmethod
    def default(cls) -> Paths:
        socket = wire.socket_path()
        return cls(
            runtime_dir=os.path.dirname(socket),
            socket=socket,
            state_dir=os.environ.get("KUBETRAY_STATE_DIR") or user_state_dir(),
            log_dir=os.environ.get("KUBETRAY_LOG_DIR") or user_log_dir(),
        )

    @property
    def registry(self) -> str:
        return os.path.join(self.state_dir, "profiles.json")

    @property
    def request_index(self) -> str:
        """Which profile each (secret-free) request maps to (broker/store/request_index.py)."""
        return os.path.join(self.state_dir, "requests.json")

    @property
    def remote_policy(self) -> str:
        """The local-only profile keys (broker/store/local_only.py)."""
        return os.path.join(self.state_dir, "remote.json")

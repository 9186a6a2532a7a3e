"""Where kubetray keeps things, per user (platformdirs), overridable for tests and odd setups."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import platformdirs

from shim import wire


def _user_dir(which: Callable[..., str]) -> str:
    # appauthor=False: %LOCALAPPDATA%\kubetray\… on Windows, not kubetray\kubetray (no effect elsewhere)
    return which(wire.APP_NAME, appauthor=False)


@dataclass(frozen=True)
class Paths:
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
            state_dir=os.environ.get("KUBETRAY_STATE_DIR") or _user_dir(platformdirs.user_state_dir),
            log_dir=os.environ.get("KUBETRAY_LOG_DIR") or _user_dir(platformdirs.user_log_dir),
        )

    @property
    def registry(self) -> str:
        return os.path.join(self.state_dir, "profiles.json")

    @property
    def remote_policy(self) -> str:
        """The local-only profile keys (broker/store/local_only.py)."""
        return os.path.join(self.state_dir, "remote.json")

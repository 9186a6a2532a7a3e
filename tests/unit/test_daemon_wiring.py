"""The daemon's wiring goes through the per-OS transport selector, and its sources may load after it answers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from broker import app
from broker.core.deferred import DeferredSource
from broker.core.errors import KubetrayError, StoreUnavailable
from broker.core.model import RequestContext
from broker.ipc.handler import Handler
from broker.ipc.server import Limits
from broker.process.paths import Paths
from tests.support.fakes import FakeClock, FakeSource, profile


class RecordingTransport:
    """A Transport that records what the wiring asks of it and serves nothing."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.handler: Handler | None = None

    def endpoint(self, socket_path: str) -> str:
        self.calls.append(("endpoint", socket_path))
        return "fake:" + socket_path

    def prepare(self, runtime_dir: str) -> None:
        self.calls.append(("prepare", runtime_dir))

    def listen(self, endpoint: str) -> None:
        self.calls.append(("listen", endpoint))

    def bind(self, endpoint: str, handler: Handler, limits: Limits, *, listener: Any = None,
             adopted: Any = ()) -> Any:
        self.calls.append(("bind", endpoint))
        self.handler = handler
        return self

    def start(self) -> None:
        self.calls.append(("start", ""))

    def stop(self) -> None:
        self.calls.append(("stop", ""))


def _paths(tmp_path: Path) -> Paths:
    return Paths(runtime_dir=str(tmp_path / "run"), socket=str(tmp_path / "run" / "kubetray.sock"),
                 state_dir=str(tmp_path / "state"), log_dir=str(tmp_path / "log"))


def test_build_daemon_prepares_and_binds_through_the_transport(tmp_path: Path) -> None:
    transport = RecordingTransport()
    paths = _paths(tmp_path)
    daemon = app.build_daemon(paths, store=None, source=FakeSource(FakeClock()), clock=FakeClock(),
                              transport=transport)
    daemon.start()
    daemon.stop()
    assert transport.calls == [("prepare", paths.runtime_dir), ("endpoint", paths.socket),
                               ("listen", "fake:" + paths.socket), ("bind", "fake:" + paths.socket),
                               ("start", ""), ("stop", "")]
    assert transport.handler is not None


def test_the_deferred_source_delegates_once_loaded() -> None:
    clock = FakeClock()
    real = FakeSource(clock)
    real.signed_in = True
    gate = threading.Event()

    def load() -> FakeSource:
        gate.wait(10)
        return real

    deferred = DeferredSource(load).start()
    assert not deferred.wait(0.01)  # still loading: callers wait
    gate.set()
    assert deferred.wait(10) and deferred.error is None
    token = deferred.acquire_silent(profile(), RequestContext(), force_refresh=True)
    assert token.access_token == "tok-1" and real.silent_calls == [True]


@pytest.mark.parametrize(("raised", "message"), [
    (StoreUnavailable("No OS keyring is available; install gnome-keyring"), "No OS keyring is available"),
    (RuntimeError("boom"), "could not load its sign-in sources (RuntimeError: boom)"),
])
def test_a_loader_failure_reaches_every_caller_and_the_daemon_once(raised: Exception, message: str) -> None:
    told: list[KubetrayError] = []

    def load() -> FakeSource:
        raise raised

    deferred = DeferredSource(load, on_error=told.append).start()
    assert deferred.wait(10)
    for _ in range(2):
        with pytest.raises(KubetrayError, match=message.replace("(", r"\(").replace(")", r"\)")):
            deferred.sign_out(profile())
    assert deferred.error is not None and [e.message for e in told] == [deferred.error.message]


def test_kubetray_run_refuses_a_transport_that_cannot_run_here_in_one_line(tmp_path: Path) -> None:
    other = "pipe" if sys.platform != "win32" else "unix"
    env = {**os.environ, "KUBETRAY_TRANSPORT": other, "KUBETRAY_RUNTIME_DIR": str(tmp_path / "run"),
           "KUBETRAY_STATE_DIR": str(tmp_path / "state"), "KUBETRAY_LOG_DIR": str(tmp_path / "log")}
    out = subprocess.run([sys.executable, "-m", "broker", "run", "--headless"], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and f"the {other} transport cannot run here" in out.stderr

"""The broker in-process on its headless build (broker.app.build_headless), with a clock the test moves.

``Headless`` wires the real pieces a kubectl call goes through — the IPC server on a real Unix socket,
the handler, TokenService, the MSAL sources — to the Entra-shaped test authority, and gives both the
same ``FakeClock``: tokens are minted with ``exp`` on that clock and the broker judges expiry, refresh
margins and backoff by it, so a token "expires" when the test calls ``advance()``. Nothing refreshes
by itself: ``advance()`` moves the clock and runs one scheduler pass, as the refresh thread would when
it woke up, then waits for the flights it started. The keyring is an in-memory store.

Only time is faked. HTTP (TLS to the authority), MSAL, the socket protocol and the service's threads
are the real ones; what this cannot cover (kubectl, the shim process, the real keyring, the real
refresh thread sleeping) is left to one short real-time smoke in tests/e2e.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import requests

from broker.app import Daemon, build_headless
from broker.ipc import unix
from broker.ipc.server import Limits
from broker.process.paths import Paths
from tests.support.authority import EntraAuthority
from tests.support.fakes import FakeClock, MemoryStore
from tests.support.rig import CLIENT_ID, SERVER_ID
from tests.support.tls import TestCA

EXEC_INFO_V1 = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1",
                           "spec": {"interactive": False}})


class CaSession:
    """MSAL's ``http_client``: requests, trusting only the test CA and ignoring proxy/CA variables."""

    def __init__(self, bundle: str) -> None:
        self._session = requests.Session()
        self._session.trust_env = False
        self._bundle = bundle

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", (10, 30))
        return self._session.get(url, params=params, headers=headers, verify=self._bundle, **kwargs)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None,
             **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", (10, 30))
        return self._session.post(url, params=params, data=data, headers=headers, verify=self._bundle, **kwargs)

    def close(self) -> None:
        self._session.close()


class _TrackedSubmit:
    """Wraps the service's executor so a test can wait for every flight it started."""

    def __init__(self, submit: Any) -> None:
        self._submit = submit
        self._lock = threading.Lock()
        self._futures: list[Future[Any]] = []

    def __call__(self, fn: Any) -> Any:
        future = self._submit(fn)
        with self._lock:
            self._futures.append(future)
        return future

    def settle(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
                self._futures = pending
            if not pending:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(pending)} flights still running after {timeout} s")
            pending[0].result(timeout=left)


class Headless:
    """One in-process broker + test authority sharing a fake clock. Always ``close()`` it."""

    def __init__(self, root: Path, ca: TestCA, *, lifetime: int = 3600, start: bool = True,
                 limits: Limits | None = None) -> None:
        self.root = root
        self.limits = limits
        for name in ("run", "state", "log"):
            (root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        # Start at the real time so iat/nbf look like any token's; from here on only advance() moves it.
        self.clock = FakeClock(time.time())
        self.authority = EntraAuthority(ca, root / "authority", clock=self.clock.now, access_token_lifetime=lifetime,
                                        auto_approve_device_after=0.0).start()
        self.ca_bundle = str(ca.bundle(root / "tls"))
        self.store = MemoryStore()
        self.paths = Paths(runtime_dir=str(root / "run"), socket=str(root / "run" / "kubetray.sock"),
                           state_dir=str(root / "state"), log_dir=str(root / "log"))
        self.daemon = self._build()
        if start:
            self.daemon.start(refresh_thread=False)

    def _build(self) -> Daemon:
        daemon = build_headless(
            self.paths, clock=self.clock, store=self.store, listener=unix.listen(self.paths.socket),
            http=lambda _network: CaSession(self.ca_bundle), can_open_browser=lambda: False, limits=self.limits,
        )
        self._submit = _TrackedSubmit(daemon.service.submit)
        daemon.service.submit = self._submit
        return daemon

    def restart(self) -> None:
        """A new daemon on the same keyring, state directory and clock (what a crash and a kubectl later do)."""
        self.daemon.stop()
        self.daemon = self._build()
        self.daemon.start(refresh_thread=False)

    # -- driving --------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move both clocks, run one scheduler pass (what the refresh thread does on waking), settle."""
        self.clock.advance(seconds)
        self.daemon.scheduler.tick()
        self.settle()

    def settle(self) -> None:
        """Wait until no flight (refresh or sign-in) is running."""
        self._submit.settle()

    def argv(self, login: str = "devicecode", *extra: str) -> list[str]:
        return ["get-token", "--login", login, "--server-id", SERVER_ID, "--client-id", CLIENT_ID,
                "--tenant-id", self.authority.tenant_id, "--authority-host", self.authority.url + "/",
                "--disable-instance-discovery", *extra]

    def ask(self, request: dict[str, Any], timeout: float = 60.0) -> list[dict[str, Any]]:
        """One request over the daemon's socket, as a shim sends it; every reply line, decoded."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.paths.socket)
            s.sendall(json.dumps({"v": 1, **request}).encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            raw = b"".join(iter(lambda: s.recv(65536), b""))
        return [json.loads(line) for line in raw.splitlines()]

    def exec(self, login: str = "devicecode", *extra: str, interactive: bool = False,
             argv: list[str] | None = None, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """What kubectl's call through the shim asks: an ExecCredential (replies, decoded). ``argv``
        replaces the Azure-kubelogin arguments (e.g. int128/kubelogin's); ``env`` is kubectl's
        environment as the shim forwards it."""
        info = json.loads(EXEC_INFO_V1)
        info["spec"]["interactive"] = interactive
        return self.ask({"op": "exec", "argv": argv or self.argv(login, *extra), "exec_info": json.dumps(info),
                         "env": env or {}, "cwd": str(self.root), "stdin_tty": interactive})

    def status(self) -> dict[str, Any]:
        return self.ask({"op": "status"})[0]

    def close(self) -> None:
        self.daemon.stop()
        self.authority.stop()


def credential(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The ExecCredential among the replies; fails with every reply when there is none."""
    found = [r["body"] for r in replies if r.get("type") == "credential"]
    assert found, replies
    body: dict[str, Any] = found[0]
    assert body["kind"] == "ExecCredential"
    return body

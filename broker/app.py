"""Wiring: the one place where adapters are constructed.

Two constructors at the process edge, as int128/kubelogin's ``NewCmd`` / ``NewCmdForHeadless``:
``build_daemon`` is the real broker (system clock, the OS keyring, every login mode, the Unix socket);
``build_headless`` assembles the same Daemon from parts a test passes in (a fake clock, an in-memory
store, an HTTP client that trusts a test authority, a listening socket) and starts no tray. The
other builders here (``build_store``, ``build_autostart``, ``serve_tray``, ``keyring_report``) are
what the CLI, the demo and ``run`` use instead of constructing adapters themselves.

``run`` is what ``kubetray run`` does: single-instance checks, the keyring check, then serve until told
to stop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broker import __version__
from broker.core.clock import SystemClock
from broker.core.errors import KubetrayError
from broker.core.policy import Policy
from broker.core.ports import Clock, SecretStore, TokenSource
from broker.core.remote import RemoteGate
from broker.core.scheduler import RefreshScheduler
from broker.core.service import TokenService
from broker.ipc import instance, origin, unix
from broker.ipc.handler import Handler
from broker.ipc.server import IpcServer, Limits
from broker.process import network
from broker.process.paths import Paths
from broker.store.local_only import JsonLocalOnlyStore
from broker.store.profile_registry import JsonProfileRegistry

if TYPE_CHECKING:
    from broker.core.autostart import Autostart
    from broker.store.keyring_store import KeyringSecretStore

log = logging.getLogger(__name__)

HttpClientFactory = Callable[[Any], Any]
"""Makes the requests-compatible session MSAL talks through from a profile's Network (tests: one that
trusts the test CA)."""


@dataclass
class Daemon:
    """A running broker: service, refresh scheduler and IPC server. ``stop()`` ends all three."""

    paths: Paths
    service: TokenService
    scheduler: RefreshScheduler
    server: IpcServer
    executor: ThreadPoolExecutor
    stopping: threading.Event
    lock: instance.InstanceLock | None = None
    info: dict[str, object] = field(default_factory=dict)  # shown by `kubetray status`
    remote: RemoteGate | None = None  # recent remote use and local-only profiles (status, tray)
    _socket_ino: int = field(default=0, init=False)

    def start(self, *, refresh_thread: bool = True) -> None:
        """Serve. Without ``refresh_thread`` nothing refreshes by itself: a test moving a fake clock
        calls ``scheduler.tick()`` where the thread would have woken up."""
        self._socket_ino = os.stat(self.paths.socket).st_ino
        self.service.restore()
        if refresh_thread:
            self.scheduler.start()
        self.server.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.stop()
        self.scheduler.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        try:  # remove the socket only if it is still ours (a newer daemon may have replaced it)
            if os.stat(self.paths.socket).st_ino == self._socket_ino:
                os.unlink(self.paths.socket)
        except OSError:
            pass
        if self.lock is not None:
            self.lock.release()


# -- the two constructors ------------------------------------------------------------------------------


def build_daemon(
    paths: Paths,
    *,
    store: SecretStore,
    keyring_name: str,
    lock: instance.InstanceLock | None = None,
) -> Daemon:
    """The real broker listening at ``paths.socket`` (the caller has checked nobody else is)."""
    unix.secure_runtime_dir(paths.runtime_dir)
    return build_headless(
        paths, clock=SystemClock(), store=store, keyring_name=keyring_name, listener=unix.listen(paths.socket),
        lock=lock, os_broker_default=os.environ.get("KUBETRAY_OS_BROKER") == "1",
    )


def build_headless(
    paths: Paths,
    *,
    clock: Clock,
    store: SecretStore,
    listener: socket.socket,
    http: HttpClientFactory | None = None,
    can_open_browser: Callable[[], bool] | None = None,
    source: TokenSource | None = None,
    policy: Policy | None = None,
    limits: Limits | None = None,
    keyring_name: str = "",
    lock: instance.InstanceLock | None = None,
    os_broker_default: bool = False,
) -> Daemon:
    """The broker from injected parts, without a tray: what tests build in-process.

    ``clock`` drives expiry, refresh margins and backoff (a fake one makes tokens "expire" when the test
    moves it); ``http`` and ``can_open_browser`` reach every login mode's source; ``source`` replaces
    the sources altogether. ``listener`` is a listening Unix socket at ``paths.socket``.
    """
    stopping = threading.Event()
    if source is None:
        from broker.sources.router import build_router

        source = build_router(store, clock, stopping=stopping, os_broker_default=os_broker_default,
                              http_client_factory=http, can_open_browser=can_open_browser)
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kubetray-flight")
    service = TokenService(
        source=source, clock=clock, submit=executor.submit,
        registry=JsonProfileRegistry(paths.registry), policy=policy or Policy(),
    )
    scheduler = RefreshScheduler(service, clock)
    service.on_change = scheduler.poke

    # "tray" is present from the start, so the IPC thread never sees the dict change size.
    info: dict[str, object] = {"socket": paths.socket, "keyring": keyring_name or store.describe(),
                               "log_dir": paths.log_dir, "tray": "headless", "network": network.defaults(os.environ)}
    remote = RemoteGate(clock, JsonLocalOnlyStore(paths.remote_policy))
    handler = Handler(service=service, version=__version__, info=info, on_shutdown=stopping.set, remote=remote)
    server = IpcServer(listener, handler, unix.peer_is_owner, limits or Limits(), identify=origin.identify)
    return Daemon(paths, service, scheduler, server, executor, stopping, lock, info, remote=remote)


# -- the other adapters, for run, the CLI and the demo ---------------------------------------------------


def build_store(*, check: bool = True) -> KeyringSecretStore:
    """The OS keyring as a SecretStore; ``check`` proves it usable first (StoreUnavailable if not)."""
    from broker.store import keyring_store

    backend = keyring_store.default_backend()
    if check:
        keyring_store.check_usable(backend)
    # KUBETRAY_KEYRING_CHUNK_SIZE forces small chunks (tests; backends with an unknown item limit).
    chunk = os.environ.get("KUBETRAY_KEYRING_CHUNK_SIZE", "")
    return keyring_store.KeyringSecretStore(backend, chunk_size=int(chunk) if chunk.isdigit() else None)


def keyring_report() -> str:
    """For `kubetray doctor`: the usable keyring's name; raises StoreUnavailable saying what to fix."""
    return build_store(check=True).describe()


def build_autostart() -> Autostart:
    """Start-at-login for this OS (or $KUBETRAY_AUTOSTART_BACKEND); raises AutostartError where it
    cannot be managed."""
    from broker import autostart

    return autostart.backend()


def serve_tray(daemon: Daemon, store_name: str) -> None:
    """Show the tray on this (the main) thread until the daemon stops; headless when there is no tray."""
    from dataclasses import replace

    from broker.core.autostart import AutostartError
    from broker.kubeconfig.contexts import contexts_by_profile
    from broker.tray.launch import serve
    from broker.tray.presenter import TrayInfo

    tray_info = TrayInfo(__version__, store_name, daemon.paths.socket, daemon.paths.log_dir)
    autostart: Autostart | None
    try:
        autostart = build_autostart()
    except AutostartError as exc:
        log.info("start at login cannot be managed here: %s", exc)
        autostart, tray_info = None, replace(tray_info, autostart_note="unavailable here")
    info = daemon.info  # the tray's state, for `kubetray status`
    serve(daemon, tray_info, report=lambda text: info.__setitem__("tray", text), autostart=autostart,
          contexts=contexts_by_profile)  # returns when daemon.stopping is set


# -- kubetray run ----------------------------------------------------------------------------------------


def run(*, detach: bool = False, foreground_log: bool = False, headless: bool = False) -> int:
    """``kubetray run``: serve until SIGTERM, SIGINT or a shutdown request. Returns the exit status.

    With a display (and not ``headless``) the tray owns the main thread while serving.
    """
    from broker.process import hardening, logsetup

    paths = Paths.default()
    logsetup.configure(paths.log_dir)
    hardening.harden_process()
    hardening.raise_fd_limit()
    try:
        unix.secure_runtime_dir(paths.runtime_dir)
    except KubetrayError as exc:
        return _refuse(exc.message)
    try:
        running = instance.probe(paths.socket)
    except instance.ForeignPeer as exc:
        return _refuse(f"refusing to use the broker socket: {exc}")
    if running:
        print(f"kubetray is already running (pid {running.get('pid')}, socket {paths.socket})")
        return 0
    lock = instance.InstanceLock(paths.runtime_dir)
    if not lock.try_acquire():
        return _refuse("another kubetray daemon is starting; run `kubetray status` in a moment")
    try:
        store = build_store()
        daemon = build_daemon(paths, store=store, keyring_name=store.describe(), lock=lock)
    except KubetrayError as exc:
        lock.release()
        return _refuse(exc.message)
    daemon.start()
    log.info("kubetray %s serving on %s (keyring: %s)", __version__, paths.socket, store.describe())
    if detach:
        _detach_stdio()
    else:
        if foreground_log:
            logsetup.log_to_stderr()
        print(f"kubetray {__version__} serving on {paths.socket}; Ctrl-C stops it", flush=True)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: daemon.stopping.set())
    if headless:
        while not daemon.stopping.wait(1.0):
            pass
    else:
        serve_tray(daemon, store.describe())
    log.info("stopping")
    daemon.stop()
    return 0


def _refuse(message: str) -> int:
    log.error("not starting: %s", message)
    print(f"kubetray: {message}", file=sys.stderr, flush=True)
    return 2


def _detach_stdio() -> None:
    """Started by a shim: stop writing to the start log it reads, and never hold kubectl's pipes."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)

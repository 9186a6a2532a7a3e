"""Wiring: the one place where real adapters are constructed.

``build_daemon`` assembles a Daemon from parts (tests pass a fake clock or store); ``run`` is what
``kubetray run`` does: single-instance checks, the keyring check, then serve until told to stop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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

log = logging.getLogger(__name__)


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

    def start(self) -> None:
        self._socket_ino = os.stat(self.paths.socket).st_ino
        self.service.restore()
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


def build_daemon(
    paths: Paths,
    *,
    store: SecretStore,
    keyring_name: str,
    clock: Clock | None = None,
    source: TokenSource | None = None,
    policy: Policy | None = None,
    limits: Limits | None = None,
    lock: instance.InstanceLock | None = None,
) -> Daemon:
    """Assemble a daemon listening at ``paths.socket`` (the caller has checked nobody else is)."""
    clock = clock or SystemClock()
    stopping = threading.Event()
    if source is None:
        from broker.sources.router import build_router

        source = build_router(store, clock, stopping=stopping,
                              os_broker_default=os.environ.get("KUBETRAY_OS_BROKER") == "1")
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kubetray-flight")
    service = TokenService(
        source=source, clock=clock, submit=executor.submit,
        registry=JsonProfileRegistry(paths.registry), policy=policy or Policy(),
    )
    scheduler = RefreshScheduler(service, clock)
    service.on_change = scheduler.poke
    unix.secure_runtime_dir(paths.runtime_dir)
    listener = unix.listen(paths.socket)

    # "tray" is present from the start, so the IPC thread never sees the dict change size.
    info: dict[str, object] = {"socket": paths.socket, "keyring": keyring_name, "log_dir": paths.log_dir,
                               "tray": "headless", "network": network.defaults(os.environ)}
    remote = RemoteGate(clock, JsonLocalOnlyStore(paths.remote_policy))
    handler = Handler(
        service=service, version=__version__, info=info,
        on_shutdown=stopping.set, remote=remote,
    )
    server = IpcServer(listener, handler, unix.peer_is_owner, limits or Limits(), identify=origin.identify)
    return Daemon(paths, service, scheduler, server, executor, stopping, lock, info, remote=remote)


def run(*, detach: bool = False, foreground_log: bool = False, headless: bool = False) -> int:
    """``kubetray run``: serve until SIGTERM, SIGINT or a shutdown request. Returns the exit status.

    With a display (and not ``headless``) the tray owns the main thread while serving.
    """
    from broker.process import hardening, logsetup
    from broker.store import keyring_store

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
        backend = keyring_store.default_backend()
        keyring_store.check_usable(backend)
        # KUBETRAY_KEYRING_CHUNK_SIZE forces small chunks (tests; backends with an unknown item limit).
        chunk = os.environ.get("KUBETRAY_KEYRING_CHUNK_SIZE", "")
        store = keyring_store.KeyringSecretStore(backend, chunk_size=int(chunk) if chunk.isdigit() else None)
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
        from broker.kubeconfig.contexts import contexts_by_profile
        from broker.tray.launch import serve
        from broker.tray.presenter import TrayInfo

        info = daemon.info  # the tray's state, for `kubetray status`
        serve(daemon, TrayInfo(__version__, store.describe(), paths.socket, paths.log_dir),
              report=lambda text: info.__setitem__("tray", text),
              contexts=contexts_by_profile)  # returns when daemon.stopping is set
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

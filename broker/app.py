"""Wiring: the one place where real adapters are constructed.

``build_daemon`` assembles a Daemon from parts (tests pass a fake clock or store); ``open_keyring_store``
opens the OS keyring the daemon keeps its tokens in. ``kubetray run`` itself (single instance, signals,
what loads before the endpoint answers) is broker/process/daemon.py.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from broker import __version__
from broker.core.clock import SystemClock
from broker.core.deferred import DeferredSource
from broker.core.errors import KubetrayError
from broker.core.policy import Policy
from broker.core.ports import Clock, SecretStore, TokenSource
from broker.core.scheduler import RefreshScheduler
from broker.core.service import TokenService
from broker.ipc import instance
from broker.ipc import transport as transports
from broker.ipc.handler import Handler
from broker.ipc.server import Limits
from broker.process import network
from broker.process.paths import Paths
from broker.store.profile_registry import JsonProfileRegistry

log = logging.getLogger(__name__)

# After the sign-in sources failed to load: how long the daemon keeps answering (each request with the
# reason) before it stops, so that the kubectl calls already waiting learn why.
REFUSAL_GRACE = 1.0


@dataclass
class Daemon:
    """A running broker: service, refresh scheduler and IPC server. ``stop()`` ends all three."""

    paths: Paths
    service: TokenService
    scheduler: RefreshScheduler
    server: transports.Server
    executor: ThreadPoolExecutor
    stopping: threading.Event
    lock: instance.InstanceLock | None = None
    info: dict[str, object] = field(default_factory=dict)  # shown by `kubetray status`
    loading: DeferredSource | None = None  # set when the sources load after the endpoint answers

    def start(self) -> None:
        self.service.restore()
        self.scheduler.start()
        self.server.start()
        if self.loading is not None:  # the endpoint answers first; requests wait for the sources
            self.loading.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.stop()  # removes the socket file if it is still ours
        self.scheduler.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.lock is not None:
            self.lock.release()


def open_keyring_store() -> SecretStore:
    """The OS keyring, checked usable now (StoreUnavailable with the fix if not)."""
    from broker.store import keyring_store

    backend = keyring_store.default_backend()
    keyring_store.check_usable(backend)
    # KUBETRAY_KEYRING_CHUNK_SIZE forces small chunks (tests; backends with an unknown item limit).
    chunk = os.environ.get("KUBETRAY_KEYRING_CHUNK_SIZE", "")
    return keyring_store.KeyringSecretStore(backend, chunk_size=int(chunk) if chunk.isdigit() else None)


def build_daemon(
    paths: Paths,
    *,
    store: SecretStore | None = None,
    open_store: Callable[[], SecretStore] | None = None,
    keyring_name: str = "",
    clock: Clock | None = None,
    source: TokenSource | None = None,
    policy: Policy | None = None,
    limits: Limits | None = None,
    lock: instance.InstanceLock | None = None,
    transport: transports.Transport | None = None,
) -> Daemon:
    """Assemble a daemon listening on this platform's endpoint for ``paths.socket`` (the caller has
    checked nobody else serves it).

    Give ``store`` to build the sign-in sources now, or ``open_store`` to build them (and open the keyring)
    in a thread after the endpoint answers: requests wait for them, and if they cannot load, every waiting
    request gets the reason and the daemon stops (``Daemon.loading.error``).
    """
    clock = clock or SystemClock()
    stopping = threading.Event()
    transport = transport or transports.select()
    # "tray" is present from the start, so the IPC thread never sees the dict change size.
    info: dict[str, object] = {"socket": paths.socket, "keyring": keyring_name or "opening",
                               "log_dir": paths.log_dir, "tray": "headless", "network": network.defaults(os.environ)}
    loading: DeferredSource | None = None
    if source is None:
        def make_source() -> TokenSource:
            if store is None and open_store is None:
                raise KubetrayError("build_daemon needs a store or open_store")
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubetray-keyring") as pool:
                # The keyring probe waits on D-Bus / the Keychain / Credential Manager, importing msal
                # keeps the interpreter busy: side by side, the first request waits for the longer alone.
                opening = pool.submit(open_store) if store is None and open_store is not None else None
                from broker.sources import _msal, _oidc  # noqa: F401  (msal, requests: while the probe waits)
                from broker.sources.router import build_router

                opened = store if opening is None else opening.result()
            assert opened is not None
            info["keyring"] = keyring_name or opened.describe()
            return build_router(opened, clock, stopping=stopping,
                                os_broker_default=os.environ.get("KUBETRAY_OS_BROKER") == "1")

        if open_store is None:
            source = make_source()
        else:
            def failed(exc: KubetrayError) -> None:
                # Shims already connected are waiting for this: their requests now fail at once with the
                # reason. Stop a moment later, so those replies are written before the endpoint closes.
                log.error("not serving: %s", exc.message)
                timer = threading.Timer(REFUSAL_GRACE, stopping.set)
                timer.daemon = True
                timer.start()

            source = loading = DeferredSource(make_source, on_error=failed)
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kubetray-flight")
    service = TokenService(
        source=source, clock=clock, submit=executor.submit,
        registry=JsonProfileRegistry(paths.registry), policy=policy or Policy(),
    )
    scheduler = RefreshScheduler(service, clock)
    service.on_change = scheduler.poke
    transport.prepare(paths.runtime_dir)
    handler = Handler(
        service=service, version=__version__, info=info,
        on_shutdown=stopping.set,
    )
    server = transport.bind(transport.endpoint(paths.socket), handler, limits or Limits())
    return Daemon(paths, service, scheduler, server, executor, stopping, lock, info, loading)

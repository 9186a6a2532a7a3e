"""Wiring: the one place where adapters are constructed.

Two constructors at the process edge, as int128/kubelogin's ``NewCmd`` / ``NewCmdForHeadless``:
``build_daemon`` is the real broker (system clock, the OS keyring, every login mode, the Unix socket);
``build_headless`` assembles the same Daemon from parts a test passes in (a fake clock, an in-memory
store, an HTTP client that trusts a test authority, a listening socket) and starts no tray. The
other builders here (``build_store``, ``build_autostart``, ``serve_tray``, ``keyring_report``) are
what the CLI, the demo and ``run`` use instead of constructing adapters themselves.

The real broker answers on its endpoint (chosen by broker/ipc/transport.py ``select``) before its
sign-in sources and keyring have loaded: given ``open_store``, they load in a thread and requests wait
for them. ``kubetray run`` itself (single instance, signals, the order things load in) is
broker/process/daemon.py.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from broker import __version__
from broker.core.errors import KubetrayError
from broker.process.paths import Paths

# Importing this module stays light (what `answer_first` needs): the first kubectl after a restart waits
# for it. Everything else is imported where it is built.
if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from broker.core.autostart import Autostart
    from broker.core.deferred import DeferredSource, DeferredStore
    from broker.core.model import Profile
    from broker.core.policy import Policy
    from broker.core.ports import Clock, SecretStore, TokenSource
    from broker.core.remote import RemoteGate
    from broker.core.scheduler import RefreshScheduler
    from broker.core.service import TokenService
    from broker.ipc import instance
    from broker.ipc import transport as transports
    from broker.ipc.handler import Handler
    from broker.ipc.server import Limits
    from broker.store.keyring_store import KeyringSecretStore
    from broker.store.secret_service import SecretServiceReader

log = logging.getLogger(__name__)

# After the sign-in sources failed to load: how long the daemon keeps answering (each request with the
# reason) before it stops, so that the kubectl calls already waiting learn why.
REFUSAL_GRACE = 1.0

HttpClientFactory = Callable[[Any], Any]
"""Makes the requests-compatible session MSAL talks through from a profile's Network (tests: one that
trusts the test CA)."""


class Daemon:
    """A running broker: service, refresh scheduler and IPC server. ``stop()`` ends all three."""

    def __init__(self, paths: Paths, service: TokenService, scheduler: RefreshScheduler, server: transports.Server,
                 executor: ThreadPoolExecutor, stopping: threading.Event, lock: instance.InstanceLock | None = None,
                 info: dict[str, object] | None = None, loading: DeferredSource | None = None,
                 remote: RemoteGate | None = None) -> None:
        self.paths, self.service, self.scheduler, self.server = paths, service, scheduler, server
        self.executor, self.stopping, self.lock = executor, stopping, lock
        self.info: dict[str, object] = {} if info is None else info  # shown by `kubetray status`
        self.loading = loading  # set when the sources load after the endpoint answers
        self.remote = remote  # recent remote use and local-only profiles (status, tray)

    def start(self, *, refresh_thread: bool = True) -> None:
        """Serve. Without ``refresh_thread`` nothing refreshes by itself: a test moving a fake clock
        calls ``scheduler.tick()`` where the thread would have woken up."""
        if refresh_thread:
            self.scheduler.start()
        self.server.start()
        if self.loading is not None:  # the endpoint answers first; requests wait for the sources
            self.loading.start()

    def stop(self) -> None:
        self.stopping.set()
        self.server.stop()  # and removes the socket file if it is still ours
        self.scheduler.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.lock is not None:
            self.lock.release()


# -- the two constructors ------------------------------------------------------------------------------


def answer_first(paths: Paths, listener: socket.socket, *, first_wait: float) -> list[socket.socket]:
    """``kubetray run``'s first answers (broker/ipc/early.py), before the rest of the daemon is built:
    the callers already waiting whose requests the index knows and whose kept tokens may be served get
    them now; returns the connections left for the full server (pass them to ``build_daemon``). Does
    nothing where the keyring cannot be read without the keyring library (then the vault is read once
    the keyring has opened)."""
    reader = _quick_reader()
    if reader is None:
        return []
    from broker.ipc import early, origin, unix
    from broker.store import token_vault
    from broker.store.profile_registry import JsonProfileRegistry
    from broker.store.request_index import JsonRequestIndex

    def kept(key: str) -> dict[str, Any] | None:
        try:
            text = reader.load(token_vault.entry_name(key))
        except KubetrayError:
            return None
        return token_vault.read_entry(text) if text is not None else None

    registry = JsonProfileRegistry(paths.registry).load()

    def needs_sign_in(key: str) -> bool:
        return any(r.get("key") == key and r.get("needs_sign_in") for r in registry)

    answers = early.FirstAnswers(profile_of=JsonRequestIndex(paths.request_index).lookup, kept=kept,
                                 needs_sign_in=needs_sign_in, peer_ok=unix.peer_is_owner, relay=origin.relay)
    return answers.run(listener, first_wait=first_wait)


def build_daemon(
    paths: Paths,
    *,
    store: SecretStore | None = None,
    open_store: Callable[[], SecretStore] | None = None,
    keyring_name: str = "",
    lock: instance.InstanceLock | None = None,
    transport: transports.Transport | None = None,
    clock: Clock | None = None,
    source: TokenSource | None = None,
    listener: socket.socket | None = None,
    adopted: Sequence[socket.socket] = (),
) -> Daemon:
    """The real broker on this platform's endpoint for ``paths.socket`` (the caller has checked nobody
    else serves it), bound through ``transport`` (default: ``transports.select()``).

    Give ``store`` to build the sign-in sources now, or ``open_store`` to open the keyring and build them
    in a thread once the endpoint answers: requests wait for them, and if they cannot load, every waiting
    request gets the reason and the daemon stops (``Daemon.loading.error``).

    ``listener``: the endpoint, claimed already (``transport.listen``), with ``adopted`` the connections
    ``answer_first`` left for the server.
    """
    from broker.core.clock import SystemClock
    from broker.ipc import transport as transports

    transport = transport or transports.select()
    transport.prepare(paths.runtime_dir)
    endpoint = transport.endpoint(paths.socket)
    if listener is None:
        listener = transport.listen(endpoint)
    reader = _quick_reader() if store is None else None
    return _assemble(
        paths, clock=clock or SystemClock(), store=store, open_store=open_store, keyring_name=keyring_name,
        lock=lock, source=source, os_broker_default=os.environ.get("KUBETRAY_OS_BROKER") == "1",
        bind=lambda handler, limits: transport.bind(endpoint, handler, limits, listener=listener, adopted=adopted),
        vault_reader=reader,
    )


def _quick_reader() -> SecretServiceReader | None:
    """The keyring reader that needs no `keyring` import, where one reads what the store writes here."""
    import sys

    from broker.store import secret_service

    return secret_service.SecretServiceReader() if secret_service.applies(os.environ, sys.platform) else None


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
    from broker.ipc import origin, unix
    from broker.ipc import transport as transports
    from broker.ipc.server import IpcServer

    def bind(handler: Handler, lim: Limits) -> transports.Server:
        return transports.SocketServer(
            IpcServer(listener, handler, unix.peer_is_owner, lim, identify=origin.identify), paths.socket
        )

    return _assemble(paths, clock=clock, store=store, keyring_name=keyring_name, lock=lock, source=source,
                     os_broker_default=os_broker_default, http=http, can_open_browser=can_open_browser,
                     policy=policy, limits=limits, bind=bind)


def _assemble(
    paths: Paths,
    *,
    clock: Clock,
    bind: Callable[[Handler, Limits], transports.Server],
    store: SecretStore | None = None,
    open_store: Callable[[], SecretStore] | None = None,
    keyring_name: str = "",
    lock: instance.InstanceLock | None = None,
    source: TokenSource | None = None,
    os_broker_default: bool = False,
    http: HttpClientFactory | None = None,
    can_open_browser: Callable[[], bool] | None = None,
    policy: Policy | None = None,
    limits: Limits | None = None,
    vault_reader: SecretServiceReader | None = None,
) -> Daemon:
    from concurrent.futures import ThreadPoolExecutor

    from broker.core.deferred import DeferredSource, DeferredStore
    from broker.core.policy import Policy
    from broker.core.remote import RemoteGate
    from broker.core.scheduler import RefreshScheduler
    from broker.core.service import TokenService
    from broker.ipc.handler import Handler
    from broker.ipc.server import Limits
    from broker.process import network
    from broker.store.local_only import JsonLocalOnlyStore
    from broker.store.profile_registry import JsonProfileRegistry
    from broker.store.request_index import JsonRequestIndex
    from broker.store.token_vault import KeyringTokenVault

    stopping = threading.Event()
    # The vault writes through the store the sources get; until that is open, reads go through
    # ``vault_reader`` when there is one (and wait for the store when that cannot tell).
    late_store = DeferredStore()
    vault = KeyringTokenVault(store if store is not None else late_store, vault_reader)
    # "tray" is present from the start, so the IPC thread never sees the dict change size.
    info: dict[str, object] = {"socket": paths.socket, "keyring": keyring_name or "opening",
                               "log_dir": paths.log_dir, "tray": "headless", "network": network.defaults(os.environ)}
    loading: DeferredSource | None = None
    if source is None:
        def make_source() -> TokenSource:
            if store is None and open_store is None:
                raise KubetrayError("the daemon needs a store or open_store")
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kubetray-keyring") as pool:
                # The keyring probe waits on D-Bus / the Keychain / Credential Manager, importing msal
                # keeps the interpreter busy: side by side, the first request waits for the longer alone.
                opening = pool.submit(open_store) if store is None and open_store is not None else None
                if opening is not None:  # the vault may use the keyring while msal is still importing
                    opening.add_done_callback(_provide_to(late_store))
                from broker.sources import _msal, _oidc  # noqa: F401  (msal, requests: while the probe waits)
                from broker.sources.router import build_router

                opened = store if opening is None else opening.result()
            assert opened is not None
            info["keyring"] = keyring_name or opened.describe()
            return build_router(opened, clock, stopping=stopping, os_broker_default=os_broker_default,
                                http_client_factory=http, can_open_browser=can_open_browser)

        if open_store is None:
            source = make_source()
        else:
            def failed(exc: KubetrayError) -> None:
                # Shims already connected are waiting for this: their requests now fail at once with the
                # reason. Stop a moment later, so those replies are written before the endpoint closes.
                log.error("not serving: %s", exc.message)
                late_store.fail(exc)
                timer = threading.Timer(REFUSAL_GRACE, stopping.set)
                timer.daemon = True
                timer.start()

            source = loading = DeferredSource(make_source, on_error=failed)
    elif store is not None:
        info["keyring"] = keyring_name or store.describe()
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="kubetray-flight")
    service = TokenService(
        source=source, clock=clock, submit=executor.submit,
        registry=JsonProfileRegistry(paths.registry), vault=vault, policy=policy or Policy(),
    )
    service.restore()
    remote = RemoteGate(clock, JsonLocalOnlyStore(paths.remote_policy))
    scheduler = RefreshScheduler(service, clock)
    service.on_change = scheduler.poke
    handler = Handler(service=service, version=__version__, info=info, on_shutdown=stopping.set, remote=remote,
                      remember=JsonRequestIndex(paths.request_index).remember)
    server = bind(handler, limits or Limits())
    return Daemon(paths, service, scheduler, server, executor, stopping, lock, info, loading, remote=remote)


def _provide_to(late_store: DeferredStore) -> Callable[[Future[SecretStore]], None]:
    """The opener's callback that hands the keyring to ``late_store`` as soon as it is open."""
    def provide(opened: Future[SecretStore]) -> None:
        if opened.exception() is None:
            late_store.provide(opened.result())

    return provide


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


def forget_at_rest(profile: Profile) -> None:
    """Delete what the keyring keeps for ``profile`` (its sign-in cache and its latest token) without a
    daemon: the demo's clean-up. Raises StoreUnavailable."""
    from broker.store.token_vault import KeyringTokenVault

    store = build_store(check=False)
    store.delete(profile.cache_name)
    KeyringTokenVault(store).forget(profile.key)


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

"""A TokenSource that is still being built: the daemon answers its socket before msal and the keyring load.

The first kubectl after login, reboot or Quit starts the daemon and waits for it. Importing msal, requests
and keyring and probing the keyring take most of that start; none of it is needed to accept the
connection, parse the request and find the profile. ``DeferredSource`` stands in for the real source
from the first moment: the loader runs in its own thread, and every call waits for it (then delegates),
or raises the loader's error, which is a one-line KubetrayError such as "no usable keyring".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from broker.core.errors import KubetrayError
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Progress, SecretStore, TokenSource

log = logging.getLogger(__name__)


class DeferredSource:
    """Delegates to the source ``load`` returns, once it has; ``start()`` runs ``load`` in a thread."""

    def __init__(self, load: Callable[[], TokenSource], *, on_error: Callable[[KubetrayError], None] | None = None,
                 name: str = "kubetray-load") -> None:
        self._load = load
        self._on_error = on_error
        self._done = threading.Event()
        self._source: TokenSource | None = None
        self._error: KubetrayError | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> DeferredSource:
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """True once loading has finished (either way); False if ``timeout`` ran out first."""
        return self._done.wait(timeout)

    @property
    def error(self) -> KubetrayError | None:
        """Why loading failed (None while loading or after success)."""
        return self._error

    def _run(self) -> None:
        try:
            self._source = self._load()
        except KubetrayError as exc:
            self._error = exc
        except Exception as exc:  # an import or construction failure: say so once, keep the cause in the log
            log.exception("the daemon could not load its sign-in sources")
            self._error = KubetrayError(f"kubetray could not load its sign-in sources ({type(exc).__name__}: "
                                           f"{exc}); see the log, reinstall kubetray if it persists")
        finally:
            self._done.set()
        if self._error is not None and self._on_error is not None:
            self._on_error(self._error)

    def _ready(self) -> TokenSource:
        self._done.wait()
        if self._source is None:
            raise self._error or KubetrayError("kubetray's sign-in sources did not load")
        return self._source

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        return self._ready().acquire_silent(profile, context, force_refresh=force_refresh, account_id=account_id)

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self._ready().sign_in(profile, context, progress)

    def sign_out(self, profile: Profile) -> str | None:
        return self._ready().sign_out(profile)


class DeferredStore:
    """A SecretStore that becomes usable when the loader has opened the keyring: every call waits for
    ``provide`` (then delegates) or ``fail`` (then raises its error)."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._store: SecretStore | None = None
        self._error: KubetrayError | None = None

    def provide(self, store: SecretStore) -> None:
        self._store = store
        self._done.set()

    def fail(self, error: KubetrayError) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    def _ready(self) -> SecretStore:
        self._done.wait()
        if self._store is None:
            raise self._error or KubetrayError("the keyring did not open")
        return self._store

    def load(self, name: str) -> str | None:
        return self._ready().load(name)

    def save(self, name: str, value: str) -> None:
        self._ready().save(name, value)

    def delete(self, name: str) -> None:
        self._ready().delete(name)

    def describe(self) -> str:
        return self._store.describe() if self._store is not None else "opening"

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
from broker.core.ports import Progress, TokenSource

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

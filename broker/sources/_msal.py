"""Entra ID sign-in through MSAL's public client: the only module that imports msal.

One MSAL application (and one serialized token cache in the keyring) per authority + client id; the
cache is written back only when MSAL reports a change. Nothing above this module sees an MSAL dict.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msal

from broker.core.errors import KubetrayError, LoginFailed, LoginRequired
from broker.core.model import LOGIN_DEVICECODE, LOGIN_INTERACTIVE, Profile, RequestContext, Token
from broker.core.ports import Clock, Progress, SecretStore
from broker.sources import _errors
from broker.sources._loopback import loopback_receiver
from broker.sources._revocation import ENTRA_NOTE
from broker.sources.catalogue import printable
from broker.sources.http import Network

HttpFactory = Callable[[Network], Any]

log = logging.getLogger(__name__)


BROKER_PLATFORMS = ("win32", "darwin")


def use_os_broker(profile: Profile, *, default: bool, platform: str | None = None) -> bool:
    """Whether an interactive Entra profile signs in through the OS's broker (WAM, Company Portal).

    Opt-in, per profile (``--use-os-broker``) or for every profile (KUBETRAY_OS_BROKER=1); only where
    the OS has one. The broker lets Conditional Access see a compliant device.
    """
    plat = sys.platform if platform is None else platform
    return profile.login == LOGIN_INTERACTIVE and (profile.use_os_broker or default) and plat in BROKER_PLATFORMS


def app_options(profile: Profile, *, os_broker: bool) -> dict[str, Any]:
    """Keyword arguments for PublicClientApplication beyond authority and cache."""
    options: dict[str, Any] = {"instance_discovery": None if profile.instance_discovery else False}
    if os_broker:
        options.update(enable_broker_on_windows=True, enable_broker_on_mac=True)
    return options


@dataclass
class _App:
    """One MSAL application with its cache. ``closed`` is set by sign_out under ``lock``: a call still
    running on it (a refresh racing the logout) then never writes its cache back to the keyring."""

    app: msal.PublicClientApplication
    cache: msal.SerializableTokenCache
    cache_name: str
    lock: threading.Lock
    closed: bool = False


def same_account(hint: str, username: str) -> bool:
    """Whether a signed-in ``username`` is the account a kubeconfig's ``--login-hint`` names."""
    return not hint or hint.strip().lower() == username.strip().lower()


def check_account(profile: Profile, token: Token) -> Token:
    """Never serve a kubeconfig a token of another account than the one its --login-hint names."""
    if not same_account(profile.login_hint, token.account):
        raise LoginFailed(
            f"signed in as {token.account or 'an unnamed account'}, but this kubeconfig asks for "
            f"{profile.login_hint} (--login-hint); sign in again with that account"
        )
    return token


def poll_device_flow(
    app: msal.ClientApplication, flow: dict[str, Any], profile: Profile, clock: Clock, stopping: threading.Event
) -> dict[str, Any]:
    """Poll until the person enters the code, the code expires or the daemon stops (shared by the Entra
    and OIDC sources); errors come back translated."""
    expires_at = float(flow.get("expires_at") or 0)
    with _errors.translating(f"waiting for the device-code sign-in to {profile.authority}", profile.authority):
        result: dict[str, Any] = app.acquire_token_by_device_flow(
            flow, exit_condition=lambda _flow: stopping.is_set() or clock.now() > expires_at
        )
    if result.get("error") == "authorization_pending":
        raise LoginFailed(f"the device code expired before it was used; {_errors.SIGN_IN_HINT}")
    return result


class MsalSource:
    """TokenSource for Entra ID ``interactive`` and ``devicecode`` profiles."""

    def __init__(
        self,
        store: SecretStore,
        clock: Clock,
        *,
        http_client_factory: HttpFactory,
        can_open_browser: Callable[[], bool],
        stopping: threading.Event | None = None,
        os_broker_default: bool = False,
    ) -> None:
        self._store = store
        self._os_broker_default = os_broker_default
        self._clock = clock
        self._http_client_factory = http_client_factory  # one HTTP session per MSAL app
        self._can_open_browser = can_open_browser
        self._stopping = stopping or threading.Event()
        self._apps: dict[tuple[str, str, str, bool, bool, Network], _App] = {}
        self._lock = threading.Lock()

    # -- TokenSource -------------------------------------------------------------------------------
    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        app = self._app(profile, context)
        account = self._account(app, profile, account_id)
        if account is None:
            raise LoginRequired(f"not signed in to {profile.authority} yet; {_errors.SIGN_IN_HINT}")
        started = self._clock.now()
        try:
            with _errors.translating(f"refreshing the token from {profile.authority}", profile.authority):
                result = app.app.acquire_token_silent_with_error(
                    list(profile.scopes), account, force_refresh=force_refresh
                )
        finally:
            self._persist(app)
        if result is None:
            raise LoginRequired(f"no usable token for {profile.authority}; {_errors.SIGN_IN_HINT}")
        return check_account(profile, self._token(result, started, account))

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        app = self._app(profile, context)
        if profile.login == LOGIN_DEVICECODE:
            token = self._device_code(app, profile, progress)
        elif not self._can_open_browser():
            progress("kubetray: no browser can be opened here, so signing in with a device code instead.")
            token = self._device_code(app, profile, progress)
        else:
            token = self._interactive(app, profile, progress)
        return check_account(profile, token)

    def sign_out(self, profile: Profile) -> str | None:
        """Forget every account of this authority + client id, and delete its keyring entry (every chunk):
        an emptied cache would otherwise stay behind in the keyring. Every app on that cache is closed,
        so a refresh or sign-in still running on one keeps what it gets to itself. Entra has no revocation
        endpoint, so the returned note says how to end the sessions centrally."""
        with self._lock:
            apps = [a for a in self._apps.values() if a.cache_name == profile.cache_name]
            for key in [k for k, a in self._apps.items() if a.cache_name == profile.cache_name]:
                del self._apps[key]
        for app in apps:
            with app.lock:
                app.closed = True
                for account in app.app.get_accounts():
                    app.app.remove_account(account)
                app.cache.has_state_changed = False
        self._store.delete(profile.cache_name)
        return ENTRA_NOTE

    # -- flows -------------------------------------------------------------------------------------
    def _interactive(self, app: _App, profile: Profile, progress: Progress) -> Token:
        def before_ui(**_: Any) -> None:
            progress(
                f"kubetray: signing in to tenant {profile.tenant_id} in your browser "
                f"(waiting up to {int(profile.timeout)} s)…"
            )

        started = self._clock.now()
        extra: dict[str, Any] = {}
        if self._broker(profile):  # the broker's window needs a parent; the daemon has none of its own
            extra["parent_window_handle"] = msal.PublicClientApplication.CONSOLE_WINDOW_HANDLE
        try:
            with loopback_receiver(profile.redirect_port, enabled=not self._broker(profile)) as receiver, \
                    _errors.translating(f"signing in to {profile.authority}", profile.authority):
                if receiver is not None:  # MSAL's own listener binds 0.0.0.0 in anything it takes for a container
                    extra.update(auth_code_receiver=receiver, port=receiver.get_port())
                try:
                    result = app.app.acquire_token_interactive(
                        list(profile.scopes),
                        login_hint=profile.login_hint or None,
                        timeout=max(1, int(profile.timeout)),
                        on_before_launching_ui=before_ui,
                        **extra,
                    )
                except RuntimeError as exc:  # msal's BrowserInteractionTimeoutError
                    raise LoginFailed(
                        f"the browser sign-in was not completed within {int(profile.timeout)} s; "
                        f"{_errors.SIGN_IN_HINT}"
                    ) from exc
        finally:
            self._persist(app)
        return self._token(result, started, None, during_sign_in=True)

    def _device_code(self, app: _App, profile: Profile, progress: Progress) -> Token:
        with _errors.translating(f"starting a device-code sign-in to {profile.authority}", profile.authority):
            flow = app.app.initiate_device_flow(scopes=list(profile.scopes))
        if "user_code" not in flow:
            raise _errors.from_result(flow, during_sign_in=True)
        message = flow.get("message") or (
            f"To sign in, use a web browser to open the page {flow.get('verification_uri')} "
            f"and enter the code {flow['user_code']} to authenticate."
        )
        progress(f"kubetray: {printable(str(message))}")  # the provider's words, shown on a terminal
        started = self._clock.now()
        try:
            result = poll_device_flow(app.app, flow, profile, self._clock, self._stopping)
        finally:
            self._persist(app)
        return self._token(result, started, None, during_sign_in=True)

    # -- plumbing ----------------------------------------------------------------------------------
    def _broker(self, profile: Profile) -> bool:
        return use_os_broker(profile, default=self._os_broker_default)

    def _app(self, profile: Profile, context: RequestContext) -> _App:
        """The MSAL app for this profile on its caller's network; apps of one cache share its object."""
        broker = self._broker(profile)
        network = Network.of(context.env)
        key = (profile.cache_name, profile.authority.rstrip("/").lower(), profile.client_id,
               profile.instance_discovery, broker, network)
        with self._lock:
            found = self._apps.get(key)
            if found is not None:
                return found
            sibling = next((a for a in self._apps.values() if a.cache_name == profile.cache_name), None)
            if sibling is not None:
                cache, lock = sibling.cache, sibling.lock
            else:
                cache, lock = msal.SerializableTokenCache(), threading.Lock()
                serialized = self._store.load(profile.cache_name)
                if serialized:
                    try:
                        cache.deserialize(serialized)
                    except ValueError:
                        log.warning("the token cache for %s was unreadable; starting empty", profile.key)
            with _errors.translating(f"discovering {profile.authority}", profile.authority):
                app = msal.PublicClientApplication(
                    profile.client_id,
                    authority=profile.authority,
                    token_cache=cache,
                    http_client=self._http_client_factory(network),
                    **app_options(profile, os_broker=broker),
                )
            found = self._apps[key] = _App(app, cache, profile.cache_name, lock)
            return found

    def _persist(self, app: _App) -> None:
        with app.lock:
            if app.closed:  # signed out while this call ran: what it got goes nowhere
                return
            if not app.cache.has_state_changed:
                return
            try:
                self._store.save(app.cache_name, app.cache.serialize())
            except KubetrayError as exc:  # keep the token in memory; retried on the next change
                log.error("could not write the token cache to the keyring: %s", exc.message)
                return
            app.cache.has_state_changed = False

    @staticmethod
    def _account(app: _App, profile: Profile, account_id: str) -> dict[str, Any] | None:
        """The cached account this profile refreshes: the one its --login-hint names (MSAL matches the
        username), else the one it signed in as before; never a guess among several."""
        accounts: list[dict[str, Any]] = app.app.get_accounts(username=profile.login_hint or None)
        if account_id:
            for account in accounts:
                if account.get("home_account_id") == account_id:
                    return account
        return accounts[0] if len(accounts) == 1 else None

    def _token(
        self,
        result: Mapping[str, Any] | None,
        started: float,
        account: Mapping[str, Any] | None,
        *,
        during_sign_in: bool = False,
    ) -> Token:
        return _errors.token_from_result(result, started, account=account, during_sign_in=during_sign_in)

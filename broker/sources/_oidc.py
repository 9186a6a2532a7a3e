"""Generic OpenID Connect providers (int128/kubelogin's flags) through MSAL's ``oidc_authority``.

kube-apiserver's OIDC authenticator checks the ID token (iss, aud = client id, exp, signature), so
that is what the profile serves unless ``--oidc-use-access-token``. A cache hit in MSAL returns no
id_token: it is read from MSAL's token cache and refreshed when it is about to expire. With a client
secret the app is a confidential client; the secret and password come with the request context.
``--insecure-skip-tls-verify`` is warned about on every sign-in and every refresh.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msal

from broker.core.errors import KubetrayError, LoginFailed, LoginRequired
from broker.core.model import (
    GRANT_AUTHCODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_DEVICE_CODE,
    GRANT_PASSWORD,
    INSECURE_WARNING,
    Profile,
    RequestContext,
    Token,
)
from broker.core.ports import Clock, Progress, SecretStore
from broker.sources import _errors, _revocation
from broker.sources._loopback import LoopbackReceiver, loopback_receiver
from broker.sources._msal import poll_device_flow
from broker.sources._oidc_http import VerifyingSession, trust_for
from broker.sources.catalogue import printable
from broker.sources.http import Network

log = logging.getLogger(__name__)

_ID_TOKEN_MARGIN = 300.0  # like MSAL's access tokens: less than 5 minutes left counts as expired


@dataclass
class _App:
    app: msal.ClientApplication
    cache: msal.SerializableTokenCache
    lock: threading.Lock
    closed: bool = False  # signed out: a call still running on it writes nothing back
    client_secret: str = field(default="", repr=False)  # to authenticate the revocation at logout


def jwt_expiry(token: str) -> float:
    """``exp`` of a JWT, read without verification (only to schedule the refresh)."""
    try:
        payload = token.split(".")[1]
        return float(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0


class OidcSource:
    """TokenSource for ``oidc`` profiles: authcode + PKCE, device code, password, client credentials."""

    def __init__(self, store: SecretStore, clock: Clock, *,
                 can_open_browser: Callable[[], bool], stopping: threading.Event | None = None,
                 session_factory: Callable[[str | bool, Network], Any] = VerifyingSession) -> None:
        self._store, self._clock = store, clock
        self._session_factory = session_factory  # (verify, network) -> MSAL's http_client
        self._can_open_browser = can_open_browser
        self._stopping = stopping or threading.Event()
        self._apps: dict[tuple[str, str, Network], _App] = {}
        self._lock = threading.Lock()

    # -- TokenSource -------------------------------------------------------------------------------
    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        _warn_if_insecure(profile, None)
        if profile.grant_type == GRANT_CLIENT_CREDENTIALS:
            return self._client_credentials(profile, context, force_refresh)
        app = self._app(profile, context)
        account = self._account(app, profile, account_id)
        if account is not None:
            stale = not profile.use_access_token and self._id_token_left(app, profile, account) < _ID_TOKEN_MARGIN
            started = self._clock.now()
            try:
                with _errors.translating(f"refreshing the token from {profile.authority}", profile.authority):
                    result = app.app.acquire_token_silent_with_error(
                        list(profile.scopes), account, force_refresh=force_refresh or stale)
            finally:
                self._persist(profile, app)
            if result and "access_token" in result:
                return self._token(app, profile, result, started, account)
            error = _errors.from_result(result) if result else None
        else:
            error = None
        if profile.grant_type == GRANT_PASSWORD and context.secrets.password:
            return self._password(app, profile, context)  # no person needed: sign in again on our own
        if isinstance(error, LoginRequired) or error is None:
            raise error or LoginRequired(f"not signed in to {profile.authority} yet; {_errors.SIGN_IN_HINT}")
        raise error

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        _warn_if_insecure(profile, progress)
        if profile.grant_type == GRANT_CLIENT_CREDENTIALS:
            return self._client_credentials(profile, context, True)
        app = self._app(profile, context)
        if profile.grant_type == GRANT_PASSWORD:
            return self._password(app, profile, context)
        if profile.grant_type == GRANT_DEVICE_CODE or not self._can_open_browser():
            if profile.grant_type == GRANT_AUTHCODE:
                progress("kubetray: no browser can be opened here, so signing in with a device code instead.")
            return self._device_code(app, profile, progress)
        return self._authcode(app, profile, progress)

    def sign_out(self, profile: Profile) -> str | None:
        """Revoke the profile's refresh tokens at the provider (RFC 7009, when it offers that), then forget
        its accounts and delete its keyring entry whatever the provider said; every app of the profile is
        closed, so a refresh still running on one writes nothing back. Returns how revocation went (None:
        there was nothing to revoke)."""
        with self._lock:
            found = [(k, self._apps.pop(k)) for k in [k for k in self._apps if k[0] == profile.key]]
        tokens: set[str] = set()
        secret, network = "", Network.of({})
        for (_, _fingerprint, app_network), app in found:
            with app.lock:
                app.closed = True
                tokens |= _refresh_tokens(app.cache, profile.client_id)
            secret, network = secret or app.client_secret, app_network
        if not found and profile.grant_type != GRANT_CLIENT_CREDENTIALS:
            # After a restart no app is open: the refresh token is only in the keyring.
            cache = msal.SerializableTokenCache()
            with contextlib.suppress(ValueError, KubetrayError):
                cache.deserialize(self._store.load(profile.cache_name) or "{}")
            tokens |= _refresh_tokens(cache, profile.client_id)
        note = None
        if tokens:
            session = self._session_factory(trust_for(profile, network), network)
            note = _revocation.revoke(session, profile.authority, profile.client_id, secret, sorted(tokens),
                                      timeout=min(30.0, max(5.0, profile.timeout)))
        for _app_key, app in found:
            with app.lock:
                for account in app.app.get_accounts():
                    app.app.remove_account(account)
                app.cache.has_state_changed = False
        if profile.grant_type != GRANT_CLIENT_CREDENTIALS:
            self._store.delete(profile.cache_name)
        return note

    # -- grants ------------------------------------------------------------------------------------
    def _authcode(self, app: _App, profile: Profile, progress: Progress) -> Token:
        progress(f"kubetray: signing in to {profile.authority} in your browser "
                 f"(waiting up to {int(profile.timeout)} s)…")
        started = self._clock.now()
        try:
            with loopback_receiver(profile.redirect_port) as receiver, \
                    _errors.translating(f"signing in to {profile.authority}", profile.authority):
                assert receiver is not None
                try:
                    result = self._browser_flow(app, profile, receiver)
                except RuntimeError as exc:  # msal's BrowserInteractionTimeoutError
                    raise LoginFailed(f"the browser sign-in was not completed within {int(profile.timeout)} s; "
                                      f"{_errors.SIGN_IN_HINT}") from exc
        finally:
            self._persist(profile, app)
        return self._token(app, profile, result, started, None, during_sign_in=True)

    @staticmethod
    def _browser_flow(app: _App, profile: Profile, receiver: LoopbackReceiver) -> dict[str, Any]:
        """Authorization code + PKCE through the browser, the redirect caught by ``receiver``."""
        timeout = max(1, int(profile.timeout))
        if isinstance(app.app, msal.PublicClientApplication):
            # prompt=consent: OIDC providers issue a refresh token for offline_access only with it.
            # With no scopes of its own MSAL asks for "openid" alone (it adds offline_access and
            # profile only to a non-empty list), and then no refresh token comes back: ask for them.
            result: dict[str, Any] = app.app.acquire_token_interactive(
                list(profile.scopes), prompt="consent", timeout=timeout,
                port=receiver.get_port(), auth_code_receiver=receiver,
                extra_scopes_to_consent=None if profile.scopes else ["offline_access", "profile"])
            return result
        # A confidential client: the same loopback flow, driven by hand with the client secret.
        flow = app.app.initiate_auth_code_flow(
            list(profile.scopes), redirect_uri=f"http://localhost:{receiver.get_port()}",
            prompt="consent", response_mode="form_post")
        response = receiver.get_auth_response(auth_uri=flow["auth_uri"], state=flow["state"], timeout=timeout)
        if not response:
            raise RuntimeError("timeout")
        result = app.app.acquire_token_by_auth_code_flow(flow, response)
        return result

    def _device_code(self, app: _App, profile: Profile, progress: Progress) -> Token:
        if not isinstance(app.app, msal.PublicClientApplication):
            raise LoginFailed("the device-code grant with a client secret is not supported; "
                              "use --grant-type authcode")
        with _errors.translating(f"starting a device-code sign-in to {profile.authority}", profile.authority):
            flow = app.app.initiate_device_flow(scopes=list(profile.scopes))
        if "user_code" not in flow:
            raise _errors.from_result(flow, during_sign_in=True)
        # Entra's "message" does not exist elsewhere: build the prompt from the RFC 8628 fields.
        uri = printable(str(flow.get("verification_uri_complete") or flow.get("verification_uri")))
        progress(f"kubetray: to sign in, open {uri} and enter the code {printable(str(flow['user_code']))}")
        started = self._clock.now()
        try:
            result = poll_device_flow(app.app, flow, profile, self._clock, self._stopping)
        finally:
            self._persist(profile, app)
        return self._token(app, profile, result, started, None, during_sign_in=True)

    def _password(self, app: _App, profile: Profile, context: RequestContext) -> Token:
        password = context.secrets.password
        if not password:
            raise LoginRequired("the password of this profile is kept only in the daemon's memory and the daemon "
                                "has restarted; run kubectl again so the kubeconfig supplies it")
        started = self._clock.now()
        try:
            with _errors.translating(f"signing in to {profile.authority} with a password", profile.authority):
                result = app.app.acquire_token_by_username_password(profile.username, password, list(profile.scopes))
        finally:
            self._persist(profile, app)
        return self._token(app, profile, result, started, None, during_sign_in=True)

    def _client_credentials(self, profile: Profile, context: RequestContext, force_refresh: bool) -> Token:
        app = self._app(profile, context)
        assert isinstance(app.app, msal.ConfidentialClientApplication)  # parsing demands a secret
        if force_refresh:
            app.app.remove_tokens_for_client()  # the schedule asks before MSAL's cache would
        started = self._clock.now()
        with _errors.translating(f"getting an app token from {profile.authority}", profile.authority):
            result = app.app.acquire_token_for_client(list(profile.scopes))
        return self._token(app, profile, result, started, None, during_sign_in=True)

    # -- plumbing ----------------------------------------------------------------------------------
    def _token(self, app: _App, profile: Profile, result: dict[str, Any] | None, started: float,
               account: dict[str, Any] | None, *, during_sign_in: bool = False) -> Token:
        token = _errors.token_from_result(result, started, account=account, during_sign_in=during_sign_in,
                                          fallback_account=profile.username)
        token = dataclasses.replace(token, tenant_id="")  # tenants are Entra's notion
        if profile.use_access_token:
            return token
        assert result is not None  # token_from_result raised otherwise
        # kube-apiserver checks the ID token: serve it, with its own expiry, in the access token's place.
        secret = str(result.get("id_token") or "")
        if not secret:
            secret = self._cached_id_token(app, profile, token.home_account_id, token.account)
        if not secret:
            raise _errors.from_result({"error": "no_id_token", "error_description":
                                       "the provider sent no ID token; add --oidc-use-access-token"})
        return dataclasses.replace(token, access_token=secret, expires_on=jwt_expiry(secret))

    def _cached_id_token(self, app: _App, profile: Profile, home: str, username: str = "") -> str:
        if not home:
            found = app.app.get_accounts(username=username or None)
            home = found[0]["home_account_id"] if found else ""
        items = app.cache.search(msal.TokenCache.CredentialType.ID_TOKEN,
                                 query={"client_id": profile.client_id, "home_account_id": home})
        best = max((str(i.get("secret") or "") for i in items), key=jwt_expiry, default="")
        return best

    def _id_token_left(self, app: _App, profile: Profile, account: dict[str, Any]) -> float:
        token = self._cached_id_token(app, profile, str(account.get("home_account_id") or ""))
        return jwt_expiry(token) - self._clock.now() if token else 0.0

    def _account(self, app: _App, profile: Profile, account_id: str) -> dict[str, Any] | None:
        accounts: list[dict[str, Any]] = app.app.get_accounts(username=profile.username or None)
        for account in accounts:
            if account_id and account.get("home_account_id") == account_id:
                return account
        return accounts[0] if accounts else None

    def _app(self, profile: Profile, context: RequestContext) -> _App:
        secret = context.secrets.client_secret
        fingerprint = hashlib.sha256(secret.encode()).hexdigest() if secret else ""
        network = Network.of(context.env)
        key = (profile.key, fingerprint, network)
        with self._lock:
            found = self._apps.get(key)
            if found is not None:
                return found
            cache = msal.SerializableTokenCache()
            if profile.grant_type != GRANT_CLIENT_CREDENTIALS:  # app tokens stay in memory
                serialized = self._store.load(profile.cache_name)
                if serialized:  # unreadable: start empty, the next sign-in rewrites it
                    with contextlib.suppress(ValueError):
                        cache.deserialize(serialized)
            common: dict[str, Any] = {"oidc_authority": profile.authority, "token_cache": cache,
                                      "http_client": self._session_factory(trust_for(profile, network), network)}
            with _errors.translating(f"discovering {profile.authority}", profile.authority):
                app: msal.ClientApplication = (
                    msal.ConfidentialClientApplication(profile.client_id, client_credential=secret, **common)
                    if secret else msal.PublicClientApplication(profile.client_id, **common))
            for old in [k for k in self._apps if k[0] == profile.key]:
                del self._apps[old]
            found = self._apps[key] = _App(app, cache, threading.Lock(), client_secret=secret)
            return found

    def _persist(self, profile: Profile, app: _App) -> None:
        with app.lock:
            if app.closed or not app.cache.has_state_changed or profile.grant_type == GRANT_CLIENT_CREDENTIALS:
                return
            try:
                self._store.save(profile.cache_name, app.cache.serialize())
            except KubetrayError:  # keep the token in memory; retried on the next change
                return
            app.cache.has_state_changed = False


def _refresh_tokens(cache: msal.SerializableTokenCache, client_id: str) -> set[str]:
    """The refresh tokens a token cache holds for ``client_id`` (for revocation; never logged)."""
    items = cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN, query={"client_id": client_id})
    return {str(item.get("secret")) for item in items if item.get("secret")}


def _warn_if_insecure(profile: Profile, progress: Progress | None) -> None:
    """Every sign-in and every refresh of an unverified profile says so: in the log, and to the person
    waiting when there is one."""
    if not profile.insecure_skip_tls_verify:
        return
    log.warning("profile %s: %s", profile.key, INSECURE_WARNING.removeprefix("kubetray: "))
    if progress is not None:
        progress(INSECURE_WARNING)

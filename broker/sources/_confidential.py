"""Entra ID as an application: service principals (``spn``) and workload identity, via MSAL's
confidential client.

No person takes part, so a "sign-in" is just another acquisition. The client secret comes from the
request context (never from the profile); the certificate is read from its file and the
workload identity's assertion is re-read from the projected token file for every token request,
because the platform rotates it. App tokens are kept in MSAL's in-memory cache only: they are cheap
to get again and there is no refresh token worth keeping.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import msal

from broker.core.errors import InvalidArguments, LoginRequired
from broker.core.model import LOGIN_WORKLOAD, Profile, RequestContext, Token
from broker.core.ports import Clock, Progress
from broker.sources import _errors
from broker.sources._credentials import load_client_certificate
from broker.sources.http import Network

log = logging.getLogger(__name__)


class ConfidentialSource:
    """TokenSource for ``spn`` (client secret or certificate) and ``workloadidentity`` profiles."""

    def __init__(self, clock: Clock, *, http_client_factory: Callable[[Network], Any]) -> None:
        self._clock = clock
        self._http_client_factory = http_client_factory
        # One app per profile, credential and network: a new secret from the kubeconfig gets a new app.
        self._apps: dict[tuple[str, str, Network], msal.ConfidentialClientApplication] = {}
        self._lock = threading.Lock()

    # -- TokenSource -------------------------------------------------------------------------------
    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        return self._acquire(profile, context, force_refresh=force_refresh)

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self._acquire(profile, context, force_refresh=True)

    def sign_out(self, profile: Profile) -> None:
        with self._lock:
            for key in [k for k in self._apps if k[0] == profile.key]:
                self._apps.pop(key).remove_tokens_for_client()

    # -- plumbing ----------------------------------------------------------------------------------
    def _acquire(self, profile: Profile, context: RequestContext, *, force_refresh: bool) -> Token:
        app = self._app(profile, context)
        if force_refresh:
            # MSAL serves app tokens from its cache until 5 minutes before expiry; the schedule asks
            # earlier than that on purpose, so drop the cached one and ask the authority.
            app.remove_tokens_for_client()
        started = self._clock.now()
        with _errors.translating(f"getting an app token from {profile.authority}", profile.authority):
            result = app.acquire_token_for_client(list(profile.scopes))
        return _errors.token_from_result(
            result, started, account={"username": f"app {profile.client_id}"}, during_sign_in=True,
            tenant_id=profile.tenant_id,
        )

    def _credential(self, profile: Profile, context: RequestContext) -> tuple[str, Any]:
        """(fingerprint, MSAL client_credential); the fingerprint tells credentials apart, not the secret."""
        if profile.login == LOGIN_WORKLOAD:
            path = profile.federated_token_file

            def assertion() -> str:
                # Raised through MSAL, which calls this for every token request; our error passes through.
                try:
                    with open(path, encoding="utf-8") as f:
                        return f.read().strip()
                except (OSError, UnicodeDecodeError) as exc:
                    reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                    raise InvalidArguments(
                        f"cannot read the federated token file {path}: {reason}; check AZURE_FEDERATED_TOKEN_FILE"
                    ) from exc

            return "workload:" + path, {"client_assertion": assertion}
        secrets = context.secrets
        if profile.client_certificate:
            cert = load_client_certificate(profile.client_certificate, secrets.certificate_password)
            return "cert:" + cert.thumbprint, cert.msal_credential()
        if not secrets.client_secret:
            raise LoginRequired(
                "the client secret of this service principal is kept only in the daemon's memory and the "
                "daemon has restarted; run kubectl again so the kubeconfig supplies it"
            )
        return "secret:" + hashlib.sha256(secrets.client_secret.encode()).hexdigest(), secrets.client_secret

    def _app(self, profile: Profile, context: RequestContext) -> msal.ConfidentialClientApplication:
        fingerprint, credential = self._credential(profile, context)
        network = Network.of(context.env)
        key = (profile.key, fingerprint, network)
        with self._lock:
            app = self._apps.get(key)
            if app is not None:
                return app
            for old in [k for k in self._apps if k[0] == profile.key]:
                del self._apps[old]  # the credential changed: forget the app built on the old one
            with _errors.translating(f"discovering {profile.authority}", profile.authority):
                app = msal.ConfidentialClientApplication(
                    profile.client_id,
                    client_credential=credential,
                    authority=profile.authority,
                    http_client=self._http_client_factory(network),
                    instance_discovery=None if profile.instance_discovery else False,
                )
            self._apps[key] = app
            return app

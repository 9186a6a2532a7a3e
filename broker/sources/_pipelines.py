"""Entra ID from an Azure Pipelines job through a service connection (``azurepipelines``).

What azidentity's AzurePipelinesCredential does, which Azure kubelogin uses: the job asks Azure DevOps
for an OIDC token for the service connection (POST ``$SYSTEM_OIDCREQUESTURI?api-version=7.1&
serviceConnectionId=…`` with the job's ``SYSTEM_ACCESSTOKEN``), then presents it to Entra ID as the
client assertion of a client-credentials request (workload identity federation). Both values are per
job and travel with each request (RequestContext.secrets, memory only); app tokens stay in MSAL's
in-memory cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import msal

from broker.core.errors import AuthError, InvalidArguments, LoginRequired, ProviderUnreachable
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Clock, Progress
from broker.sources import _errors
from broker.sources.http import Network

OIDC_API_VERSION = "7.1"


def fetch_oidc_token(http: Any, request_uri: str, service_connection_id: str, access_token: str,
                     timeout: float = 30.0) -> str:
    """The service connection's OIDC token from Azure DevOps; KubetrayError subclasses on failure."""
    if urlsplit(request_uri).scheme != "https":
        raise InvalidArguments("SYSTEM_OIDCREQUESTURI must be an https:// URL")
    url = (f"{request_uri.rstrip('/')}?api-version={OIDC_API_VERSION}"
           f"&serviceConnectionId={quote(service_connection_id, safe='')}")
    headers = {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json",
               "X-TFS-FedAuthRedirect": "Suppress"}  # an error status, not a sign-in page, when refused
    try:
        response = http.post(url, headers=headers, timeout=timeout)
    except (OSError, ValueError) as exc:
        raise ProviderUnreachable(f"cannot reach Azure DevOps for the service connection's OIDC token "
                                  f"({type(exc).__name__})") from exc
    if response.status_code in (401, 403):
        raise AuthError(f"Azure DevOps refused SYSTEM_ACCESSTOKEN (HTTP {response.status_code}); check that the "
                        "pipeline may use the service connection", error="azurepipelines")
    if response.status_code != 200:
        raise AuthError(f"Azure DevOps answered HTTP {response.status_code} for the service connection's OIDC "
                        f"token; check --azure-pipelines-service-connection-id", error="azurepipelines")
    try:
        token = response.json()["oidcToken"]
    except (ValueError, KeyError, TypeError):
        token = None
    if not isinstance(token, str) or not token:
        raise AuthError("Azure DevOps sent no oidcToken for the service connection", error="azurepipelines")
    return token


class PipelinesSource:
    """TokenSource for ``azurepipelines`` profiles."""

    def __init__(self, clock: Clock, *, http_client_factory: Callable[[Network], Any]) -> None:
        self._clock = clock
        self._http_client_factory = http_client_factory
        self._apps: dict[tuple[str, Network], msal.ConfidentialClientApplication] = {}
        self._jobs: dict[str, tuple[str, str]] = {}  # profile key → the latest job's (request URI, access token)
        self._lock = threading.Lock()

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        secrets = context.secrets
        return self.acquire_with(profile, secrets.oidc_request_uri, secrets.pipeline_access_token,
                                 Network.of(context.env), force_refresh=force_refresh)

    def acquire_with(self, profile: Profile, request_uri: str, access_token: str, network: Network, *,
                     force_refresh: bool) -> Token:
        """A token for the service connection, given the job's SYSTEM_OIDCREQUESTURI and SYSTEM_ACCESSTOKEN."""
        if not (request_uri and access_token):
            raise LoginRequired("SYSTEM_ACCESSTOKEN and SYSTEM_OIDCREQUESTURI are kept only in the daemon's memory "
                                "and the daemon has restarted; run kubectl again inside the pipeline step")
        with self._lock:
            self._jobs[profile.key] = (request_uri, access_token)
        app = self._app(profile, network)
        if force_refresh:
            app.remove_tokens_for_client()
        started = self._clock.now()
        with _errors.translating(f"getting an app token from {profile.authority}", profile.authority):
            result = app.acquire_token_for_client(list(profile.scopes))  # our errors from the assertion pass
        return _errors.token_from_result(
            result, started, account={"username": f"service connection {profile.service_connection_id}"},
            during_sign_in=True, tenant_id=profile.tenant_id,
        )

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self.acquire_silent(profile, context, force_refresh=True)

    def sign_out(self, profile: Profile) -> str | None:
        with self._lock:
            apps = [self._apps.pop(k) for k in [k for k in self._apps if k[0] == profile.key]]
            self._jobs.pop(profile.key, None)
        for app in apps:
            app.remove_tokens_for_client()
        return None

    def _app(self, profile: Profile, network: Network) -> msal.ConfidentialClientApplication:
        with self._lock:
            app = self._apps.get((profile.key, network))
            if app is not None:
                return app
            http = self._http_client_factory(network)

            def assertion() -> str:
                # MSAL asks for every token request: a fresh OIDC token, with the latest job's values.
                with self._lock:
                    request_uri, access_token = self._jobs[profile.key]
                return fetch_oidc_token(http, request_uri, profile.service_connection_id, access_token)

            with _errors.translating(f"discovering {profile.authority}", profile.authority):
                app = msal.ConfidentialClientApplication(
                    profile.client_id, client_credential={"client_assertion": assertion},
                    authority=profile.authority, http_client=http,
                    instance_discovery=None if profile.instance_discovery else False)
            self._apps[(profile.key, network)] = app
            return app

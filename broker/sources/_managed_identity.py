"""Entra ID as an Azure managed identity (``msi``), asked of the endpoint the CALLER's environment names.

kubectl runs the plugin with the user entry's exec.env merged over its environment, and Azure
kubelogin (azidentity) reads the managed-identity variables there; a long-lived daemon's own
environment says nothing about them. So the endpoint comes with each request's context:

- App Service, Functions, Automation: ``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER`` (api-version 2019-08-01)
- Azure ML and the older App Service protocol: ``MSI_ENDPOINT`` + ``MSI_SECRET`` (2017-09-01)
- a VM, VM scale set or AKS node: the instance metadata service (``IMDS_ENDPOINT`` or
  ``AZURE_POD_IDENTITY_AUTHORITY_HOST``, else 169.254.169.254)
- Service Fabric (``IDENTITY_SERVER_THUMBPRINT``) and Azure Arc (``IDENTITY_ENDPOINT`` + ``IMDS_ENDPOINT``)
  pin a certificate or answer a challenge: MSAL's client does those, and it reads the daemon's own
  environment, so they are served only when the caller's values are the daemon's.

A user-assigned identity is chosen by ``--client-id`` or ``--identity-resource-id``; without either,
the system-assigned one, as kubelogin does. Tokens stay in memory: the endpoint is local and cheap.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import msal

from broker.core.errors import InvalidArguments
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Clock, Progress
from broker.sources import _errors
from broker.sources.http import Network

_IMDS = "http://169.254.169.254"
_MSAL_ONLY = ("IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT")


def _request(profile: Profile, env: Mapping[str, str]) -> tuple[str, dict[str, str], dict[str, str]] | None:
    """(url, query, headers) for the endpoint the caller's environment names, or None for MSAL's kinds."""
    resource = profile.server_id
    endpoint, header = env.get("IDENTITY_ENDPOINT", ""), env.get("IDENTITY_HEADER", "")
    if endpoint and (env.get("IDENTITY_SERVER_THUMBPRINT") or (env.get("IMDS_ENDPOINT") and not header)):
        return None  # Service Fabric or Azure Arc
    ids = {"client_id": profile.client_id} if profile.client_id else {}
    if endpoint and header:
        if profile.identity_resource_id and not ids:
            ids = {"mi_res_id": profile.identity_resource_id}
        return endpoint, {"api-version": "2019-08-01", "resource": resource, **ids}, \
            {"X-IDENTITY-HEADER": header, "Metadata": "true"}
    if env.get("MSI_ENDPOINT") and env.get("MSI_SECRET"):
        if profile.client_id:
            ids = {"clientid": profile.client_id}
        return env["MSI_ENDPOINT"], {"api-version": "2017-09-01", "resource": resource, **ids}, \
            {"secret": env["MSI_SECRET"]}
    if profile.identity_resource_id and not ids:
        ids = {"msi_res_id": profile.identity_resource_id}
    host = (env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or env.get("IMDS_ENDPOINT") or _IMDS).rstrip("/")
    return f"{host}/metadata/identity/oauth2/token", {"api-version": "2018-02-01", "resource": resource, **ids}, \
        {"Metadata": "true"}


def _expires_in(payload: Mapping[str, Any], now: float) -> float:
    if payload.get("expires_in"):
        return float(payload["expires_in"])
    return float(payload["expires_on"]) - now  # epoch seconds, as a string


class ManagedIdentitySource:
    """TokenSource for ``msi`` profiles."""

    def __init__(self, clock: Clock, *, http_client_factory: Callable[[Network], Any],
                 daemon_env: Mapping[str, str] | None = None) -> None:
        self._clock = clock
        self._http_client_factory = http_client_factory
        self._daemon_env = os.environ if daemon_env is None else daemon_env
        self._clients: dict[str, msal.ManagedIdentityClient] = {}
        self._lock = threading.Lock()

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        started = self._clock.now()
        request = _request(profile, context.env)
        where = "the managed identity endpoint"
        # ManagedIdentityError and bad JSON are ValueErrors; network errors come from requests.
        with _errors.translating("asking the managed identity endpoint for a token", where):
            if request is None:
                result = self._with_msal(profile, context, force_refresh)
            else:
                url, query, headers = request
                http = self._http_client_factory(Network.of(context.env))
                try:
                    response = http.get(url, params=query, headers=headers)
                finally:
                    http.close()
                result = json.loads(response.text)
                if not isinstance(result, dict):
                    raise ValueError("the managed identity endpoint answered with something that is not JSON")
        if "access_token" not in result:
            if "error" not in result:  # App Service's {"statusCode":…, "message":…}
                result = {"error": "invalid_request",
                          "error_description": f"{result.get('statusCode', '')} {result.get('message', '')}"}
            raise _errors.from_result(result, during_sign_in=True)
        who = profile.client_id or profile.identity_resource_id.rsplit("/", 1)[-1] or "system-assigned"
        try:
            lifetime = _expires_in(result, started)
        except (KeyError, TypeError, ValueError) as exc:
            raise _errors.from_result({"error": "invalid_response",
                                       "error_description": "the endpoint sent a token without its expiry"},
                                      during_sign_in=True) from exc
        return _errors.token_from_result(
            {**result, "expires_in": lifetime}, started,
            account={"username": f"managed identity {who}"}, during_sign_in=True,
        )

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self.acquire_silent(profile, context, force_refresh=True)

    def sign_out(self, profile: Profile) -> None:
        with self._lock:
            self._clients.pop(profile.key, None)

    def _with_msal(self, profile: Profile, context: RequestContext, force_refresh: bool) -> dict[str, Any]:
        """Service Fabric and Azure Arc through MSAL's client, which reads the daemon's environment."""
        names = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", *_MSAL_ONLY)
        if any(context.get(n) != self._daemon_env.get(n, "") for n in names):
            raise InvalidArguments(
                "--login msi on Service Fabric or Azure Arc reads IDENTITY_ENDPOINT/IMDS_ENDPOINT from the "
                "daemon's environment; start `kubetray run` where those are set")
        if force_refresh:
            with self._lock:  # MSAL's cache would hand back the token the schedule wants replaced
                self._clients.pop(profile.key, None)
        with self._lock:
            client = self._clients.get(profile.key)
            if client is None:
                identity: dict[str, Any]
                if profile.client_id:
                    identity = msal.UserAssignedManagedIdentity(client_id=profile.client_id)
                elif profile.identity_resource_id:
                    identity = msal.UserAssignedManagedIdentity(resource_id=profile.identity_resource_id)
                else:
                    identity = msal.SystemAssignedManagedIdentity()
                client = msal.ManagedIdentityClient(
                    identity, http_client=self._http_client_factory(Network.of(context.env)))
                self._clients[profile.key] = client
        result: dict[str, Any] = client.acquire_token_for_client(resource=profile.server_id)
        return result

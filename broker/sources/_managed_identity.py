"""Entra ID as an Azure managed identity (``msi``), through MSAL's managed-identity client.

MSAL finds the identity endpoint itself from the daemon's environment (App Service's IDENTITY_ENDPOINT
and IDENTITY_HEADER, Azure Arc, Cloud Shell, or the VM's instance metadata service). A user-assigned
identity is chosen by ``--client-id`` or ``--identity-resource-id``; without either, the system-assigned
one is used, as kubelogin does. Tokens stay in memory: the endpoint is local and cheap to ask again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msal

from broker.core.model import Profile, Token
from broker.core.ports import Clock, Progress
from broker.sources import _errors


class ManagedIdentitySource:
    """TokenSource for ``msi`` profiles."""

    def __init__(self, clock: Clock, *, http_client_factory: Callable[[], Any]) -> None:
        self._clock = clock
        self._http_client_factory = http_client_factory
        self._clients: dict[str, msal.ManagedIdentityClient] = {}
        self._lock = threading.Lock()

    def acquire_silent(self, profile: Profile, *, force_refresh: bool, account_id: str = "") -> Token:
        if force_refresh:
            with self._lock:  # MSAL's cache would hand back the token the schedule wants replaced
                self._clients.pop(profile.key, None)
        client = self._client(profile)
        resource = profile.server_id
        started = self._clock.now()
        # ManagedIdentityError is a ValueError; network errors come from requests.
        with _errors.translating("asking the managed identity endpoint for a token", "the managed identity endpoint"):
            result = client.acquire_token_for_client(resource=resource)
        who = profile.client_id or profile.identity_resource_id.rsplit("/", 1)[-1] or "system-assigned"
        return _errors.token_from_result(
            result, started, account={"username": f"managed identity {who}"}, during_sign_in=True
        )

    def sign_in(self, profile: Profile, progress: Progress) -> Token:
        return self.acquire_silent(profile, force_refresh=True)

    def sign_out(self, profile: Profile) -> None:
        with self._lock:
            self._clients.pop(profile.key, None)

    def _client(self, profile: Profile) -> msal.ManagedIdentityClient:
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
                client = msal.ManagedIdentityClient(identity, http_client=self._http_client_factory())
                self._clients[profile.key] = client
            return client

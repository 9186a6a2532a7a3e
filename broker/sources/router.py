"""One TokenSource for the service that hands each profile to the source of its login mode.

``build_router`` is where the per-mode sources are constructed (called from app.build_daemon); each
source imports its own third-party library, the router only dispatches.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from broker.core.errors import InvalidArguments
from broker.core.model import (
    LOGIN_AZD,
    LOGIN_AZURECLI,
    LOGIN_DEVICECODE,
    LOGIN_INTERACTIVE,
    LOGIN_MSI,
    LOGIN_OIDC,
    LOGIN_PIPELINES,
    LOGIN_ROPC,
    LOGIN_SPN,
    LOGIN_WORKLOAD,
    Profile,
    RequestContext,
    Token,
)
from broker.core.ports import Clock, Progress, SecretStore, TokenSource
from broker.sources.http import Network


class LoginRouter:
    """TokenSource dispatching on ``profile.login``."""

    def __init__(self, routes: Mapping[str, TokenSource]) -> None:
        self._routes = dict(routes)

    def _source(self, profile: Profile) -> TokenSource:
        try:
            return self._routes[profile.login]
        except KeyError:
            raise InvalidArguments(f"--login {profile.login} is not available in this daemon") from None

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        return self._source(profile).acquire_silent(profile, context, force_refresh=force_refresh,
                                                    account_id=account_id)

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        return self._source(profile).sign_in(profile, context, progress)

    def sign_out(self, profile: Profile) -> str | None:
        return self._source(profile).sign_out(profile)


def build_router(
    store: SecretStore,
    clock: Clock,
    *,
    stopping: threading.Event,
    os_broker_default: bool = False,
    http_client_factory: Callable[[Network], Any] | None = None,
    can_open_browser: Callable[[], bool] | None = None,
) -> LoginRouter:
    """Every login mode's source, sharing the keyring store and the clock. Secrets and the caller's
    environment reach them with each request (RequestContext), never through a shared table."""
    from broker.sources._azd import AzdSource
    from broker.sources._azurecli import AzureCliSource
    from broker.sources._confidential import ConfidentialSource
    from broker.sources._managed_identity import ManagedIdentitySource
    from broker.sources._msal import MsalSource
    from broker.sources._oidc import OidcSource
    from broker.sources._pipelines import PipelinesSource
    from broker.sources._ropc import RopcSource
    from broker.sources.browser import can_open_browser as default_can_open_browser
    from broker.sources.http import BoundedSession

    def default_http(network: Network) -> Any:
        return BoundedSession(network=network)

    http = http_client_factory or default_http
    browser = can_open_browser or default_can_open_browser
    public = MsalSource(store, clock, http_client_factory=http, can_open_browser=browser, stopping=stopping,
                        os_broker_default=os_broker_default)
    confidential = ConfidentialSource(clock, http_client_factory=http)
    return LoginRouter({
        LOGIN_INTERACTIVE: public,
        LOGIN_DEVICECODE: public,
        LOGIN_ROPC: RopcSource(store, clock, http_client_factory=http, can_open_browser=browser,
                               stopping=stopping),
        LOGIN_SPN: confidential,
        LOGIN_WORKLOAD: confidential,
        LOGIN_MSI: ManagedIdentitySource(clock, http_client_factory=http),
        LOGIN_AZURECLI: AzureCliSource(clock),
        LOGIN_AZD: AzdSource(clock),
        LOGIN_PIPELINES: PipelinesSource(clock, http_client_factory=http),
        LOGIN_OIDC: OidcSource(store, clock, can_open_browser=browser, stopping=stopping),
    })

"""Entra ID with a username and password (``ropc``, deprecated): MSAL's public client again.

Kept for kubeconfigs that still use it; it cannot satisfy MFA or Conditional Access. The password comes
with the request context (the daemon keeps it in memory only). Refresh tokens are used first, like
every MSAL profile; when they fail and the password is at hand, the daemon signs in again on its own.
The profile's cache name differs from the interactive one, so the two MSAL caches never collide.
"""

from __future__ import annotations

from typing import Any

from broker.core.errors import LoginRequired
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Progress
from broker.sources import _errors
from broker.sources._msal import MsalSource


class RopcSource(MsalSource):
    """TokenSource for ``ropc`` profiles."""

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        try:
            return super().acquire_silent(profile, context, force_refresh=force_refresh, account_id=account_id)
        except LoginRequired:
            if not context.secrets.password:
                raise
        return self.sign_in(profile, context, lambda _message: None)

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        password = context.secrets.password
        if not password:
            raise LoginRequired(
                "a new sign-in needs the password, which the daemon keeps only in memory; supply it with "
                "--password or AAD_USER_PRINCIPAL_PASSWORD / AZURE_PASSWORD and run kubectl again"
            )
        app = self._app(profile, context)
        started = self._clock.now()
        try:
            with _errors.translating(f"signing in to {profile.authority} with a password", profile.authority):
                result = app.app.acquire_token_by_username_password(profile.username, password, list(profile.scopes))
        finally:
            self._persist(app)
        account = {"username": profile.username}
        return self._token(result, started, account, during_sign_in=True)

    def _account(self, app: Any, profile: Profile, account_id: str) -> dict[str, Any] | None:  # type: ignore[override]
        accounts: list[dict[str, Any]] = app.app.get_accounts(username=profile.username)
        return accounts[0] if accounts else None

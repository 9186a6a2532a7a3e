"""Plain data: profiles (what to sign in to) and tokens (what we got)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

LOGIN_INTERACTIVE = "interactive"
LOGIN_DEVICECODE = "devicecode"


@dataclass(frozen=True)
class Profile:
    """One way of getting a token, derived from the kubeconfig's get-token arguments.

    Profiles that share authority, client id and scopes share one sign-in: every Entra-integrated
    AKS cluster of a tenant maps to the same :attr:`key`.
    """

    login: str
    authority: str
    client_id: str
    server_id: str
    tenant_id: str = ""
    environment: str = ""
    instance_discovery: bool = True
    login_hint: str = ""
    redirect_port: int | None = None
    timeout: float = 60.0

    @property
    def scopes(self) -> tuple[str, ...]:
        return (f"{self.server_id}/.default",)

    @property
    def key(self) -> str:
        """Stable id of the sign-in group: same authority + client id + scopes, same tokens."""
        material = "\n".join((self.authority.rstrip("/").lower(), self.client_id, *self.scopes))
        return hashlib.sha256(material.encode()).hexdigest()[:16]

    @property
    def cache_name(self) -> str:
        """Keyring entry holding MSAL's token cache for this authority + client id."""
        material = "\n".join((self.authority.rstrip("/").lower(), self.client_id))
        return "msal-cache-" + hashlib.sha256(material.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Token:
    """An access token and when it stops working. The secret never appears in repr or logs."""

    access_token: str = field(repr=False)
    expires_on: float
    obtained_at: float
    account: str = ""
    home_account_id: str = ""
    tenant_id: str = ""

    def remaining(self, now: float) -> float:
        return self.expires_on - now

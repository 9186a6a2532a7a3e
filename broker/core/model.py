"""Plain data: profiles (what to sign in to) and tokens (what we got)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

LOGIN_INTERACTIVE = "interactive"
LOGIN_DEVICECODE = "devicecode"
LOGIN_SPN = "spn"
LOGIN_ROPC = "ropc"
LOGIN_MSI = "msi"
LOGIN_WORKLOAD = "workloadidentity"
LOGIN_AZURECLI = "azurecli"
LOGIN_AZD = "azd"  # the Azure Developer CLI's `azd auth token`
LOGIN_PIPELINES = "azurepipelines"  # an Azure Pipelines service connection (workload identity federation)
LOGIN_OIDC = "oidc"
# Modes where a person takes part in the sign-in; every other mode acquires on its own.
PERSON_LOGINS = frozenset({LOGIN_INTERACTIVE, LOGIN_DEVICECODE})

# int128/kubelogin's --grant-type values (generic OpenID Connect).
GRANT_AUTHCODE = "authcode"
GRANT_DEVICE_CODE = "device-code"
GRANT_PASSWORD = "password"  # noqa: S105 - a grant type name, not a password
GRANT_CLIENT_CREDENTIALS = "client-credentials"


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
    # Entra's other modes. Paths are absolute (resolved against the caller's cwd when parsed).
    username: str = ""
    client_certificate: str = ""
    identity_resource_id: str = ""
    federated_token_file: str = ""
    subscription: str = ""
    service_connection_id: str = ""  # azurepipelines
    use_os_broker: bool = False
    # Generic OpenID Connect (login "oidc"): authority is the issuer URL.
    grant_type: str = ""
    extra_scopes: str = ""  # space-separated, so a JSON round trip gives back an equal Profile
    use_access_token: bool = False
    ca_file: str = ""
    ca_data: str = ""
    insecure_skip_tls_verify: bool = False

    @property
    def scopes(self) -> tuple[str, ...]:
        if self.login == LOGIN_OIDC:
            return tuple(self.extra_scopes.split())
        return (f"{self.server_id}/.default",)

    @property
    def key(self) -> str:
        """Stable id of the sign-in group: same authority + client id + scopes, same tokens.

        Modes other than interactive/devicecode get tokens for another principal (an app, a managed
        identity, a named user), so what identifies that principal joins the material. Secrets never do.
        """
        parts = [self.authority.rstrip("/").lower(), self.client_id, *self.scopes]
        if self.login not in PERSON_LOGINS:
            parts += [self.login, self.username, self.identity_resource_id, self.subscription,
                      self.tenant_id, self.grant_type, self.client_certificate, self.federated_token_file]
            if self.service_connection_id:  # only when set: the keys of older profiles stay as they were
                parts.append(self.service_connection_id)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def cache_name(self) -> str:
        """Keyring entry holding MSAL's token cache for this authority + client id (+ mode).

        The public-client modes share one entry; any other mode that keeps a cache gets its own, so
        two MSAL applications never overwrite each other's serialized cache.
        """
        parts = [self.authority.rstrip("/").lower(), self.client_id]
        if self.login not in PERSON_LOGINS:
            parts += [self.login, self.username, self.grant_type]
        return "msal-cache-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    @property
    def needs_person(self) -> bool:
        """True when a sign-in needs a person (browser or device code); otherwise it just acquires."""
        if self.login == LOGIN_OIDC:
            return self.grant_type in (GRANT_AUTHCODE, GRANT_DEVICE_CODE)
        return self.login in PERSON_LOGINS


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


@dataclass(frozen=True)
class Secrets:
    """Credentials a shim passed in (kubeconfig flags or environment). Held in memory only.

    Never a Profile field: profiles are persisted, these must not be. repr hides every value.
    """

    client_secret: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    certificate_password: str = field(default="", repr=False)
    # azurepipelines: the job's SYSTEM_ACCESSTOKEN and SYSTEM_OIDCREQUESTURI (per job, so memory only too)
    pipeline_access_token: str = field(default="", repr=False)
    oidc_request_uri: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.client_secret or self.password or self.certificate_password
                    or self.pipeline_access_token or self.oidc_request_uri)


@dataclass(frozen=True)
class Parsed:
    """What one get-token call asks for: the profile, its secrets (memory only) and notes for the person.

    ``local_only``: the kubeconfig said ``--local-only`` (never served to a forwarded caller; a local
    call with it marks the profile local-only in the daemon, see broker/core/remote.py).
    """

    profile: Profile
    secrets: Secrets = Secrets()
    notes: tuple[str, ...] = ()
    local_only: bool = False


class SecretBag:
    """The daemon's in-memory secrets, keyed by profile key. Thread-safe; never written anywhere.

    After a restart it is empty: profiles that need a secret wait until a shim supplies it again.
    """

    def __init__(self) -> None:
        self._secrets: dict[str, Secrets] = {}
        self._lock = threading.Lock()

    def put(self, key: str, secrets: Secrets) -> None:
        """Remember the latest secrets for ``key``. An empty set changes nothing: another terminal's
        kubectl may lack the environment variable that this one had."""
        if not secrets:
            return
        with self._lock:
            self._secrets[key] = secrets

    def get(self, key: str) -> Secrets:
        with self._lock:
            return self._secrets.get(key, Secrets())

    def forget(self, key: str) -> None:
        with self._lock:
            self._secrets.pop(key, None)

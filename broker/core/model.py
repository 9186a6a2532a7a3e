"""Plain data: profiles (what to sign in to) and tokens (what we got)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
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

# Said on every sign-in and refresh of a profile with --insecure-skip-tls-verify.
INSECURE_WARNING = (
    "kubetray: WARNING: --insecure-skip-tls-verify is set, so the identity provider's certificate is NOT "
    "checked and anyone on the network path can impersonate it; use --certificate-authority instead"
)


@dataclass(frozen=True)
class Profile:
    """One way of getting a token, derived from the kubeconfig's get-token arguments.

    Profiles that share authority, client id and scopes share one sign-in: every Entra-integrated
    AKS cluster of a tenant maps to the same :attr:`key`, unless the account (``login_hint``), the TLS
    trust or the identity-choosing environment (``env_scope``) differ: those never share.
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
    # A digest of the caller's environment that picks the identity (AZURE_CONFIG_DIR for azurecli, the
    # managed-identity endpoint for msi): two kubeconfigs whose exec.env differ there are two profiles.
    env_scope: str = ""

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
        # The account and the TLS trust join only when set, so existing keys stay what they were.
        parts += self._partition()
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _partition(self) -> list[str]:
        """What keeps two kubeconfigs of one issuer and client apart: the account they name, the TLS
        trust they give the provider (a refresh token only ever travels over a connection its own
        kubeconfig trusted) and the caller's environment that chooses the identity (``env_scope``)."""
        parts: list[str] = []
        if self.login_hint:
            parts.append("hint=" + self.login_hint.lower())
        if self.ca_file or self.ca_data or self.insecure_skip_tls_verify:
            parts += ["ca=" + self.ca_file, "ca-data=" + self.ca_data, f"insecure={self.insecure_skip_tls_verify}"]
        if self.env_scope:
            parts.append("env=" + self.env_scope)
        return parts

    @property
    def needs_person(self) -> bool:
        """True when a sign-in needs a person (browser or device code); every other mode acquires on its
        own, from what is on this machine (which is why forwarded callers are served only these)."""
        if self.login == LOGIN_OIDC:
            return self.grant_type in (GRANT_AUTHCODE, GRANT_DEVICE_CODE)
        return self.login in PERSON_LOGINS

    @property
    def keeps_sign_in(self) -> bool:
        """True for the modes whose sign-in is kept in the keyring (a refresh token in a token cache):
        the person-present modes, ROPC and generic OIDC. Only these keep their latest token there too
        (TokenVault), so a restarted daemon answers at once; the other modes get a fresh token from
        what is on the machine (a secret, a CLI, an identity endpoint) and keep nothing at rest."""
        return self.login in PERSON_LOGINS or self.login in (LOGIN_ROPC, LOGIN_OIDC)

    @property
    def cache_name(self) -> str:
        """Keyring entry holding MSAL's token cache for this authority + client id (+ mode).

        The public-client modes share one entry; any other mode that keeps a cache gets its own, so
        two MSAL applications never overwrite each other's serialized cache. A named account and a
        non-default TLS trust get their own entry too: a refresh token is never shared across them.
        """
        parts = [self.authority.rstrip("/").lower(), self.client_id]
        if self.login not in PERSON_LOGINS:
            parts += [self.login, self.username, self.grant_type]
        if self.login_hint:  # each named account has a cache of its own: no refresh token is shared
            parts.append("hint=" + self.login_hint.lower())
        if self.ca_file or self.ca_data or self.insecure_skip_tls_verify:
            # A cache (and its refresh tokens) is only ever used over the trust it was obtained with.
            parts += ["ca=" + self.ca_file, "ca-data=" + self.ca_data, f"insecure={self.insecure_skip_tls_verify}"]
        return "msal-cache-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


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


@dataclass(frozen=True)
class RequestContext:
    """The caller's context that travels WITH one request to the source: the forwarded environment
    (the documented list in docs/protocol.md), the working directory and the secrets it carried.

    Held in memory only, never persisted; repr hides the environment (it may hold AZURE_CLIENT_SECRET,
    IDENTITY_HEADER) and the secrets.
    """

    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str = ""
    secrets: Secrets = field(default_factory=Secrets, repr=False)

    def get(self, name: str, default: str = "") -> str:
        """One forwarded variable, or ``default`` when the caller did not have it."""
        return self.env.get(name, default)

    def with_secrets_from(self, previous: RequestContext) -> RequestContext:
        """This context, keeping ``previous``'s secrets when this call carried none: another
        terminal's kubectl may lack the environment variable that supplied them."""
        if self.secrets or not previous.secrets:
            return self
        return RequestContext(self.env, self.cwd, previous.secrets)


NO_CONTEXT = RequestContext()

"""Entra ID shapes for the test authority: users, error bodies, token claims, scope parsing.

Kept apart from the HTTP and grant code so each shape can be compared against Entra's in one place.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._jwt import b64url

__all__ = [
    "OIDC_SCOPES",
    "GRAPH_RESOURCE",
    "TestUser",
    "EntraError",
    "ScopeRequest",
    "parse_scopes",
    "access_token_claims",
    "id_token_claims",
    "client_info",
    "missing_parameter",
]

# Scopes that ask for protocol behaviour (refresh token, id_token) rather than a resource.
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
# Entra issues a Microsoft Graph token when a request names no resource at all.
GRAPH_RESOURCE = "00000003-0000-0000-c000-000000000000"


@dataclass(frozen=True)
class TestUser:
    """The person the authority signs in: what ends up in the tokens' claims."""

    __test__ = False  # not a pytest test class

    upn: str
    oid: str
    name: str
    groups: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        # Freeze the groups too, so a snapshot taken at sign-in cannot change behind a token's back.
        object.__setattr__(self, "groups", tuple(self.groups))


class EntraError(Exception):
    """An error answer, raised by handlers and rendered in Entra's body shape."""

    def __init__(self, error: str, code: int, text: str, status: int = 400) -> None:
        super().__init__(f"{error}: AADSTS{code}: {text}")
        self.error = error
        self.code = code
        self.text = text
        self.status = status

    def body(self, host_url: str) -> dict[str, Any]:
        """The JSON body, with fresh trace and correlation ids like every Entra response."""
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
        description = (
            f"AADSTS{self.code}: {self.text}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {now}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": now,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{host_url}/error?code={self.code}",
        }


def missing_parameter(name: str) -> EntraError:
    """Entra's answer to a request without a required parameter."""
    return EntraError(
        "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )


@dataclass(frozen=True)
class ScopeRequest:
    """A parsed ``scope`` parameter: the one resource it names, its scopes, and the OIDC extras."""

    resource: str
    resource_scopes: tuple[str, ...]
    oidc: frozenset[str]

    @property
    def delegated(self) -> str:
        """The ``scp`` claim: the permission names without the resource prefix."""
        names = [s.rsplit("/", 1)[-1] for s in self.resource_scopes]
        # ".default" means "whatever was consented"; Entra's AKS tokens then carry user.read.
        names = ["user.read" if n == ".default" else n for n in names]
        return " ".join(dict.fromkeys(names))

    def granted(self, *, echo_default: bool = True) -> str:
        """The ``scope`` of a token response.

        Echoing ``<resource>/.default`` lets MSAL's cache hit on the next identical request;
        ``echo_default=False`` reproduces Entra answering ``<resource>/user.read`` instead.
        """
        scopes = list(self.resource_scopes)
        if not echo_default:
            scopes = [f"{self.resource}/{n}" for n in self.delegated.split()]
        return " ".join(scopes + sorted(self.oidc))


def parse_scopes(raw: str) -> ScopeRequest:
    """Split a scope string; more than one resource is Entra's AADSTS28000."""
    scopes = [s for s in raw.split() if s]
    oidc = frozenset(s for s in scopes if s in OIDC_SCOPES)
    resource_scopes = tuple(s for s in scopes if s not in OIDC_SCOPES)
    resources = {s.rsplit("/", 1)[0] if "/" in s else GRAPH_RESOURCE for s in resource_scopes}
    if len(resources) > 1:
        raise EntraError(
            "invalid_scope",
            28000,
            "Provided value for the input parameter scope is not valid because it contains more than one "
            f"resource. Scope {raw} is not valid.",
        )
    if not resources:
        return ScopeRequest(GRAPH_RESOURCE, (f"{GRAPH_RESOURCE}/User.Read",), oidc)
    return ScopeRequest(resources.pop(), resource_scopes, oidc)


def _times(now: int, lifetime: int) -> dict[str, int]:
    # exp matches expires_in; nbf is backdated five minutes, as Entra does, to absorb clock skew.
    return {"iat": now, "nbf": now - 300, "exp": now + lifetime}


def access_token_claims(
    *,
    user: TestUser,
    tenant_id: str,
    client_id: str,
    scopes: ScopeRequest,
    issuer_v1: str,
    now: int,
    lifetime: int,
) -> dict[str, Any]:
    """A v1 delegated access token as Entra issues for the AKS server application."""
    names = user.name.split(" ", 1)
    return {
        "aud": scopes.resource,
        "iss": issuer_v1,
        **_times(now, lifetime),
        "acr": "1",
        "aio": b64url(uuid.uuid4().bytes),
        "amr": ["pwd", "mfa"],
        "appid": client_id,
        "appidacr": "0",
        "family_name": names[-1],
        "given_name": names[0],
        "groups": list(user.groups),
        "ipaddr": "127.0.0.1",
        "name": user.name,
        "oid": user.oid,
        "rh": "0.test.",
        "scp": scopes.delegated,
        "sub": b64url(uuid.uuid5(uuid.NAMESPACE_URL, f"{user.oid}/{client_id}").bytes),
        "tid": tenant_id,
        "unique_name": user.upn,
        "upn": user.upn,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "1.0",
    }


def id_token_claims(
    *,
    user: TestUser,
    tenant_id: str,
    client_id: str,
    issuer_v2: str,
    now: int,
    lifetime: int,
    nonce: str | None,
) -> dict[str, Any]:
    """A v2 id_token: audience is the client, subject is pairwise per client like Entra's."""
    claims: dict[str, Any] = {
        "aud": client_id,
        "iss": issuer_v2,
        **_times(now, lifetime),
        "name": user.name,
        "oid": user.oid,
        "preferred_username": user.upn,
        "rh": "0.test.",
        "sub": b64url(uuid.uuid5(uuid.NAMESPACE_URL, f"{user.oid}/{client_id}").bytes),
        "tid": tenant_id,
        "uti": b64url(uuid.uuid4().bytes),
        "ver": "2.0",
    }
    if nonce:
        claims["nonce"] = nonce
    return claims


def client_info(user: TestUser, tenant_id: str) -> str:
    """The ``client_info`` blob MSAL builds its account id (``uid.utid``) from."""
    return b64url(json.dumps({"uid": user.oid, "utid": tenant_id}).encode("utf-8"))

"""Bearer-token checks as kube-apiserver makes them: JWKS-verified JWTs mapped to a user.

Two shapes are covered. AKS with Entra (the default): a v1 access token whose ``aud`` is the AKS
server application, ``iss`` is ``https://sts.windows.net/<tenant>/``, the caller's app in ``appid``,
and the username taken from ``upn``. OIDC (``--oidc-*`` flags): ``aud`` is the client id, ``iss``
the provider's issuer, the username from a configurable claim with an optional prefix.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

__all__ = ["TokenPolicy", "JwksCache", "TokenRejected", "verify_bearer", "token_digest"]


class TokenRejected(Exception):
    """The token does not authenticate anyone; the message says why (for test diagnostics only)."""


@dataclass(frozen=True)
class TokenPolicy:
    """What a token must satisfy and how its claims become a Kubernetes user."""

    issuer: str
    audience: str
    client_ids: tuple[str, ...] = ()  # accepted ``appid``/``azp`` values; empty accepts any
    username_claim: str = "upn"
    username_prefix: str = ""
    groups_claim: str = "groups"
    leeway: int = 0  # seconds; kube-apiserver allows none for exp
    extra_claims: tuple[str, ...] = field(default=("oid",))


def token_digest(token: str) -> str:
    """SHA-256 hex of a token: what the stand-in records instead of the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class JwksCache:
    """Fetches the signing keys once and again only when a token names an unknown kid."""

    def __init__(self, url: str, ca_bundle: Path | None) -> None:
        self.url = url
        self._context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
        self._lock = threading.Lock()
        self._keys: dict[str, Any] = {}
        self.fetches = 0

    def _fetch(self) -> None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self._context)
        )
        with opener.open(self.url, timeout=10) as response:  # noqa: S310 - a configured https URL
            document = json.load(response)
        self._keys = {
            jwk["kid"]: jwt.PyJWK.from_dict(jwk).key for jwk in document.get("keys", []) if "kid" in jwk
        }
        self.fetches += 1

    def key(self, kid: str) -> Any:
        """The public key for ``kid``; refetches once when it is not known yet (key rotation)."""
        with self._lock:
            if kid not in self._keys:
                self._fetch()
            try:
                return self._keys[kid]
            except KeyError:
                raise TokenRejected(f"no signing key with kid {kid!r} at {self.url}") from None


def verify_bearer(token: str, policy: TokenPolicy, keys: JwksCache) -> dict[str, Any]:
    """Verify ``token`` and return the ``userInfo`` it maps to, or raise TokenRejected."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRejected(f"not a JWT: {error}") from None
    if header.get("alg") != "RS256":
        raise TokenRejected(f"unexpected alg {header.get('alg')!r}")
    key = keys.key(str(header.get("kid", "")))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=policy.audience,
            issuer=policy.issuer,
            leeway=policy.leeway,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as error:
        raise TokenRejected(f"{type(error).__name__}: {error}") from None
    caller = claims.get("appid", claims.get("azp"))
    if policy.client_ids and caller not in policy.client_ids:
        raise TokenRejected(f"client {caller!r} is not allowed")
    username = claims.get(policy.username_claim)
    if not isinstance(username, str) or not username:
        raise TokenRejected(f"claim {policy.username_claim!r} missing")
    groups = claims.get(policy.groups_claim, [])
    if not isinstance(groups, list):
        raise TokenRejected(f"claim {policy.groups_claim!r} is not a list")
    extra = {name: [str(claims[name])] for name in policy.extra_claims if name in claims}
    return {
        "username": policy.username_prefix + username,
        "uid": str(claims.get("oid", claims.get("sub", ""))),
        "groups": [*map(str, groups), "system:authenticated"],
        "extra": extra,
    }

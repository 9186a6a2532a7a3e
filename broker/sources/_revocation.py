"""RFC 7009 token revocation at logout, for OpenID providers whose discovery lists ``revocation_endpoint``.

Logout deletes the local copy in any case; revoking first makes a refresh token copied off this machine
(a backup, a stolen keyring) useless too. The client authenticates as MSAL does at the token endpoint:
HTTP Basic with the client secret for a confidential client, ``client_id`` in the body for a public one.
Failures come back as one sentence for the person, never an exception and never a token.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import quote_plus, urlsplit

# Entra ID has no revocation endpoint: a refresh token there ends only with a session revocation.
ENTRA_NOTE = (
    "Entra ID cannot revoke one refresh token: to end this account's sessions everywhere, run "
    "`Revoke-MgUserSignInSession -UserId <user>` (Microsoft Graph PowerShell) or choose \"Revoke sessions\" "
    "on the user's page in the Entra admin center"
)


class HttpSession(Protocol):
    """What revocation needs of an HTTP client (requests' Session, or a fake in tests)."""

    def get(self, url: str, **kwargs: Any) -> Any: ...

    def post(self, url: str, **kwargs: Any) -> Any: ...


def _error_code(response: Any) -> str:
    try:
        doc = response.json()
    except ValueError:
        return ""
    code = doc.get("error") if isinstance(doc, dict) else None
    return "".join(c for c in str(code) if c.isalnum() or c in "_-")[:60] if code else ""


def revocation_endpoint(session: HttpSession, issuer: str, timeout: float) -> str:
    """The discovery document's ``revocation_endpoint`` ("" when there is none); raises OSError/ValueError."""
    response = session.get(issuer.rstrip("/") + "/.well-known/openid-configuration", timeout=timeout)
    if response.status_code != 200:
        raise ValueError(f"discovery answered HTTP {response.status_code}")
    doc = response.json()
    endpoint = doc.get("revocation_endpoint") if isinstance(doc, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        return ""
    if urlsplit(endpoint).scheme != "https":
        raise ValueError("its revocation_endpoint is not https")
    return endpoint


def revoke(session: HttpSession, issuer: str, client_id: str, client_secret: str, tokens: Sequence[str],
           *, timeout: float = 10.0) -> str:
    """Revoke each refresh token at the issuer; return one sentence saying what happened."""
    if not tokens:
        return ""
    try:
        endpoint = revocation_endpoint(session, issuer, timeout)
    except (OSError, ValueError) as exc:
        return (f"could not revoke the refresh token: {issuer} discovery failed ({_reason(exc)}); it is deleted "
                "here but stays valid at the provider until it expires")
    if not endpoint:
        return (f"{issuer} offers no revocation endpoint: the refresh token is deleted here but stays valid at the "
                "provider until it expires")
    headers = {"Accept": "application/json"}
    body_auth: dict[str, str] = {}
    if client_secret:
        pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    else:
        body_auth["client_id"] = client_id
    failures: list[str] = []
    for token in tokens:
        data = {"token": token, "token_type_hint": "refresh_token", **body_auth}
        try:
            response = session.post(endpoint, data=data, headers=headers, timeout=timeout)
        except (OSError, ValueError) as exc:
            failures.append(_reason(exc))
            continue
        if response.status_code != 200:  # RFC 7009 2.2: 200 also for a token the server did not know
            code = _error_code(response)
            failures.append(f"HTTP {response.status_code}" + (f" {code}" if code else ""))
    if failures:
        return (f"could not revoke the refresh token at {endpoint} ({failures[0]}); it is deleted here but stays "
                "valid at the provider until it expires")
    plural = "s" if len(tokens) > 1 else ""
    return f"revoked the refresh token{plural} at {issuer}"


def _reason(exc: BaseException) -> str:
    # requests' messages can be long and name URLs with query strings; the type says enough.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text[:120] if isinstance(exc, ValueError) else type(exc).__name__

"""MSAL's result dicts and exceptions, translated into the broker's error tree (the only place)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import requests

from broker.core.errors import AuthError, KubetrayError, LoginFailed, LoginRequired, ProviderUnreachable

# Errors that mean "a person has to sign in again" (OAuth 2.0 and Entra's own).
_SIGN_IN_AGAIN = {"invalid_grant", "interaction_required", "login_required", "consent_required"}
_AADSTS = re.compile(r"AADSTS(\d+)")

SIGN_IN_HINT = "sign in again: run kubectl in a terminal or `kubetray login`"


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:300]


def from_result(result: Mapping[str, Any], *, during_sign_in: bool = False) -> KubetrayError:
    """Turn an MSAL error dict into an exception whose message is one plain line."""
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "")
    codes = tuple(int(c) for c in result.get("error_codes") or () if isinstance(c, int))
    if not codes:
        codes = tuple(int(c) for c in _AADSTS.findall(description)[:1])
    correlation = str(result.get("correlation_id") or "")
    summary = _first_line(description) or error
    if error in _SIGN_IN_AGAIN and not during_sign_in:
        return LoginRequired(f"your sign-in is no longer valid ({summary}); {SIGN_IN_HINT}")
    if error in ("access_denied", "authorization_declined", "expired_token", "timeout"):
        return LoginFailed(f"the sign-in did not complete ({summary}); {SIGN_IN_HINT}")
    suffix = f" (correlation id {correlation})" if correlation else ""
    return AuthError(
        f"the identity provider refused: {error}: {summary}{suffix}",
        error=error,
        description=description,
        error_codes=codes,
        correlation_id=correlation,
    )


def from_exception(exc: BaseException, authority: str) -> KubetrayError:
    """Network and discovery failures raised by MSAL or requests."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ProviderUnreachable(
            f"TLS verification failed for {authority}; if a proxy or private CA is in the way, "
            "point REQUESTS_CA_BUNDLE at its certificate"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ProviderUnreachable(f"{authority} did not answer in time; check the network or proxy")
    if isinstance(exc, requests.exceptions.RequestException):
        return ProviderUnreachable(
            f"cannot reach {authority} ({type(exc).__name__}); check the network, HTTPS_PROXY and NO_PROXY"
        )
    if isinstance(exc, ValueError):
        return ProviderUnreachable(f"{authority} is not usable as a sign-in authority: {_first_line(str(exc))}")
    return KubetrayError(f"unexpected error from MSAL ({type(exc).__name__}); see the log")

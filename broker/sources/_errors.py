"""MSAL's result dicts and exceptions, translated into the broker's error tree (the only place).

The sentences come from :mod:`broker.sources.catalogue`, so the shim's stderr, the tray and ``kubetray
doctor`` explain an identity-provider error in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from broker.core.errors import AuthError, KubetrayError, LoginFailed, LoginRequired, ProviderUnreachable
from broker.sources import catalogue

# Errors that mean "a person has to sign in again" (OAuth 2.0 and Entra's own).
_SIGN_IN_AGAIN = {"invalid_grant", "interaction_required", "login_required", "consent_required"}
_NOT_COMPLETED = {"access_denied", "authorization_declined", "expired_token", "timeout"}

SIGN_IN_HINT = "sign in again: run kubectl in a terminal or `kubetray login`"


def _first_line(text: str) -> str:
    return catalogue.first_line(text)


def from_result(result: Mapping[str, Any], *, during_sign_in: bool = False) -> KubetrayError:
    """Turn an MSAL error dict into an exception whose message is one plain line."""
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "")
    codes = catalogue.entra_codes(description, (c for c in result.get("error_codes") or () if isinstance(c, int)))
    correlation = str(result.get("correlation_id") or "")
    known = catalogue.lookup(error, codes, description)
    summary = _first_line(description) or error
    if known is not None:
        message = catalogue.describe(error, codes, description, correlation)
    elif error in _SIGN_IN_AGAIN and not during_sign_in:
        message = f"your sign-in is no longer valid ({summary}); {SIGN_IN_HINT}"
    elif error in _NOT_COMPLETED:
        message = f"the sign-in did not complete ({summary}); {SIGN_IN_HINT}"
    else:
        message = catalogue.describe(error, codes, description, correlation)
    if error in _SIGN_IN_AGAIN and not during_sign_in:
        return LoginRequired(message)
    if error in _NOT_COMPLETED:
        return LoginFailed(message)
    return AuthError(message, error=error, description=description, error_codes=codes, correlation_id=correlation)


def from_exception(exc: BaseException, authority: str) -> KubetrayError:
    """Network and discovery failures raised by MSAL or requests."""
    if hasattr(exc, "_error"):  # msal's MsalServiceError: a provider error (or an HTTP status) as an exception
        service_error = getattr(exc, "_error", None)
        if isinstance(service_error, str) and service_error:
            return from_result({"error": service_error, "error_description": getattr(exc, "_error_description", "")})
        status = _first_line(str(exc.args[0])) if exc.args else "an error"
        return ProviderUnreachable(f"the identity provider at {authority} answered {status}; try again in a minute")
    if isinstance(exc, ValueError) and "JSON" in type(exc).__name__ + str(exc)[:60]:
        return ProviderUnreachable(f"{authority} answered with something that is not JSON; is a proxy in the way?")
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

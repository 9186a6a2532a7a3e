"""MSAL's and requests' failures, translated into the broker's error tree (the only place).

Every call into MSAL runs inside :func:`translating`, which maps what it raises; every result dict MSAL
returns becomes a :class:`Token` or an error through :func:`token_from_result`. The sentences come
from :mod:`broker.sources.catalogue`, so the shim's stderr, the tray and ``kubetray doctor`` explain an
identity-provider error in the same words. Provider text is made printable before it goes anywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests

from broker.core.errors import (
    AuthError,
    KubetrayError,
    LoginFailed,
    LoginRequired,
    ProviderUnreachable,
    unexpected,
)
from broker.core.model import Token
from broker.sources import catalogue

log = logging.getLogger(__name__)

# Errors that mean "a person has to sign in again" (OAuth 2.0 and Entra's own).
_SIGN_IN_AGAIN = {"invalid_grant", "interaction_required", "login_required", "consent_required"}
_NOT_COMPLETED = {"access_denied", "authorization_declined", "expired_token", "timeout"}
# Entra's own sign-in hosts (public and national clouds); any other host is a private authority, for
# which MSAL's instance discovery at login.microsoftonline.com can only fail or mislead.
_MICROSOFT_HOSTS = (
    "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
    "login.microsoftonline.us", "login-us.microsoftonline.com", "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn", "login.microsoftonline.de",
)
_MICROSOFT_SUFFIXES = (".b2clogin.com", ".ciamlogin.com")

SIGN_IN_HINT = "sign in again: run kubectl in a terminal or `kubetray login`"


def _first_line(text: str) -> str:
    return catalogue.first_line(text)


def is_microsoft_host(host: str) -> bool:
    """Whether ``host`` is one of Entra's own sign-in hosts (where instance discovery belongs)."""
    host = host.lower().rstrip(".")
    return host in _MICROSOFT_HOSTS or host.endswith(_MICROSOFT_SUFFIXES)


@contextmanager
def translating(doing: str, authority: str) -> Iterator[None]:
    """Map whatever MSAL or requests raises inside the block to our errors, keeping the cause.

    ``doing`` is the phrase a person reads ("signing in to https://…"); ``authority`` is what the
    profile names. Our own errors pass through untouched; anything unexpected is logged once, with the
    short error id its message carries.
    """
    try:
        yield
    except KubetrayError:
        raise
    except Exception as exc:
        raise from_exception(exc, authority, doing=doing) from exc


def token_from_result(
    result: Mapping[str, Any] | None,
    started: float,
    *,
    account: Mapping[str, Any] | None = None,
    during_sign_in: bool = False,
    fallback_account: str = "",
    tenant_id: str = "",
) -> Token:
    """The Token in an MSAL result dict, or the error it reports (the one place a dict becomes a Token).

    ``started`` is when the request was sent (``expires_in`` counts from then); the account is the MSAL
    account the request was for, else the id_token's claims, else ``fallback_account``.
    """
    if not result or "access_token" not in result:
        raise from_result(result or {"error": "no_result"}, during_sign_in=during_sign_in)
    claims = result.get("id_token_claims") or {}
    username = (
        (account or {}).get("username") or claims.get("preferred_username") or claims.get("upn")
        or claims.get("sub") or fallback_account
    )
    home = (account or {}).get("home_account_id") or ""
    if not home and claims.get("oid") and claims.get("tid"):
        home = f"{claims['oid']}.{claims['tid']}"
    return Token(
        access_token=str(result["access_token"]),
        expires_on=started + float(result.get("expires_in") or 0),
        obtained_at=started,
        account=catalogue.printable(str(username)),
        home_account_id=str(home),
        tenant_id=str(claims.get("tid") or tenant_id),
    )


def from_result(result: Mapping[str, Any], *, during_sign_in: bool = False) -> KubetrayError:
    """Turn an MSAL error dict into an exception whose message is one plain line."""
    error = catalogue.printable(str(result.get("error") or "unknown_error"))
    description = catalogue.printable(str(result.get("error_description") or ""), keep_newlines=True)
    codes = catalogue.entra_codes(description, (c for c in result.get("error_codes") or () if isinstance(c, int)))
    correlation = catalogue.printable(str(result.get("correlation_id") or ""))
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


def from_exception(exc: BaseException, authority: str, *, doing: str = "") -> KubetrayError:
    """Network and discovery failures raised by MSAL or requests; anything else is logged with an id."""
    if isinstance(exc, KubetrayError):
        return exc
    if hasattr(exc, "_error"):  # msal's MsalServiceError: a provider error (or an HTTP status) as an exception
        service_error = getattr(exc, "_error", None)
        if isinstance(service_error, str) and service_error:
            return from_result({"error": service_error, "error_description": getattr(exc, "_error_description", "")})
        status = _first_line(str(exc.args[0])) if exc.args else "an error"
        return ProviderUnreachable(f"the identity provider at {authority} answered {status}; try again in a minute")
    if isinstance(exc, ValueError) and "JSON" in type(exc).__name__ + str(exc)[:60]:
        return ProviderUnreachable(f"{authority} answered with something that is not JSON; is a proxy in the way?")
    if isinstance(exc, requests.exceptions.RequestException):
        return _network(exc, authority)
    if isinstance(exc, ValueError):
        return ProviderUnreachable(f"{authority} is not usable as a sign-in authority: {_first_line(str(exc))}")
    during = f" while {doing}" if doing else ""
    return unexpected(log, exc, f"unexpected error from MSAL{during}")


def _network(exc: requests.exceptions.RequestException, authority: str) -> ProviderUnreachable:
    """Name the host that failed: with instance discovery it is Microsoft's, not the authority."""
    url = str(getattr(exc.request, "url", "") or "") if exc.request is not None else ""
    failed_host = (urlsplit(url).hostname or "") if url else ""
    authority_host = urlsplit(authority).hostname or ""
    if failed_host and failed_host != authority_host and "/discovery/instance" in url:
        hint = (
            f"; {authority_host} is not a Microsoft sign-in host, so add --disable-instance-discovery to the "
            "kubeconfig's get-token arguments" if authority_host and not is_microsoft_host(authority_host)
            else "; check the network, HTTPS_PROXY and NO_PROXY"
        )
        return ProviderUnreachable(
            f"cannot reach {failed_host} for MSAL's instance discovery of {authority} ({type(exc).__name__}){hint}"
        )
    where = failed_host if failed_host and failed_host != authority_host else authority
    if isinstance(exc, requests.exceptions.SSLError):
        return ProviderUnreachable(
            f"TLS verification failed for {where}; if a proxy or private CA is in the way, "
            "point REQUESTS_CA_BUNDLE at its certificate"
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return ProviderUnreachable(f"{where} did not answer in time; check the network or proxy")
    return ProviderUnreachable(
        f"cannot reach {where} ({type(exc).__name__}); check the network, HTTPS_PROXY and NO_PROXY"
    )

"""Identity-provider errors in plain words: one sentence saying what happened and one saying the fix.

Used wherever a person reads an identity provider's refusal: the daemon's error messages (and so the
shim's stderr and the tray's notifications) and ``kubetray doctor``. Standard library only.

Entra reports ``AADSTS<number>`` codes (in ``error_codes`` and at the start of
``error_description``); OAuth's device flow reports ``error`` strings. Both are looked up here; an
error not in the catalogue is shown with the provider's own code, description and correlation id,
because that is what its support pages and a tenant admin can search for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from shim.text import printable

__all__ = ["ENTRA", "OAUTH", "Explanation", "describe", "entra_codes", "first_line", "lookup", "printable"]

_AADSTS = re.compile(r"AADSTS(\d+)")


@dataclass(frozen=True)
class Explanation:
    """What happened (``what``) and what to do about it (``fix``), each one sentence."""

    what: str
    fix: str


_SIGN_IN = "sign in again with `kubetray login` (or run kubectl in a terminal)"

# AADSTS numbers → explanation. Kept to errors a kubectl user can act on.
ENTRA: dict[int, Explanation] = {
    50076: Explanation(
        "your organisation requires multi-factor authentication for this sign-in",
        f"{_SIGN_IN} and complete the MFA prompt in the browser",
    ),
    50079: Explanation(
        "your organisation requires you to register for multi-factor authentication",
        f"{_SIGN_IN} and follow the MFA registration steps in the browser",
    ),
    53003: Explanation(
        "a Conditional Access policy blocked the sign-in (device, location or app not allowed)",
        "sign in from a compliant device or network, or ask your tenant admin which policy applies",
    ),
    50158: Explanation(
        "a Conditional Access policy needs an extra check the sign-in did not pass",
        f"{_SIGN_IN} in a browser on a device your organisation manages",
    ),
    700082: Explanation(
        "your sign-in expired because it was not used for a long time",
        _SIGN_IN,
    ),
    50173: Explanation(
        "your sign-in was revoked, usually because your password changed or was reset",
        _SIGN_IN,
    ),
    65001: Explanation(
        "the application has not been consented to in your tenant",
        "ask your tenant admin to grant admin consent for the client id in your kubeconfig",
    ),
    50020: Explanation(
        "your account is not a member of the cluster's tenant",
        "sign in with an account of that tenant (check --tenant-id and --login-hint), or ask to be invited",
    ),
    50034: Explanation(
        "the account you signed in with does not exist in this tenant",
        "check the user name and --tenant-id, then sign in again with `kubetray login`",
    ),
    7000215: Explanation(
        "the client secret is wrong",
        "set the service principal's current secret (AAD_SERVICE_PRINCIPAL_CLIENT_SECRET or the kubeconfig)",
    ),
    7000222: Explanation(
        "the client secret has expired",
        "create a new secret for the service principal and put it where the kubeconfig expects it",
    ),
    700016: Explanation(
        "the client id is not an application in this tenant",
        "check --client-id and --tenant-id in the kubeconfig (`kubetray doctor` shows which context uses them)",
    ),
    90002: Explanation(
        "the tenant does not exist",
        "check --tenant-id in the kubeconfig; it must be your tenant's GUID or domain name",
    ),
    50126: Explanation(
        "the user name or password is wrong",
        "check the credentials, then sign in again with `kubetray login`",
    ),
    50057: Explanation(
        "your account is disabled",
        "ask your tenant admin to enable it",
    ),
    50055: Explanation(
        "your password has expired",
        f"change it (for example at the sign-in page), then {_SIGN_IN}",
    ),
    65004: Explanation(
        "the sign-in was declined",
        f"{_SIGN_IN} and accept the request",
    ),
}

# OAuth 2.0 / device-flow error strings (RFC 6749, RFC 8628) → explanation.
OAUTH: dict[str, Explanation] = {
    "expired_token": Explanation(
        "the device code expired before it was entered",
        f"{_SIGN_IN} and enter the new code within its lifetime",
    ),
    "access_denied": Explanation(
        "the sign-in was cancelled or declined in the browser",
        _SIGN_IN,
    ),
    "authorization_declined": Explanation(
        "the sign-in was declined",
        _SIGN_IN,
    ),
    "slow_down": Explanation(
        "the identity provider asked kubetray to poll more slowly",
        "wait a moment; the sign-in continues by itself",
    ),
    "invalid_client": Explanation(
        "the identity provider does not accept this client's credentials",
        "check the client id and secret or certificate in the kubeconfig",
    ),
}


def entra_codes(description: str, codes: Iterable[int] = ()) -> tuple[int, ...]:
    """The AADSTS numbers of an error: the explicit list, else the ones named in the description."""
    found = tuple(int(c) for c in codes)
    return found or tuple(int(c) for c in _AADSTS.findall(description or ""))


def lookup(error: str = "", codes: Iterable[int] = (), description: str = "") -> Explanation | None:
    """The explanation for an error, by AADSTS code first (more specific), then by OAuth error string."""
    for code in entra_codes(description, codes):
        if code in ENTRA:
            return ENTRA[code]
    return OAUTH.get(error)


def first_line(text: str) -> str:
    """The first non-empty line of a provider description, printable and cut to a readable length."""
    for line in printable(text or "", keep_newlines=True).split("\n"):
        if line.strip():
            return line.strip()[:300]
    return ""


def describe(error: str = "", codes: Iterable[int] = (), description: str = "", correlation_id: str = "") -> str:
    """One line for a person: the catalogue's sentence, or the provider's own words with its ids.

    The provider's code and correlation id are kept even for known errors: they are what an admin
    searches the sign-in logs for.
    """
    error, correlation_id = printable(error), printable(correlation_id)
    codes = entra_codes(description, codes)
    explanation = lookup(error, codes, description)
    suffix = f" (correlation id {correlation_id})" if correlation_id else ""
    if explanation is not None:
        ident = f"AADSTS{codes[0]}" if codes else ""
        ids = ", ".join(x for x in (error, ident, suffix[2:-1]) if x)
        return f"{explanation.what} ({ids}); {explanation.fix}"
    summary = first_line(description) or "no description"
    return f"the identity provider refused: {error or 'unknown_error'}: {summary}{suffix}"

"""The token endpoint's grants, one function each, found by ``grant_type`` in ``GRANT_HANDLERS``.

A handler takes the authority's state and the request form and returns the token response, or
raises EntraError. Adding client credentials or ROPC later is one function and one entry.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from ._entra import EntraError, missing_parameter
from ._state import CODE_LIFETIME, AuthorityState, iso_time

__all__ = ["GRANT_HANDLERS", "DEVICE_CODE_GRANT", "GrantHandler", "grant_counter_key"]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _invalid_grant(detail: str) -> EntraError:
    return EntraError("invalid_grant", 70000, f"Provided grant is invalid or malformed. {detail}")


GrantHandler = Callable[[AuthorityState, dict[str, str]], dict[str, Any]]


def _pkce_s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def grant_authorization_code(state: AuthorityState, form: dict[str, str]) -> dict[str, Any]:
    """``authorization_code``: PKCE S256, same client and redirect_uri, single use."""
    client_id = state.check_client(form.get("client_id"))
    if not form.get("code"):
        raise missing_parameter("code")
    with state.lock:
        code = state.codes.get(form["code"])
        if code is None:
            raise EntraError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if code.redeemed:
            raise EntraError(
                "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with "
                "a new valid code or use an existing refresh token.",
            )
        if state.clock() > code.issued_at + CODE_LIFETIME:
            raise EntraError(
                "invalid_grant", 70008, "The provided authorization code or refresh token has expired due "
                "to inactivity. Send a new interactive authorization request for this user and resource.",
            )
        if code.client_id != client_id:
            raise _invalid_grant("The code was issued to a different client.")
        if form.get("redirect_uri") != code.redirect_uri:
            raise _invalid_grant("The provided value for 'redirect_uri' does not match the authorization request.")
        if not form.get("code_verifier"):
            raise missing_parameter("code_verifier")
        if _pkce_s256(form["code_verifier"]) != code.challenge:
            raise EntraError(
                "invalid_grant", 501481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            )
        code.redeemed = True
        user = state.users[code.user_oid]
    response = state.mint(
        client_id=client_id, user=user, scope=code.scope, nonce=code.nonce,
        want_client_info=form.get("client_info") == "1",
    )
    state.count("sign_ins")
    return response


def grant_device_code(state: AuthorityState, form: dict[str, str]) -> dict[str, Any]:
    """Device code polling: pending until approved, then one token response."""
    client_id = state.check_client(form.get("client_id"))
    if not form.get("device_code"):
        raise missing_parameter("device_code")
    with state.lock:
        device = state.devices.get(form["device_code"])
        if device is None or device.client_id != client_id:
            raise _invalid_grant("The provided value for the input parameter 'device_code' is not valid.")
        now = state.clock()
        if device.status == "pending" and device.approve_at is not None and now >= device.approve_at:
            device.status, device.user_oid = "approved", state.current_oid
        if device.status in ("pending", "approved") and now >= device.expires_at:
            raise EntraError(
                "expired_token", 70020,
                "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
            )
        if device.status == "pending":
            raise EntraError(
                "authorization_pending", 70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        if device.status == "denied":
            raise EntraError("authorization_declined", 65004, "User declined to consent to access the app.")
        if device.status == "redeemed" or device.user_oid is None:
            raise _invalid_grant("The device code was already redeemed.")
        device.status = "redeemed"
        user = state.users[device.user_oid]
    response = state.mint(
        client_id=client_id, user=user, scope=device.scope,
        want_client_info=form.get("client_info") == "1",
    )
    state.count("sign_ins")
    return response


def grant_refresh_token(state: AuthorityState, form: dict[str, str]) -> dict[str, Any]:
    """``refresh_token``: rotating; a used, revoked or inactive token fails as Entra's would."""
    client_id = state.check_client(form.get("client_id"))
    if not form.get("refresh_token"):
        raise missing_parameter("refresh_token")
    with state.lock:
        grant = state.refresh_tokens.get(form["refresh_token"])
        if grant is None:
            raise EntraError("invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant.status == "revoked":
            raise EntraError(
                "invalid_grant", 50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The "
                f"user might have changed or reset their password. The grant was issued on "
                f"'{iso_time(grant.issued_at)}' and the TokensValidFrom date (before which tokens are not valid) "
                f"for this user is '{iso_time(state.tokens_valid_from)}'.",
            )
        if grant.status == "inactive":
            raise EntraError(
                "invalid_grant", 700082,
                f"The refresh token has expired due to inactivity. The token was issued on "
                f"{iso_time(grant.issued_at)} and was inactive for 90.00:00:00.",
            )
        if grant.status == "rotated":
            raise _invalid_grant("The refresh token was already redeemed (the test authority rotates them).")
        if grant.client_id != client_id:
            raise _invalid_grant("The refresh token was issued to a different client.")
        grant.status = "rotated"
        user = state.users[grant.user_oid]
    # Entra refresh tokens are multi-resource: the request may name another resource than the original.
    scope = form.get("scope") or grant.scope
    if "offline_access" not in scope.split():
        scope += " offline_access"  # a refresh always returns the rotated refresh token
    response = state.mint(
        client_id=client_id, user=user, scope=scope, want_client_info=form.get("client_info") == "1"
    )
    state.count("refreshes")
    return response


GRANT_HANDLERS: dict[str, GrantHandler] = {
    "authorization_code": grant_authorization_code,
    DEVICE_CODE_GRANT: grant_device_code,
    "refresh_token": grant_refresh_token,
}


def grant_counter_key(grant_type: str) -> str:
    """``token.<name>`` with the URN prefix dropped: ``token.device_code``, ``token.refresh_token``."""
    return "token." + (grant_type.rsplit(":", 1)[-1] or "none")

"""The token endpoint's grants, one function each, found by ``grant_type`` in ``GRANT_HANDLERS``.

A handler takes the authority's state and the request form and returns the token response, or
raises EntraError. Adding client credentials or ROPC later is one function and one entry.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ._entra import EntraError, missing_parameter
from ._jwt import b64url
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
    """``refresh_token``: each use returns a new refresh token; a revoked or inactive one fails as Entra's
    would, and a used one too when the authority is set to single-use tokens."""
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
        if state.single_use_refresh_tokens:
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


_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _invalid_client(code: int, text: str) -> EntraError:
    return EntraError("invalid_client", code, text, status=401)


def _check_assertion(state: AuthorityState, client_id: str, assertion: str) -> None:
    """A certificate assertion (signed by the registered certificate's key) or a federated one."""
    if assertion in state.federated_assertions.get(client_id, set()):
        return
    pem = state.client_certificates.get(client_id)
    if pem is None:
        raise _invalid_client(700024, "Client assertion is not within its valid time range or is not accepted.")
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise _invalid_client(50027, "JWT token is invalid or malformed.") from None
    with state.lock:
        state.assertions_seen.append(dict(header))
    cert = x509.load_pem_x509_certificate(pem)
    x5t = b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1 by definition
    x5t256 = b64url(cert.fingerprint(hashes.SHA256()))
    # MSAL pads x5t with "=" (RFC 7515 says unpadded); Entra accepts either, so does this.
    if str(header.get("x5t", "")).rstrip("=") != x5t and str(header.get("x5t#S256", "")).rstrip("=") != x5t256:
        raise _invalid_client(700027, "The certificate with identifier used to sign the client assertion is not "
                              "registered on application.")
    try:
        claims = jwt.decode(assertion, cert.public_key(), algorithms=["RS256", "PS256"],  # type: ignore[arg-type]
                            options={"verify_aud": False, "require": ["exp", "aud", "iss", "sub"]})
    except jwt.PyJWTError:
        raise _invalid_client(700027, "Client assertion contains an invalid signature.") from None
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise _invalid_client(700023, "Client assertion audience or issuer is invalid.")
    if not (str(claims["aud"]).startswith(state.host_url) and str(claims["aud"]).endswith("/oauth2/v2.0/token")):
        raise _invalid_client(700212, "No matching federated identity record found for presented assertion audience.")


def _authenticate_client(state: AuthorityState, form: dict[str, str]) -> str:
    client_id = state.check_client(form.get("client_id"))
    if form.get("client_assertion_type") == _JWT_BEARER:
        _check_assertion(state, client_id, form.get("client_assertion", ""))
    elif "client_secret" in form:
        if state.client_secrets.get(client_id) != form["client_secret"]:
            raise _invalid_client(7000215, "Invalid client secret provided. Ensure the secret being sent in the "
                                  f"request is the client secret value, not the client secret ID, for a secret added "
                                  f"to app '{client_id}'.")
    else:
        raise _invalid_client(7000218, "The request body must contain the following parameter: 'client_assertion' "
                              "or 'client_secret'.")
    return client_id


def grant_client_credentials(state: AuthorityState, form: dict[str, str]) -> dict[str, Any]:
    """``client_credentials``: a secret, a certificate assertion or a federated assertion; app token."""
    client_id = _authenticate_client(state, form)
    scope = form.get("scope", "")
    if not scope.strip().endswith("/.default"):
        raise EntraError("invalid_scope", 1002012, "The provided value for scope is not valid. Client credential "
                         "flows must have a scope value with /.default suffixed to the resource identifier.")
    response = state.mint_app(client_id=client_id, scope=scope)
    state.count("sign_ins")
    return response


def grant_password(state: AuthorityState, form: dict[str, str]) -> dict[str, Any]:
    """``password`` (ROPC): a registered user's password; a user token with a refresh token."""
    client_id = state.check_client(form.get("client_id"))
    for name in ("username", "password"):
        if not form.get(name):
            raise missing_parameter(name)
    with state.lock:
        user = next((u for u in state.users.values() if u.upn.lower() == form["username"].lower()), None)
        ok = user is not None and state.passwords.get(user.upn) == form["password"]
    if not ok or user is None:
        raise EntraError("invalid_grant", 50126, "Error validating credentials due to invalid username or password.")
    response = state.mint(client_id=client_id, user=user, scope=form.get("scope", ""),
                          want_client_info=form.get("client_info") == "1")
    state.count("sign_ins")
    return response


GRANT_HANDLERS: dict[str, GrantHandler] = {
    "authorization_code": grant_authorization_code,
    DEVICE_CODE_GRANT: grant_device_code,
    "refresh_token": grant_refresh_token,
    "client_credentials": grant_client_credentials,
    "password": grant_password,
}


def grant_counter_key(grant_type: str) -> str:
    """``token.<name>`` with the URN prefix dropped: ``token.device_code``, ``token.refresh_token``."""
    return "token." + (grant_type.rsplit(":", 1)[-1] or "none")

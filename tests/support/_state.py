"""The test authority's memory: users, codes, device codes, refresh tokens, counters, minting.

``AuthorityState`` holds everything a sign-in leaves behind behind one lock, plus the front-channel
steps (authorize, device code issue and approval) and the minting of token responses. The token
endpoint's grants live in ``_grants``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._entra import (
    EntraError,
    ScopeRequest,
    TestUser,
    access_token_claims,
    client_info,
    id_token_claims,
    missing_parameter,
    parse_scopes,
)
from ._jwt import KeySet

__all__ = ["AuthorityState", "AuthCode", "DeviceGrant", "RefreshGrant", "CODE_LIFETIME", "iso_time"]

CODE_LIFETIME = 600  # Entra's authorization codes live about ten minutes
_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def iso_time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")


@dataclass
class AuthCode:
    """An authorization code waiting for its single redemption."""

    client_id: str
    redirect_uri: str
    scope: str
    challenge: str
    nonce: str | None
    user_oid: str
    issued_at: float
    redeemed: bool = False


@dataclass
class DeviceGrant:
    """A device-code sign-in: pending until the scripted user approves or denies its user code."""

    client_id: str
    user_code: str
    scope: str
    expires_at: float
    approve_at: float | None
    status: str = "pending"  # pending | approved | denied | redeemed
    user_oid: str | None = None


@dataclass
class RefreshGrant:
    """One refresh token's record; rotation leaves the old record behind as ``rotated``."""

    client_id: str
    user_oid: str
    scope: str
    issued_at: float
    status: str = "active"  # active | rotated | revoked | inactive


class AuthorityState:
    """Everything the authority remembers; all methods are thread-safe."""

    def __init__(
        self,
        *,
        tenant_id: str,
        host_url: str,
        user: TestUser,
        access_token_lifetime: int,
        device_poll_interval: int,
        device_code_lifetime: int = 900,
        auto_approve_device_after: float | None = None,
        echo_default_scope: bool = True,
        allowed_client_ids: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.lock = threading.RLock()
        self.tenant_id = tenant_id
        self.host_url = host_url
        self.issuer_v1 = f"https://sts.windows.net/{tenant_id}/"
        self.issuer_v2 = f"{host_url}/{tenant_id}/v2.0"
        self.keys = KeySet()
        self.users: dict[str, TestUser] = {user.oid: user}
        self.current_oid = user.oid
        self.access_token_lifetime = access_token_lifetime
        self.id_token_lifetime = 3600
        self.device_poll_interval = device_poll_interval
        self.device_code_lifetime = device_code_lifetime
        self.auto_approve_device_after = auto_approve_device_after
        self.echo_default_scope = echo_default_scope
        self.allowed_client_ids = allowed_client_ids
        self.clock = clock
        self.counters: Counter[str] = Counter()
        self.codes: dict[str, AuthCode] = {}
        self.devices: dict[str, DeviceGrant] = {}
        self.user_codes: dict[str, str] = {}  # user code -> device code
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.last_authorize: dict[str, str] = {}
        self.tokens_valid_from = 0.0
        self.issued: list[str] = []  # every token handed out, so tests can prove none leaked
        # Entra keeps a redeemed refresh token valid (until it expires or is revoked); a test can ask for
        # single-use tokens to check a client always stores the newest one.
        self.single_use_refresh_tokens = False
        # Confidential clients and ROPC users (see _grants): client id -> secret / certificate PEM,
        # client id -> accepted federated assertions, upn -> password.
        self.client_secrets: dict[str, str] = {}
        self.client_certificates: dict[str, bytes] = {}
        self.federated_assertions: dict[str, set[str]] = {}
        self.passwords: dict[str, str] = {}
        self.assertions_seen: list[dict[str, Any]] = []  # JOSE headers of client assertions received

    # --- people ---------------------------------------------------------------------------------
    @property
    def user(self) -> TestUser:
        """The person who signs in next."""
        with self.lock:
            return self.users[self.current_oid]

    @user.setter
    def user(self, user: TestUser) -> None:
        # Refreshes look users up by oid, so a changed group list shows up in refreshed tokens.
        with self.lock:
            self.users[user.oid] = user
            self.current_oid = user.oid

    def add_user(self, user: TestUser) -> None:
        """Another account of the tenant: it signs in when a request's login_hint names it."""
        with self.lock:
            self.users[user.oid] = user

    def user_for(self, login_hint: str | None) -> TestUser:
        """Who signs in for an authorize request: the account its login_hint names (as Entra pre-selects
        it and the person goes on with it), else the current user. Called with the lock held."""
        hint = (login_hint or "").strip().lower()
        named = next((u for u in self.users.values() if hint and u.upn.lower() == hint), None)
        return named or self.users[self.current_oid]

    def count(self, key: str, n: int = 1) -> None:
        """Bump a request counter."""
        with self.lock:
            self.counters[key] += n

    def check_client(self, client_id: str | None) -> str:
        """Entra's answers to a missing or unknown public client id."""
        if not client_id:
            raise missing_parameter("client_id")
        if self.allowed_client_ids is not None and client_id not in self.allowed_client_ids:
            raise EntraError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
            )
        return client_id

    # --- front channel --------------------------------------------------------------------------
    def authorize(self, params: dict[str, str]) -> dict[str, str]:
        """Validate an authorization request; return the fields to post back to ``redirect_uri``."""
        client_id = self.check_client(params.get("client_id"))
        for name in ("redirect_uri", "response_type", "code_challenge"):
            if not params.get(name):
                raise missing_parameter(name)
        if params["response_type"] != "code":
            raise EntraError(
                "unsupported_response_type", 900144, "The provided value for 'response_type' is not valid."
            )
        if params.get("code_challenge_method") != "S256":
            raise EntraError(
                "invalid_request", 501491, "Invalid size of Code_Challenge parameter or method is not S256."
            )
        parse_scopes(params.get("scope", ""))  # reject several resources here, as Entra does
        code = "1.T." + secrets.token_urlsafe(48)
        with self.lock:
            self.last_authorize = dict(params)
            user = self.user_for(params.get("login_hint"))
            self.codes[code] = AuthCode(
                client_id=client_id,
                redirect_uri=params["redirect_uri"],
                scope=params.get("scope", ""),
                challenge=params["code_challenge"],
                nonce=params.get("nonce"),
                user_oid=user.oid,
                issued_at=self.clock(),
            )
        fields = {"code": code, "client_info": client_info(user, self.tenant_id)}
        if "state" in params:
            fields["state"] = params["state"]
        fields["session_state"] = secrets.token_hex(16)
        return fields

    def start_device_flow(self, form: dict[str, str]) -> dict[str, Any]:
        """Answer ``/oauth2/v2.0/devicecode``."""
        client_id = self.check_client(form.get("client_id"))
        scope = form.get("scope", "")
        parse_scopes(scope)
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))
        device_code = "DAQABIQEAAA" + secrets.token_urlsafe(96)
        now = self.clock()
        after = self.auto_approve_device_after
        with self.lock:
            self.devices[device_code] = DeviceGrant(
                client_id=client_id,
                user_code=user_code,
                scope=scope,
                expires_at=now + self.device_code_lifetime,
                approve_at=None if after is None else now + after,
            )
            self.user_codes[user_code] = device_code
        uri = f"{self.host_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": uri,
            "expires_in": self.device_code_lifetime,
            "interval": self.device_poll_interval,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
            f"{user_code} to authenticate.",
        }

    def decide_device_code(self, user_code: str, *, approve: bool = True) -> bool:
        """The scripted user enters ``user_code`` and approves (or denies). False if unknown or done."""
        with self.lock:
            device = self.devices.get(self.user_codes.get(user_code.strip().upper(), ""))
            if device is None or device.status != "pending" or device.expires_at <= self.clock():
                return False
            device.status = "approved" if approve else "denied"
            device.user_oid = self.current_oid
            return True

    def pending_user_codes(self) -> list[str]:
        """User codes still waiting for the scripted user, oldest first."""
        with self.lock:
            now = self.clock()
            return [d.user_code for d in self.devices.values() if d.status == "pending" and d.expires_at > now]

    # --- tokens ---------------------------------------------------------------------------------
    def mint(
        self,
        *,
        client_id: str,
        user: TestUser,
        scope: str,
        nonce: str | None = None,
        want_client_info: bool = False,
    ) -> dict[str, Any]:
        """A successful token response in Entra's shape."""
        scopes: ScopeRequest = parse_scopes(scope)
        now = int(self.clock())
        with self.lock:
            lifetime = self.access_token_lifetime
        key = self.keys.current
        access = access_token_claims(
            user=user, tenant_id=self.tenant_id, client_id=client_id, scopes=scopes,
            issuer_v1=self.issuer_v1, now=now, lifetime=lifetime,
        )
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": scopes.granted(echo_default=self.echo_default_scope),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": key.sign(access),
        }
        if "offline_access" in scopes.oidc:
            token = "1.T." + secrets.token_urlsafe(96)
            with self.lock:
                self.refresh_tokens[token] = RefreshGrant(client_id, user.oid, scope, self.clock())
            response["refresh_token"] = token
        if "openid" in scopes.oidc:
            response["id_token"] = key.sign(
                id_token_claims(
                    user=user, tenant_id=self.tenant_id, client_id=client_id, issuer_v2=self.issuer_v2,
                    now=now, lifetime=self.id_token_lifetime, nonce=nonce,
                )
            )
        if want_client_info:
            response["client_info"] = client_info(user, self.tenant_id)
        with self.lock:
            self.issued.extend(response[k] for k in ("access_token", "refresh_token", "id_token") if k in response)
        return response

    def mint_app(self, *, client_id: str, scope: str) -> dict[str, Any]:
        """An app-only token response (client credentials), shaped as Entra's v1 app tokens."""
        scopes = parse_scopes(scope)
        now = int(self.clock())
        with self.lock:
            lifetime = self.access_token_lifetime
        sp_oid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp/{client_id}"))
        claims = {
            "aud": scopes.resource, "iss": self.issuer_v1, "iat": now, "nbf": now - 300, "exp": now + lifetime,
            "appid": client_id, "appidacr": "2", "idtyp": "app", "oid": sp_oid, "sub": sp_oid,
            "tid": self.tenant_id, "roles": [], "ver": "1.0",
        }
        token = self.keys.current.sign(claims)
        with self.lock:
            self.issued.append(token)
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def end_refresh_tokens(self, status: str) -> int:
        """Mark every live refresh token ``revoked`` or ``inactive``; return how many."""
        with self.lock:
            live = [g for g in self.refresh_tokens.values() if g.status == "active"]
            for grant in live:
                grant.status = status
            self.tokens_valid_from = self.clock()
            return len(live)

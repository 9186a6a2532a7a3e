"""A local stand-in for Microsoft Entra ID's v2.0 endpoints, faithful enough for MSAL Python.

Point MSAL at it with ``PublicClientApplication(client_id, authority=f"{authority.url}/{tenant}",
instance_discovery=False, http_client=<session that trusts the test CA>)``. Any tenant segment
(a GUID, ``common``, ``organizations``, a domain) reaches the one configured tenant.

The scripted user is ``authority.user``; it signs in through the browser stand-in (authorization
code + PKCE, form_post) or by approving a device code. Tests steer and observe it through Python
methods, or from another process through ``GET /_test/counts`` and ``POST /_test/approve?code=``.

Standalone: ``python -m tests.support.authority --workdir DIR`` prints one JSON line
``{url, tenant_id, ca, ca_bundle, jwks_url, issuer_v1}`` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from ._authority_http import AuthorityHandler
from ._entra import EntraError, TestUser, access_token_claims, parse_scopes
from ._http import Fault, FaultList, ServerThread, TLSHTTPServer, body_bytes
from ._state import AuthorityState
from .tls import TestCA

__all__ = ["EntraAuthority", "TestUser", "DEFAULT_TENANT_ID", "DEFAULT_USER", "COUNTER_KEYS"]

DEFAULT_TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"
DEFAULT_USER = TestUser(
    upn="alex@contoso.example",
    oid="0b7c1a52-6f1e-4c39-9a0e-5d8b2c7f4e11",
    name="Alex Wilber",
    groups=("9f2c6b8e-1d3a-4e5f-8a7b-6c5d4e3f2a10", "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"),
)
# Counters always present in ``counts`` (zero until something happens).
COUNTER_KEYS = (
    "discovery", "jwks", "authorize", "devicecode", "devicelogin",
    "token.authorization_code", "token.device_code", "token.refresh_token", "token.client_credentials",
    "token.password",
    "sign_ins", "refreshes",
)
# Entra's multi-tenant aliases keep their own segment in the discovered endpoints.
_ALIASES = frozenset({"common", "organizations", "consumers"})


class EntraAuthority:
    """The stand-in Entra tenant: HTTPS on 127.0.0.1, a scripted user, counters and fault injection.

    The port is bound at construction, so ``url`` is known before ``start()``; always ``stop()``
    (or use it as a context manager) to release it.
    """

    def __init__(
        self,
        ca: TestCA,
        workdir: Path,
        *,
        tenant_id: str = DEFAULT_TENANT_ID,
        access_token_lifetime: int = 3600,
        device_poll_interval: int = 1,
        device_code_lifetime: int = 900,
        auto_approve_device_after: float | None = None,
        user: TestUser = DEFAULT_USER,
        echo_default_scope: bool = True,
        allowed_client_ids: frozenset[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ca = ca
        self.workdir = workdir
        self._faults = FaultList()
        self._holds: list[Hold] = []
        self._holds_lock = threading.Lock()
        context = ca.server_context(workdir, "authority")
        self._server = ServerThread(TLSHTTPServer(AuthorityHandler, context, self), "test-authority")
        self._state = AuthorityState(
            tenant_id=tenant_id, host_url=self._server.url, user=user,
            access_token_lifetime=access_token_lifetime, device_poll_interval=device_poll_interval,
            device_code_lifetime=device_code_lifetime, auto_approve_device_after=auto_approve_device_after,
            echo_default_scope=echo_default_scope, allowed_client_ids=allowed_client_ids, clock=clock,
        )

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> EntraAuthority:
        """Serve from a daemon thread; returns self for chaining."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and join every thread the server started."""
        self._server.stop()

    def __enter__(self) -> EntraAuthority:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``: the authority host (append ``/<tenant>`` for MSAL)."""
        return self._server.url

    host_url = url

    @property
    def tenant_id(self) -> str:
        """The tenant GUID every tenant segment maps to."""
        return self._state.tenant_id

    @property
    def authority_url(self) -> str:
        """``{url}/{tenant_id}``: what MSAL's ``authority=`` takes."""
        return f"{self.url}/{self.tenant_id}"

    @property
    def jwks_url(self) -> str:
        """Where the signing keys are published."""
        return f"{self.url}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def issuer_v1(self) -> str:
        """``iss`` of access tokens (v1, as Entra issues them for AKS)."""
        return self._state.issuer_v1

    @property
    def issuer_v2(self) -> str:
        """``iss`` of id_tokens and of the discovery document."""
        return self._state.issuer_v2

    @property
    def jwks(self) -> dict[str, Any]:
        """The JWKS document (public keys only)."""
        return self._state.keys.jwks()

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        """The discovery document for a tenant segment, shaped like Entra's v2.0 one."""
        segment = tenant if tenant in _ALIASES else self.tenant_id
        base = f"{self.url}/{segment}"
        issuer_tenant = "{tenantid}" if tenant in _ALIASES else self.tenant_id
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email",
            ],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
        }

    # --- the scripted user ------------------------------------------------------------------------
    @property
    def user(self) -> TestUser:
        """Who signs in next (and whose later changes show up in refreshed tokens)."""
        return self._state.user

    @user.setter
    def user(self, user: TestUser) -> None:
        self._state.user = user

    def add_user(self, user: TestUser) -> None:
        """Register another account of the tenant; an authorize request whose login_hint names it signs
        it in (the current user stays the default)."""
        self._state.add_user(user)

    @property
    def auto_approve_device_after(self) -> float | None:
        """Seconds after issue when a device code approves itself; None waits for approval."""
        return self._state.auto_approve_device_after

    @auto_approve_device_after.setter
    def auto_approve_device_after(self, seconds: float | None) -> None:
        self._state.auto_approve_device_after = seconds

    def approve_device_code(self, user_code: str) -> bool:
        """The user enters ``user_code`` and approves; False when unknown, expired or already used."""
        return self._state.decide_device_code(user_code, approve=True)

    def deny_device_code(self, user_code: str) -> bool:
        """The user enters ``user_code`` and declines."""
        return self._state.decide_device_code(user_code, approve=False)

    def pending_user_codes(self) -> list[str]:
        """User codes waiting for approval, oldest first."""
        return self._state.pending_user_codes()

    def last_authorize_params(self) -> dict[str, str]:
        """The query of the latest valid authorization request (to check prompt, login_hint, ...)."""
        with self._state.lock:
            return dict(self._state.last_authorize)

    # --- confidential clients and passwords ---------------------------------------------------------
    def register_client_secret(self, client_id: str, secret: str) -> None:
        """Let ``client_id`` authenticate with ``secret`` (client credentials)."""
        with self._state.lock:
            self._state.client_secrets[client_id] = secret

    def register_client_certificate(self, client_id: str, certificate_pem: bytes) -> None:
        """Let ``client_id`` authenticate with assertions signed by this certificate's key."""
        with self._state.lock:
            self._state.client_certificates[client_id] = certificate_pem

    def accept_federated_assertion(self, client_id: str, assertion: str) -> None:
        """Accept ``assertion`` (a projected service-account token) as ``client_id``'s credential."""
        with self._state.lock:
            self._state.federated_assertions.setdefault(client_id, set()).add(assertion)

    def revoke_federated_assertion(self, client_id: str, assertion: str) -> None:
        """Stop accepting ``assertion`` (it has rotated out)."""
        with self._state.lock:
            self._state.federated_assertions.get(client_id, set()).discard(assertion)

    def set_password(self, upn: str, password: str) -> None:
        """The scripted user's password for the ROPC grant."""
        with self._state.lock:
            self._state.passwords[upn] = password

    def issue_app_token(self, client_id: str, scope: str) -> dict[str, Any]:
        """An app token response minted directly (for managed-identity stand-ins); counted as issued."""
        return self._state.mint_app(client_id=client_id, scope=scope)

    def client_assertion_headers(self) -> list[dict[str, Any]]:
        """JOSE headers of the certificate assertions received (x5t, x5c, alg), oldest first."""
        with self._state.lock:
            return list(self._state.assertions_seen)

    # --- tokens -----------------------------------------------------------------------------------
    def revoke_refresh_tokens(self) -> int:
        """Revoke every refresh token issued so far (AADSTS50173); returns how many."""
        return self._state.end_refresh_tokens("revoked")

    def expire_refresh_tokens(self) -> int:
        """Age every refresh token out as inactive (AADSTS700082); returns how many."""
        return self._state.end_refresh_tokens("inactive")

    def set_access_token_lifetime(self, seconds: int) -> None:
        """Lifetime (``expires_in``) of access tokens issued from now on."""
        with self._state.lock:
            self._state.access_token_lifetime = seconds

    def set_id_token_lifetime(self, seconds: int) -> None:
        """Lifetime (``exp`` - ``iat``) of id_tokens issued from now on."""
        with self._state.lock:
            self._state.id_token_lifetime = seconds

    def rotate_signing_key(self, *, keep_old: bool = True) -> str:
        """Sign with a new key from now on; returns its kid."""
        return self._state.keys.rotate(keep_old=keep_old).kid

    def issue_access_token(
        self, client_id: str, scope: str, *, lifetime: int | None = None, user: TestUser | None = None,
        **claims: Any,
    ) -> str:
        """Sign an access token directly (no HTTP, no counters); ``claims`` override any claim.

        A negative ``lifetime`` gives an already expired token; ``aud=...`` a wrong audience.
        """
        state = self._state
        now = int(state.clock())
        body = access_token_claims(
            user=user or state.user, tenant_id=state.tenant_id, client_id=client_id,
            scopes=parse_scopes(scope), issuer_v1=state.issuer_v1, now=now,
            lifetime=state.access_token_lifetime if lifetime is None else lifetime,
        )
        body.update(claims)
        return state.keys.current.sign(body)

    # --- counters and faults ------------------------------------------------------------------------
    def issued_secrets(self) -> list[str]:
        """Every access, refresh and id token this authority has issued (for leak checks)."""
        with self._state.lock:
            return list(self._state.issued)

    @property
    def counts(self) -> dict[str, int]:
        """A snapshot of the request counters (see COUNTER_KEYS; other token grants appear as seen)."""
        with self._state.lock:
            return {**dict.fromkeys(COUNTER_KEYS, 0), **self._state.counters}

    def reset_counts(self) -> None:
        """Zero every counter."""
        with self._state.lock:
            self._state.counters.clear()

    def hold_next(self, counter: str) -> Hold:
        """Make the next request counted as ``counter`` wait for ``Hold.release()``."""
        hold = Hold(counter)
        with self._holds_lock:
            self._holds.append(hold)
        return hold

    def take_hold(self, counter: str) -> Hold | None:
        """The armed hold for ``counter``, consumed (the request handler calls this)."""
        with self._holds_lock:
            for hold in self._holds:
                if hold.counter == counter:
                    self._holds.remove(hold)
                    return hold
        return None

    def fail_next(
        self, path_suffix: str, status: int, body: Any = None, headers: dict[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests whose path ends with ``path_suffix`` with ``status``.

        ``body`` may be bytes, str or a JSON-able object; None gives an Entra-shaped transient error.
        """
        if body is None:
            error = EntraError("temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")
            body = error.body(self.url)
        self._faults.add(Fault(path_suffix, status, body_bytes(body), dict(headers or {}), count))

    def clear_faults(self) -> None:
        """The provider recovers: disarm every fault ``fail_next`` armed."""
        self._faults.clear()


class Hold:
    """A slow authority on cue: the next request counted as ``counter`` (e.g. ``token.refresh_token``)
    waits until the test releases it, then is answered normally. No clock window: ``arrived`` says the
    request is there, ``release()`` lets it go on."""

    def __init__(self, counter: str) -> None:
        self.counter = counter
        self.arrived = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def wait(self, limit: float = 120.0) -> None:
        self.arrived.set()
        self._released.wait(limit)


def main(argv: list[str] | None = None) -> None:
    """Serve a standalone authority until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--tenant-id", default=DEFAULT_TENANT_ID)
    parser.add_argument("--access-token-lifetime", type=int, default=3600)
    parser.add_argument("--device-poll-interval", type=int, default=1)
    parser.add_argument("--auto-approve-device-after", type=float, default=None)
    args = parser.parse_args(argv)
    ca = TestCA.load_or_create(args.workdir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    authority = EntraAuthority(
        ca, args.workdir, tenant_id=args.tenant_id, access_token_lifetime=args.access_token_lifetime,
        device_poll_interval=args.device_poll_interval, auto_approve_device_after=args.auto_approve_device_after,
    )
    with authority:
        info = {
            "url": authority.url, "tenant_id": authority.tenant_id, "ca": str(ca.path),
            "ca_bundle": str(ca.bundle(args.workdir)), "jwks_url": authority.jwks_url,
            "issuer_v1": authority.issuer_v1,
        }
        print(json.dumps(info), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()

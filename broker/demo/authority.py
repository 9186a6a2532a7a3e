"""The demo's sign-in authority: just enough of Entra ID's v2.0 endpoints for MSAL.

The token endpoint is HTTPS (MSAL requires it); the pages a person sees (the sign-in page and the
device-code page) are served over plain HTTP on loopback, so a real browser shows them without a
certificate warning. The only user is the demo user; signing in is one button (or entering a code).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from broker.demo.http import Handler, Server
from broker.demo.pki import DemoPki, b64url

TENANT = "7e0d5a1c-0000-4000-8000-00000000de70"  # the demo tenant
USER = {"upn": "demo@kubetray.example", "oid": "11111111-2222-4333-8444-555555555555", "name": "Demo User",
        "groups": ["kubetray-demo-admins", "kubetray-demo-developers"]}
_ROUTE = re.compile(r"^/(?P<tenant>[^/]+)/(?P<rest>.+)$")


@dataclass
class DemoAuthority:
    """The authority's state; ``start()`` serves it, ``stop()`` ends it."""

    pki: DemoPki
    auto_approve: bool = False
    lifetime: int = 3600
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)
    _devices: dict[str, dict[str, Any]] = field(default_factory=dict)
    _refresh: set[str] = field(default_factory=set)

    def start(self) -> DemoAuthority:
        self._tls = Server(_AuthorityHandler, self, self.pki.server_context()).start()
        self._pages = Server(_AuthorityHandler, self, None).start()
        return self

    def stop(self) -> None:
        self._tls.stop()
        self._pages.stop()

    @property
    def url(self) -> str:
        return self._tls.url

    @property
    def issuer(self) -> str:
        return f"{self.url}/{TENANT}/v2.0"

    def discovery(self) -> dict[str, Any]:
        base, pages = f"{self.url}/{TENANT}", f"{self._pages.url}/{TENANT}"
        return {
            "issuer": self.issuer, "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{pages}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/discovery/v2.0/keys", "response_modes_supported": ["query", "form_post"],
            "response_types_supported": ["code"], "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "profile", "offline_access"],
        }

    # -- grants ------------------------------------------------------------------------------------
    def new_code(self, params: dict[str, str]) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = params
        return code

    def new_device(self, form: dict[str, str]) -> dict[str, Any]:
        user_code = "".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ23456789") for _ in range(8))
        device_code = secrets.token_urlsafe(32)
        with self._lock:
            self._devices[device_code] = {"user_code": user_code, "form": form, "approved": False,
                                          "expires": time.time() + 600,
                                          "approve_at": time.time() + 1 if self.auto_approve else None}
        uri = f"{self._pages.url}/devicelogin"
        return {"device_code": device_code, "user_code": user_code, "verification_uri": uri, "interval": 1,
                "expires_in": 600, "message": f"To sign in, use a web browser to open the page {uri} "
                f"and enter the code {user_code} to authenticate."}

    def approve(self, user_code: str) -> bool:
        with self._lock:
            for device in self._devices.values():
                if device["user_code"] == user_code.strip().upper() and time.time() < device["expires"]:
                    device["approved"] = True
                    return True
        return False

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type", "")
        with self._lock:
            if grant == "authorization_code":
                params = self._codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "").encode()
                challenge = b64url(hashlib.sha256(verifier).digest())
                if params is None or params.get("code_challenge") != challenge:
                    return 400, _error("invalid_grant", 70000, "The code is invalid or was already used.")
                return 200, self._mint(form, params.get("scope", ""), params.get("nonce"))
            if grant.endswith("device_code"):
                device = self._devices.get(form.get("device_code", ""))
                if device is None or time.time() > device["expires"]:
                    return 400, _error("expired_token", 70020, "The device code has expired.")
                if device["approve_at"] is not None and time.time() >= device["approve_at"]:
                    device["approved"] = True
                if not device["approved"]:
                    return 400, _error("authorization_pending", 70016, "Authorization is pending.")
                del self._devices[form["device_code"]]
                return 200, self._mint(form, device["form"].get("scope", ""), None)
            if grant == "refresh_token" and form.get("refresh_token") in self._refresh:
                self._refresh.discard(form["refresh_token"])
                return 200, self._mint(form, form.get("scope", ""), None)
        return 400, _error("invalid_grant", 70000, "The grant is invalid.")

    def _mint(self, form: dict[str, str], scope: str, nonce: str | None) -> dict[str, Any]:
        client_id, now = form.get("client_id", ""), int(time.time())
        resource = next((s.rsplit("/", 1)[0] for s in scope.split() if "/" in s), "")
        times = {"iat": now, "nbf": now - 300, "exp": now + self.lifetime}
        access = {"aud": resource, "iss": self.issuer, **times, "appid": client_id, "tid": TENANT,
                  "oid": USER["oid"], "upn": USER["upn"], "name": USER["name"], "groups": USER["groups"],
                  "scp": "user.read", "sub": USER["oid"], "ver": "1.0"}
        refresh = secrets.token_urlsafe(48)
        self._refresh.add(refresh)
        ident = {"aud": client_id, "iss": self.issuer, **times, "tid": TENANT, "oid": USER["oid"],
                 "sub": USER["oid"], "preferred_username": USER["upn"], "name": USER["name"], "ver": "2.0",
                 **({"nonce": nonce} if nonce else {})}
        info = base64.urlsafe_b64encode(json.dumps({"uid": USER["oid"], "utid": TENANT}).encode()).decode()
        return {"token_type": "Bearer", "scope": f"{resource}/.default openid profile offline_access",
                "expires_in": self.lifetime, "access_token": self.pki.sign(access), "refresh_token": refresh,
                "id_token": self.pki.sign(ident), "client_info": info.rstrip("=")}


def _error(error: str, code: int, text: str) -> dict[str, Any]:
    return {"error": error, "error_description": f"AADSTS{code}: {text}", "error_codes": [code],
            "correlation_id": str(uuid.uuid4())}


class _AuthorityHandler(Handler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        app: DemoAuthority = self.app
        path = self.path_only
        if path == "/devicelogin":
            self._devicelogin(app)
            return
        match = _ROUTE.match(path)
        rest = match["rest"] if match else ""
        if rest == "v2.0/.well-known/openid-configuration":
            self.send_json(200, app.discovery())
        elif rest == "discovery/v2.0/keys":
            self.send_json(200, app.pki.jwks())
        elif rest == "oauth2/v2.0/devicecode" and self.command == "POST":
            self.send_json(200, app.new_device(self.form()))
        elif rest == "oauth2/v2.0/token" and self.command == "POST":
            self.send_json(*app.token(self.form()))
        elif rest == "oauth2/v2.0/authorize" and self.command == "GET" and app.auto_approve:
            self._approve(app, self.query())  # approved in advance: straight back to the app
        elif rest == "oauth2/v2.0/authorize" and self.command == "GET":
            self._sign_in_page(self.query())
        elif rest == "oauth2/v2.0/authorize" and self.command == "POST":
            self._approve(app, self.form())
        else:
            self.send_json(404, _error("invalid_request", 90002, f"Endpoint {path} not found."))

    def _sign_in_page(self, params: dict[str, str]) -> None:
        hidden = "".join(f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
                         for k, v in params.items())
        self.send_html(200, "Sign in - kubetray demo",
                       f"<h1>kubetray demo sign-in</h1><p>This page stands in for your organisation's sign-in. "
                       f"Sign in as <b>{USER['upn']}</b>?</p>"
                       f"<form method='post' action='{html.escape(self.path_only)}'>{hidden}"
                       "<button type='submit'>Sign in</button></form>")

    def _approve(self, app: DemoAuthority, params: dict[str, str]) -> None:
        fields = {"code": app.new_code(params), "state": params.get("state", ""),
                  "client_info": b64url(json.dumps({"uid": USER["oid"], "utid": TENANT}).encode())}
        inputs = "".join(f"<input type='hidden' name='{k}' value='{html.escape(v)}'>" for k, v in fields.items())
        action = html.escape(params.get("redirect_uri", ""))
        self.send_html(200, "Signing in", f"<form method='post' action='{action}'>{inputs}"
                       "<p>Signed in. You can close this tab.</p></form>"
                       "<script>document.forms[0].submit()</script>")

    def _devicelogin(self, app: DemoAuthority) -> None:
        code = (self.form() if self.command == "POST" else self.query()).get("code", "")
        if code and app.approve(code):
            self.send_html(200, "Signed in", "<p>Signed in to the kubetray demo. You can close this tab.</p>")
        else:
            note = "<p>That code did not work; check it and try again.</p>" if code else ""
            self.send_html(200, "Enter code", f"<h1>kubetray demo</h1>{note}<form method='post'>"
                           "<label>Code <input name='code' autofocus></label> <button>Next</button></form>")

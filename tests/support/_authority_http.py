"""HTTP routing for the Entra stand-in: paths to endpoints, Entra's error pages and form_post pages.

The work happens in ``AuthorityState`` and the grant handlers; this module only speaks HTTP.
"""

from __future__ import annotations

import re
from html import escape
from typing import TYPE_CHECKING, Any

from ._entra import EntraError, missing_parameter
from ._grants import GRANT_HANDLERS, grant_counter_key
from ._http import RigHandler

if TYPE_CHECKING:
    from .authority import EntraAuthority

__all__ = ["AuthorityHandler"]

# A tenant segment is anything but the rig's own "_test" namespace.
_TENANT_ROUTE = re.compile(r"^/(?P<tenant>[^/_][^/]*)/(?P<rest>.+)$")


class AuthorityHandler(RigHandler):
    """HTTP routing for EntraAuthority; the work happens in AuthorityState and the grant handlers."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    @property
    def _authority(self) -> EntraAuthority:
        return self.server.owner  # type: ignore[attr-defined, no-any-return]

    def _dispatch(self) -> None:
        authority = self._authority
        path = self.path_only
        try:
            if path.startswith("/_test/"):
                self._test_control(path)
                return
            endpoint, tenant = self._route(path)
            # Token requests are counted per grant type: token.device_code counts every poll.
            counter = grant_counter_key(self.form().get("grant_type", "")) if endpoint == "token" else endpoint
            authority._state.count(counter)
            hold = authority.take_hold(counter)
            if hold is not None:
                hold.wait()
            fault = authority._faults.take(path)
            if fault is not None:
                self.send_fault(fault)
                return
            self._endpoints[endpoint](self, tenant)
        except EntraError as error:
            self.send_json(error.status, error.body(authority.url))

    # path after the tenant segment -> (endpoint, method)
    _ROUTES = {
        "v2.0/.well-known/openid-configuration": ("discovery", "GET"),
        "discovery/v2.0/keys": ("jwks", "GET"),
        "discovery/keys": ("jwks", "GET"),
        "oauth2/v2.0/authorize": ("authorize", "GET"),
        "oauth2/v2.0/devicecode": ("devicecode", "POST"),
        "oauth2/v2.0/token": ("token", "POST"),
        "oauth2/v2.0/logout": ("logout", "GET"),
    }

    def _route(self, path: str) -> tuple[str, str]:
        """Return ``(endpoint, tenant segment)`` or raise Entra's error for the request."""
        if path == "/devicelogin":
            return "devicelogin", ""
        match = _TENANT_ROUTE.match(path)
        if match is None or match["rest"] not in self._ROUTES:
            raise EntraError("invalid_request", 90002, f"Tenant or endpoint '{path}' not found.", status=404)
        endpoint, method = self._ROUTES[match["rest"]]
        # authorize also takes POST (response_mode aside, Entra accepts a posted request).
        if self.command != method and endpoint != "authorize":
            raise EntraError(
                "invalid_request", 900561,
                f"The endpoint only accepts {method} requests. Received a {self.command} request.",
            )
        return endpoint, match["tenant"]

    # --- endpoints -------------------------------------------------------------------------------
    def _discovery(self, tenant: str) -> None:
        self.send_json(200, self._authority.openid_configuration(tenant))

    def _jwks(self, tenant: str) -> None:
        self.send_json(200, self._authority.jwks)

    def _logout(self, tenant: str) -> None:
        self._page(200, "Signed out", "<p>You have signed out of your account.</p>")

    def _authorize(self, tenant: str) -> None:
        state = self._authority._state
        params = self.query() if self.command == "GET" else self.form()
        try:
            state.check_client(params.get("client_id"))
            if not params.get("redirect_uri"):
                raise missing_parameter("redirect_uri")
        except EntraError as error:
            # Without a trustworthy redirect Entra shows its own error page, never redirects.
            self._page(400, "Sign in", f"<p>AADSTS{error.code}: {escape(error.text)}</p>")
            return
        try:
            fields = state.authorize(params)
        except EntraError as error:
            fields = {"error": error.error, "error_description": f"AADSTS{error.code}: {error.text}"}
            if "state" in params:
                fields["state"] = params["state"]
        self._form_post(params["redirect_uri"], fields)

    def _devicecode(self, tenant: str) -> None:
        self.send_json(200, self._authority._state.start_device_flow(self.form()))

    def _token(self, tenant: str) -> None:
        form = self.form()
        grant_type = form.get("grant_type")
        if not grant_type:
            raise missing_parameter("grant_type")
        handler = GRANT_HANDLERS.get(grant_type)
        if handler is None:
            raise EntraError(
                "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
            )
        self.send_json(200, handler(self._authority._state, form))

    def _devicelogin(self, tenant: str) -> None:
        params = {**self.query(), **(self.form() if self.command == "POST" else {})}
        code = params.get("otc") or params.get("code")
        if not code:
            self._page(
                200, "Enter code",
                '<form method="post" action="/devicelogin"><input name="otc"/><input type="submit"/></form>',
            )
        elif self._authority.approve_device_code(code):
            self._page(200, "Signed in", "<p>You have signed in to the application on your device.</p>")
        else:
            self._page(400, "Enter code", "<p>That code didn't work. Check the code and try again.</p>")

    _endpoints: dict[str, Any] = {
        "discovery": _discovery, "jwks": _jwks, "logout": _logout, "authorize": _authorize,
        "devicecode": _devicecode, "token": _token, "devicelogin": _devicelogin,
    }

    # --- test controls ---------------------------------------------------------------------------
    def _test_control(self, path: str) -> None:
        authority = self._authority
        if path == "/_test/counts" and self.command == "GET":
            self.send_json(200, authority.counts)
        elif path == "/_test/approve" and self.command == "POST":
            code = self.query().get("code") or self.form().get("code", "")
            approved = authority.approve_device_code(code)
            self.send_json(200 if approved else 404, {"approved": approved})
        elif path == "/_test/revoke" and self.command == "POST":
            self.send_json(200, {"revoked": authority.revoke_refresh_tokens()})
        elif path == "/_test/reset_counts" and self.command == "POST":
            authority.reset_counts()
            self.send_json(200, {})
        else:
            self.send_json(404, {"error": "unknown test control"})

    # --- HTML ------------------------------------------------------------------------------------
    def _page(self, status: int, title: str, body_html: str) -> None:
        html = f"<!DOCTYPE html><html><head><title>{escape(title)}</title></head><body>{body_html}</body></html>"
        self.send_bytes(status, html.encode("utf-8"), "text/html; charset=utf-8")

    def _form_post(self, action: str, fields: dict[str, str]) -> None:
        """Entra's response_mode=form_post page: hidden inputs that a script submits at once."""
        inputs = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(v)}" />' for k, v in fields.items()
        )
        html = (
            "<html><head><title>Working...</title></head><body>"
            f'<form method="POST" name="hiddenform" action="{escape(action)}">{inputs}'
            "<noscript><p>Script is disabled. Click Submit to continue.</p>"
            '<input type="submit" value="Submit" /></noscript></form>'
            '<script language="javascript">document.forms[0].submit();</script></body></html>'
        )
        self.send_bytes(200, html.encode("utf-8"), "text/html; charset=utf-8")

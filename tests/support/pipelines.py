"""A stand-in for Azure DevOps' OIDC token endpoint (the job's ``SYSTEM_OIDCREQUESTURI``), over TLS.

``POST <url>?api-version=7.1&serviceConnectionId=<id>`` with ``Authorization: Bearer <SYSTEM_ACCESSTOKEN>``
answers ``{"oidcToken": "…"}``: a fresh token each time, which the test authority is told to accept as
the service connection's federated credential (as Entra trusts the service connection's issuer).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support._http import RigHandler, ServerThread, TLSHTTPServer
from tests.support.authority import EntraAuthority
from tests.support.tls import TestCA


@dataclass
class OidcRequest:
    """What one request carried (never the access token itself: whether it matched)."""

    api_version: str
    service_connection_id: str
    bearer_ok: bool
    fed_auth_redirect: str


class _Handler(RigHandler):
    def do_POST(self) -> None:  # noqa: N802
        owner: PipelinesOidc = self.server.owner  # type: ignore[attr-defined]
        query = self.query()
        request = OidcRequest(query.get("api-version", ""), query.get("serviceConnectionId", ""),
                              self.headers.get("Authorization") == f"Bearer {owner.access_token}",
                              self.headers.get("X-TFS-FedAuthRedirect", ""))
        with owner.lock:
            owner.requests.append(request)
        if not request.bearer_ok:
            self.send_json(401, {"message": "TF400813: The user is not authorized to access this resource."})
            return
        if request.service_connection_id != owner.service_connection_id:
            self.send_json(404, {"message": "service connection not found"})
            return
        token = "ado-oidc-" + secrets.token_urlsafe(24)
        owner.authority.accept_federated_assertion(owner.client_id, token)
        with owner.lock:
            owner.issued.append(token)
        self.send_json(200, {"oidcToken": token})


@dataclass
class PipelinesOidc:
    """One job's OIDC endpoint; ``url`` is the job's SYSTEM_OIDCREQUESTURI."""

    ca: TestCA
    workdir: Path
    authority: EntraAuthority
    client_id: str
    service_connection_id: str
    access_token: str = field(default_factory=lambda: "ado-job-" + secrets.token_urlsafe(24))
    requests: list[OidcRequest] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: ServerThread | None = None

    def start(self) -> PipelinesOidc:
        context = self.ca.server_context(self.workdir, "pipelines-oidc")
        self._thread = ServerThread(TLSHTTPServer(_Handler, context, self), "test-pipelines-oidc")
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._thread is not None
        return f"{self._thread.url}/org/project/_apis/distributedtask/hubs/build/plans/p1/jobs/j1/oidctoken"

    def secrets(self) -> list[str]:
        """Every value a leak check must not find: the job's access token and each OIDC token issued."""
        with self.lock:
            return [self.access_token, *self.issued]

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.stop()

    def __enter__(self) -> PipelinesOidc:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

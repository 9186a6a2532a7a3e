"""The demo's API server: checks bearer tokens as AKS does and serves one pod and ``auth whoami``.

Discovery is the legacy (unaggregated) form, which every kubectl falls back to.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import jwt

from broker.demo.http import Handler, Server
from broker.demo.pki import DemoPki

_AUTHN = "authentication.k8s.io"
_PODS = re.compile(r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/pods$")
_CREATED = "2024-01-01T00:00:00Z"


def _status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": reason,
            "reason": reason, "code": code}


def _pod(ns: str) -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "hello-kubetray", "namespace": ns, "uid": "6b1f5c2e-0d3a-4c8e-9f7a-2e4d6c8b0a1f",
                         "resourceVersion": "1", "creationTimestamp": _CREATED},
            "spec": {"containers": [{"name": "hello", "image": "hello:1"}]},
            "status": {"phase": "Running"}}


def _pods(ns: str, table: bool) -> dict[str, Any]:
    if not table:
        return {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": [_pod(ns)]}
    columns = ["Name", "Ready", "Status", "Restarts", "Age"]
    age = f"{(dt.datetime.now(dt.timezone.utc) - dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)).days}d"
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
            "columnDefinitions": [{"name": c, "type": "string", "format": "name" if c == "Name" else "",
                                   "description": c, "priority": 0} for c in columns],
            "rows": [{"cells": ["hello-kubetray", "1/1", "Running", "0", age],
                      "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": _pod(ns)["metadata"]}}]}


@dataclass
class DemoApiServer:
    """Accepts tokens signed by the demo authority for ``audience`` issued to ``client_id``."""

    pki: DemoPki
    issuer: str
    audience: str
    client_id: str

    def start(self) -> DemoApiServer:
        self._server = Server(_ApiHandler, self, self.pki.server_context()).start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    def user(self, header: str) -> dict[str, Any] | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = self.pki.verify(token.strip(), audience=self.audience, issuer=self.issuer)
        except jwt.PyJWTError:
            return None
        if claims.get("appid") != self.client_id:
            return None
        return {"username": claims.get("upn"), "uid": claims.get("oid"),
                "groups": [*claims.get("groups", []), "system:authenticated"]}


class _ApiHandler(Handler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        app: DemoApiServer = self.app
        path = self.path_only
        if path == "/version":  # public, as on a real cluster; kubectl's version dispatcher reads it
            self.send_json(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"})
            return
        user = app.user(self.headers.get("Authorization", ""))
        if user is None:
            self.send_json(401, _status(401, "Unauthorized"))
            return
        versions = [{"groupVersion": f"{_AUTHN}/v1", "version": "v1"}]
        if path == "/api":
            self.send_json(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": app.url.removeprefix("https://")}]})
        elif path == "/apis":
            self.send_json(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": _AUTHN, "versions": versions, "preferredVersion": versions[0]}]})
        elif path == "/api/v1":
            self.send_json(200, {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
                 "verbs": ["get", "list"], "shortNames": ["po"]}]})
        elif path == f"/apis/{_AUTHN}/v1":
            self.send_json(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{_AUTHN}/v1",
                                 "resources": [{"name": "selfsubjectreviews", "singularName": "selfsubjectreview",
                                                "namespaced": False, "kind": "SelfSubjectReview",
                                                "verbs": ["create"]}]})
        elif (match := _PODS.match(path)) and self.command == "GET":
            self.send_json(200, _pods(match["ns"] or "default", "as=Table" in self.headers.get("Accept", "")))
        elif path == f"/apis/{_AUTHN}/v1/selfsubjectreviews" and self.command == "POST":
            self.body()
            self.send_json(201, {"kind": "SelfSubjectReview", "apiVersion": f"{_AUTHN}/v1",
                                 "metadata": {"creationTimestamp": _CREATED}, "status": {"userInfo": user}})
        else:
            self.send_json(404, _status(404, "NotFound"))

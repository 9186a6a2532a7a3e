"""A local HTTPS stand-in for kube-apiserver that checks bearer tokens as AKS's Entra integration does.

It serves just enough for ``kubectl get pods`` and ``kubectl auth whoami`` (kubectl 1.27-1.33):
discovery, one fake pod in every namespace, and SelfSubjectReview. Every other request without a
valid token gets kube-apiserver's 401 ``Status``.

Standalone: ``python -m tests.support.apiserver --workdir DIR --jwks-url URL --issuer ISS
--audience AUD [--client-id ID ...] [--jwks-ca FILE]`` prints ``{url, ca}`` and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from . import _kube
from ._bearer import JwksCache, TokenPolicy, TokenRejected, token_digest, verify_bearer
from ._http import Fault, FaultList, RigHandler, ServerThread, TLSHTTPServer, body_bytes
from .tls import TestCA

__all__ = ["ApiServer", "TokenPolicy"]

# Readable without credentials, as kube-apiserver's system:public-info-viewer role allows.
_PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
_PODS = re.compile(r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/pods(?:/(?P<name>[^/]+))?$")
_SSR = re.compile(rf"^/apis/{re.escape(_kube.AUTHN_GROUP)}/(?P<version>v1|v1beta1|v1alpha1)/selfsubjectreviews$")
_AUTHN_DISCOVERY = re.compile(rf"^/apis/{re.escape(_kube.AUTHN_GROUP)}/(?P<version>v1|v1beta1|v1alpha1)$")


class _ApiHandler(RigHandler):
    """Authenticates, then routes; the answers come from ``_kube``."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    @property
    def _api(self) -> ApiServer:
        return self.server.owner  # type: ignore[attr-defined, no-any-return]

    def _dispatch(self) -> None:
        api = self._api
        path = self.path_only
        fault = api._faults.take(path)
        if fault is not None:
            self.send_fault(fault)
            return
        header = self.headers.get("Authorization", "")
        if not header and path in _PUBLIC_PATHS:
            api._count("anonymous")
            self._public(path)
            return
        user = self._authenticate(header)
        if user is None:
            # The same body kube-apiserver sends; kubectl prints "You must be logged in to the server".
            self.send_json(401, _kube.status(401, "Unauthorized", "Unauthorized"))
            return
        self._serve(path, user)

    def _authenticate(self, header: str) -> dict[str, Any] | None:
        api = self._api
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            api._reject("no bearer token")
            return None
        token = token.strip()
        try:
            user = verify_bearer(token, api.policy, api._keys)
        except TokenRejected as error:
            api._reject(str(error))
            return None
        api._accept(token)
        return user

    def _public(self, path: str) -> None:
        if path == "/version":
            self.send_json(200, _kube.version_info(self._api.server_version))
        else:
            self.send_bytes(200, b"ok", "text/plain; charset=utf-8")

    def _serve(self, path: str, user: dict[str, Any]) -> None:
        api = self._api
        if self.command == "GET":
            if path in _PUBLIC_PATHS:
                self._public(path)
            elif path == "/api":
                self.send_json(200, _kube.api_versions(api.url.removeprefix("https://")))
            elif path == "/apis":
                self.send_json(200, _kube.api_group_list())
            elif path == "/api/v1":
                self.send_json(200, _kube.core_resources())
            elif match := _AUTHN_DISCOVERY.match(path):
                self.send_json(200, _kube.authn_resources(match["version"]))
            elif match := _PODS.match(path):
                self._pods(match["ns"], match["name"])
            else:
                self._not_found(path)
        elif self.command == "POST" and (match := _SSR.match(path)):
            self.body()  # the request carries nothing the answer needs
            self.send_json(201, _kube.self_subject_review(match["version"], user))
        else:
            self._not_found(path)

    def _pods(self, namespace: str | None, name: str | None) -> None:
        ns = namespace or "default"
        if name is not None:
            if name != _kube.pod(ns)["metadata"]["name"]:
                self.send_json(404, _kube.status(404, "NotFound", f'pods "{name}" not found'))
            else:
                self.send_json(200, _kube.pod(ns))
        elif _kube.wants_table(self.headers.get("Accept", "")):
            self.send_json(200, _kube.pod_table(ns))
        else:
            self.send_json(200, _kube.pod_list(ns))

    def _not_found(self, path: str) -> None:
        self.send_json(404, _kube.status(404, "NotFound", "the server could not find the requested resource"))


class ApiServer:
    """The kube-apiserver stand-in: HTTPS on 127.0.0.1 and bearer tokens verified against a JWKS.

    The port is bound at construction; always ``stop()`` (or use it as a context manager).
    """

    def __init__(
        self,
        ca: TestCA,
        workdir: Path,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        client_ids: tuple[str, ...] = (),
        ca_bundle_for_jwks: Path | None = None,
        username_claim: str = "upn",
        username_prefix: str = "",
        groups_claim: str = "groups",
        leeway: int = 0,
        server_version: str = "v1.32.4",
    ) -> None:
        self.ca = ca
        self.policy = TokenPolicy(
            issuer=issuer, audience=audience, client_ids=tuple(client_ids), username_claim=username_claim,
            username_prefix=username_prefix, groups_claim=groups_claim, leeway=leeway,
        )
        self.server_version = server_version
        self._keys = JwksCache(jwks_url, ca_bundle_for_jwks)
        self._faults = FaultList()
        self._lock = threading.Lock()
        self._counts = {"ok": 0, "unauthorized": 0, "anonymous": 0}
        self._tokens_seen: list[str] = []
        self._last_rejection = ""
        context = ca.server_context(workdir, "apiserver")
        self._server = ServerThread(TLSHTTPServer(_ApiHandler, context, self), "test-apiserver")

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> ApiServer:
        """Serve from a daemon thread; returns self."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving and join every thread the server started."""
        self._server.stop()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT``: the kubeconfig's ``server``."""
        return self._server.url

    def write_kubeconfig(self, path: Path, token: str, namespace: str = "default") -> Path:
        """Write a kubeconfig for this server whose user holds a static bearer ``token``."""
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "rig",
            "clusters": [{"name": "rig", "cluster": {"server": self.url, "certificate-authority": str(self.ca.path)}}],
            "users": [{"name": "rig", "user": {"token": token}}],
            "contexts": [{"name": "rig", "context": {"cluster": "rig", "user": "rig", "namespace": namespace}}],
        }
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)
        return path

    # --- observations ----------------------------------------------------------------------------
    @property
    def counts(self) -> dict[str, int]:
        """``ok`` (requests with an accepted token), ``unauthorized`` (401s), ``anonymous`` (public paths)."""
        with self._lock:
            return dict(self._counts)

    @property
    def tokens_seen(self) -> list[str]:
        """SHA-256 hex of each accepted token, in order (never the token itself)."""
        with self._lock:
            return list(self._tokens_seen)

    @property
    def last_rejection(self) -> str:
        """Why the latest 401 was given (for assertion messages)."""
        with self._lock:
            return self._last_rejection

    @property
    def jwks_fetches(self) -> int:
        """How many times the signing keys were fetched."""
        return self._keys.fetches

    def reset_counts(self) -> None:
        """Zero the counters and forget the tokens seen."""
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)
            self._tokens_seen.clear()

    def fail_next(
        self, path_suffix: str, status: int, body: Any = None, headers: dict[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next ``count`` requests whose path ends with ``path_suffix`` with ``status``."""
        if body is None:
            body = _kube.status(status, "InternalError", "injected fault")
        self._faults.add(Fault(path_suffix, status, body_bytes(body), dict(headers or {}), count))

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1

    def _accept(self, token: str) -> None:
        with self._lock:
            self._counts["ok"] += 1
            self._tokens_seen.append(token_digest(token))

    def _reject(self, reason: str) -> None:
        with self._lock:
            self._counts["unauthorized"] += 1
            self._last_rejection = reason


def main(argv: list[str] | None = None) -> None:
    """Serve a standalone API server until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--jwks-url", required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--audience", required=True)
    parser.add_argument("--client-id", action="append", default=[])
    parser.add_argument("--jwks-ca", type=Path, default=None, help="CA bundle trusted for the JWKS URL")
    parser.add_argument("--username-claim", default="upn")
    parser.add_argument("--server-version", default="v1.32.4")
    args = parser.parse_args(argv)
    ca = TestCA.load_or_create(args.workdir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = ApiServer(
        ca, args.workdir, jwks_url=args.jwks_url, issuer=args.issuer, audience=args.audience,
        client_ids=tuple(args.client_id), ca_bundle_for_jwks=args.jwks_ca or ca.bundle(args.workdir),
        username_claim=args.username_claim, server_version=args.server_version,
    )
    with server:
        print(json.dumps({"url": server.url, "ca": str(ca.path)}), flush=True)
        stop.wait()


if __name__ == "__main__":
    main()

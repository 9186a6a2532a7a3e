"""Runs tests/oidc/server.mjs (panva's oidc-provider) as a real OpenID Provider for a test.

``OidcProvider(ca, workdir, token_ttl=...).start()`` issues the provider a certificate from the
rig's TestCA, starts node, waits for its JSON line and exposes issuer, jwks_url and the client ids.
The provider's stdout carries one JSON line per token-endpoint event; ``grants(type)`` counts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType

from tests.support.tls import TestCA

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "tests" / "oidc" / "server.mjs"
CLIENT_SECRET = "kubetray-oidc-client-secret-4c5d6e"  # noqa: S105 - a test credential
PASSWORD = "kubetray-oidc-password-7f8e9d"  # noqa: S105
_START_TIMEOUT = 60.0


class OidcProvider:
    """One provider process; always ``stop()`` it (or use it as a context manager)."""

    def __init__(self, ca: TestCA, workdir: Path, *, token_ttl: int = 3600) -> None:
        self.ca, self.workdir, self.token_ttl = ca, workdir, token_ttl
        self.issuer = self.jwks_url = self.native_client_id = self.confidential_client_id = ""
        self.resource = self.test_user = ""
        self.client_secret, self.password = CLIENT_SECRET, PASSWORD
        self._proc: subprocess.Popen[bytes] | None = None
        self._events: Counter[str] = Counter()
        self._errors: list[str] = []
        self._issued: list[str] = []  # every token the provider issued, in memory only (leak check)
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> OidcProvider:
        """Start node and wait until the provider listens; returns self."""
        node = shutil.which("node")
        if node is None or not (SERVER.parent / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("the test OpenID Provider is not installed (node and tests/oidc/node_modules); "
                               "run scripts/test")
        cert, key = self.ca.issue(self.workdir, "oidc-provider")
        env = {**os.environ, "OIDC_TOKEN_TTL": str(self.token_ttl), "OIDC_CLIENT_SECRET": self.client_secret,
               "OIDC_TEST_PASSWORD": self.password, "NODE_NO_WARNINGS": "1"}
        stderr = open(self.workdir / "provider.stderr", "wb")  # noqa: SIM115 - owned by the child
        with stderr:
            self._proc = subprocess.Popen([node, str(SERVER), "--cert", str(cert), "--key", str(key)],
                                          stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=env)
        assert self._proc.stdout is not None
        first: list[bytes] = []
        reader = threading.Thread(target=lambda: first.append(self._proc.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        reader.join(_START_TIMEOUT)
        if not first or not first[0].strip():
            alive = self._proc.poll() is None
            self.stop()
            raise RuntimeError(
                f"the test OpenID Provider did not start within {_START_TIMEOUT:.0f} s "
                f"({'still starting' if alive else 'it exited'}); see {self.workdir / 'provider.stderr'}"
            )
        doc = json.loads(first[0])
        self.issuer, self.jwks_url = doc["issuer"], doc["jwks_uri"]
        self.native_client_id, self.confidential_client_id = doc["native_client_id"], doc["confidential_client_id"]
        self.resource, self.test_user = doc["resource"], doc["test_user"]
        self._reader = threading.Thread(target=self._read_events, name="oidc-provider-events", daemon=True)
        self._reader.start()
        return self

    def _read_events(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                with self._lock:
                    self._events[f"{doc.get('event')}:{doc.get('grant_type') or doc.get('token_kind')}"] += 1
                    self._issued.extend(str(t) for t in doc.get("issued") or [])
                    if doc.get("event") == "grant.error":
                        self._errors.append(f"{doc.get('grant_type')}: {doc.get('error')}")

    def grants(self, grant_type: str) -> int:
        """How many token requests of ``grant_type`` succeeded (``device_code``: the full URN's tail)."""
        with self._lock:
            return sum(n for k, n in self._events.items()
                       if k.startswith("grant.success:") and k.endswith(grant_type))

    def events(self, name: str, detail: str = "") -> int:
        """How many events ``name`` (e.g. ``revocation.success``, detail ``refresh_token``) it reported."""
        with self._lock:
            return sum(n for k, n in self._events.items()
                       if k.split(":", 1)[0] == name and (not detail or k.split(":", 1)[1] == detail))

    def issued_secrets(self) -> list[str]:
        """Every access, ID and refresh token the provider issued (for the session's leak check)."""
        with self._lock:
            return list(self._issued)

    @property
    def grant_errors(self) -> list[str]:
        """Failed token requests, as ``grant_type: error`` (no tokens, no secrets)."""
        with self._lock:
            return list(self._errors)

    def stop(self) -> None:
        """SIGTERM the node process by its pid and wait for it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


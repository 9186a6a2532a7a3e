"""Generic OIDC (int128/kubelogin's flags) end to end against a real OpenID Provider nobody here wrote.

kubectl → shim → daemon → MSAL's ``oidc_authority`` → panva's oidc-provider (tests/oidc/server.mjs),
and the API-server stand-in checks the token as kube-apiserver's OIDC authenticator would: the ID
token (iss = issuer, aud = client id) or, with --oidc-use-access-token, the access token (aud = the
provider's resource).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.apiserver import ApiServer
from tests.support.oidc_provider import OidcProvider
from tests.support.rig import SUPPORT, TRANSCRIPTS, Rig
from tests.support.rig_fixtures import AUTHORITIES
from tests.support.tls import TestCA

pytestmark = pytest.mark.e2e


class ORig:
    """A rig whose identity provider is the real OpenID Provider and whose API server trusts it."""

    def __init__(self, rig: Rig, provider: OidcProvider) -> None:
        self.rig, self.provider = rig, provider
        self.ca_file = str(rig.ca.bundle(rig.root / "oidc-ca"))

    def kubeconfig(self, *extra: str, client_id: str = "", form: str = "get-token") -> None:
        """Point the kubeconfig's user at kubetray-shim with int128-style arguments."""
        self.rig.write_kubeconfig()
        path = self.rig.root / "kubeconfig"
        config = json.loads(path.read_text())
        head = ["oidc-login", "get-token"] if form == "oidc-login" else ["get-token"]
        config["users"][0]["user"]["exec"]["args"] = [
            *head, "--oidc-issuer-url", self.provider.issuer,
            "--oidc-client-id", client_id or self.provider.native_client_id,
            "--certificate-authority", self.ca_file, "--listen-address", "127.0.0.1:0", *extra,
        ]
        path.write_text(json.dumps(config))

    def ok(self) -> None:
        proc = self.rig.kubectl("get", "pods")
        assert proc.returncode == 0, proc.stderr.decode() + f"\nprovider errors: {self.provider.grant_errors}"


def _orig(desktop_session: object, ca: TestCA, tmp_path: Path, *, audience: str, username_claim: str = "sub",
          token_ttl: int = 3600, use_resource: bool = False) -> Iterator[ORig]:
    env = dict(desktop_session.env)  # type: ignore[attr-defined]
    try:
        provider = OidcProvider(ca, tmp_path / "oidc", token_ttl=token_ttl).start()
    except RuntimeError:  # seen once on a loaded machine: node never printed its first line; try once more
        provider = OidcProvider(ca, tmp_path / "oidc-again", token_ttl=token_ttl).start()
    AUTHORITIES.append(provider)  # its tokens join the session's leak check
    apiserver: ApiServer | None = None
    the_rig: Rig | None = None
    try:
        apiserver = ApiServer(
            ca, tmp_path / "apiserver", jwks_url=provider.jwks_url, issuer=provider.issuer,
            audience=provider.resource if use_resource else audience or provider.native_client_id,
            username_claim=username_claim, ca_bundle_for_jwks=ca.bundle(tmp_path / "apiserver-tls"),
        ).start()
        # Rig wants an Entra authority only to write its default kubeconfig, which ORig replaces.
        stand_in: Any = SimpleNamespace(tenant_id="oidc", url=provider.issuer)
        the_rig = Rig(root=tmp_path, base_env=env, authority=stand_in, apiserver=apiserver, ca=ca)
        the_rig.env["BROWSER"] = (f"{shlex.quote(sys.executable)} "
                                  f"{shlex.quote(str(SUPPORT / 'oidc_browser.py'))} %s &")
        yield ORig(the_rig, provider)
    finally:
        if the_rig is not None:
            the_rig.stop_daemon()
        if apiserver is not None:
            apiserver.stop()
        provider.stop()


@pytest.fixture
def orig(desktop_session: object, ca: TestCA, tmp_path: Path) -> Iterator[ORig]:
    """Provider + API server validating ID tokens (aud = the native client id)."""
    yield from _orig(desktop_session, ca, tmp_path, audience="")


@pytest.fixture
def orig_at(desktop_session: object, ca: TestCA, tmp_path: Path) -> Iterator[ORig]:
    """Provider + API server validating access tokens (aud = the provider's resource)."""
    yield from _orig(desktop_session, ca, tmp_path, audience="", use_resource=True)


@pytest.fixture
def orig_short(desktop_session: object, ca: TestCA, tmp_path: Path) -> Iterator[ORig]:
    """Provider issuing 20-second tokens, so a test outlives one."""
    yield from _orig(desktop_session, ca, tmp_path, audience="", token_ttl=20)


@pytest.mark.parametrize("form", ["get-token", "oidc-login"])
def test_authcode_with_pkce_signs_in_once_through_the_browser(orig: ORig, form: str) -> None:
    orig.kubeconfig(form=form)
    orig.ok()
    orig.ok()
    assert orig.rig.browser_launches() == 1
    assert orig.provider.grants("authorization_code") == 1
    assert orig.rig.apiserver.counts["ok"] >= 2


def test_authcode_serves_the_access_token_with_use_access_token(orig_at: ORig) -> None:
    orig_at.kubeconfig("--oidc-use-access-token")
    orig_at.ok()
    assert orig_at.rig.browser_launches() == 1


def test_the_id_token_is_refused_where_the_access_token_is_expected(orig_at: ORig) -> None:
    """The negative control of the test above: the stand-in really tells the two tokens apart."""
    orig_at.kubeconfig()
    proc = orig_at.rig.kubectl("get", "pods")
    assert proc.returncode != 0
    assert orig_at.rig.apiserver.counts["unauthorized"] >= 1


def test_device_code_is_completed_in_a_browser_elsewhere(orig: ORig) -> None:
    orig.kubeconfig("--grant-type", "device-code")
    seen: list[bytes] = []
    url: list[str] = []
    found = threading.Event()
    with subprocess.Popen(["kubectl", "get", "pods"], env=orig.rig.env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        stderr = proc.stderr
        assert stderr is not None and proc.stdout is not None

        def read() -> None:
            for line in stderr:
                seen.append(line)
                match = re.search(rb"open (https://\S+)", line)
                if match and not url:
                    url.append(match.group(1).decode())
                    found.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            assert found.wait(60), b"".join(seen).decode()
            # The person opens the link on another device: a browser process of its own, the rig's trust.
            visit = orig.rig.run(sys.executable, str(SUPPORT / "oidc_browser.py"), url[0], timeout=60,
                                 TEST_BROWSER_LOG="")
            assert visit.returncode == 0, visit.stderr.decode()
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
            out = proc.stdout.read()
            reader.join(5)
    TRANSCRIPTS.append(out + b"".join(seen))
    assert proc.returncode == 0, b"".join(seen).decode()
    assert orig.provider.grants("device_code") == 1
    assert orig.rig.browser_launches() == 0  # no local browser was opened
    orig.ok()  # and the next call is served without a second sign-in
    assert orig.provider.grants("device_code") == 1


@pytest.mark.slow
def test_after_the_tokens_expire_the_refresh_token_is_used_not_a_new_sign_in(orig_short: ORig) -> None:
    orig_short.kubeconfig()
    orig_short.ok()
    assert orig_short.provider.grants("authorization_code") == 1
    time.sleep(22)  # the 20-second ID token has expired
    orig_short.ok()
    assert orig_short.rig.browser_launches() == 1, (orig_short.provider.grant_errors,
                                                    orig_short.rig.daemon_log()[-3000:])
    assert orig_short.provider.grants("authorization_code") == 1
    assert orig_short.provider.grants("refresh_token") >= 1


def test_client_credentials_serves_the_access_token(orig_at: ORig) -> None:
    p = orig_at.provider
    orig_at.kubeconfig("--grant-type", "client-credentials", "--oidc-client-secret", p.client_secret,
                       "--oidc-use-access-token", client_id=p.confidential_client_id)
    orig_at.ok()
    orig_at.ok()
    assert p.grants("client_credentials") == 1
    assert orig_at.rig.browser_launches() == 0


def test_a_wrong_client_secret_fails_without_echoing_it(orig_at: ORig) -> None:
    orig_at.kubeconfig("--grant-type", "client-credentials", "--oidc-client-secret", "not-the-secret",
                       client_id=orig_at.provider.confidential_client_id)
    proc = orig_at.rig.kubectl("get", "pods")
    assert proc.returncode != 0
    assert b"invalid_client" in proc.stderr
    assert b"not-the-secret" not in proc.stderr


def test_password_grant_signs_in_without_a_browser(orig: ORig) -> None:
    p = orig.provider
    orig.rig.apiserver.policy = dataclasses.replace(orig.rig.apiserver.policy, audience=p.confidential_client_id)
    orig.kubeconfig("--grant-type", "password", "--username", p.test_user, "--password", p.password,
                    "--oidc-client-secret", p.client_secret, client_id=p.confidential_client_id)
    orig.ok()
    orig.ok()
    assert p.grants("password") == 1
    assert orig.rig.browser_launches() == 0


@pytest.mark.slow
def test_ten_parallel_kubectl_calls_share_one_sign_in(orig: ORig) -> None:
    orig.kubeconfig()
    with ThreadPoolExecutor(10) as pool:
        procs = list(pool.map(lambda _: orig.rig.kubectl("get", "pods"), range(10)))
    assert all(p.returncode == 0 for p in procs), [p.stderr.decode() for p in procs if p.returncode]
    assert orig.rig.browser_launches() == 1
    assert orig.provider.grants("authorization_code") == 1

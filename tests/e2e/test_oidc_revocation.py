"""Logout revokes the refresh token at a real OpenID Provider (RFC 7009), then deletes it locally.

The refresh token is read out of the keyring by the test process before logout (never printed) and
presented to the provider's token endpoint afterwards: the provider itself says it is dead.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest
import requests

from broker.execplugin.kubelogin_args import parse_exec
from broker.store.keyring_store import KeyringSecretStore, default_backend
from tests.e2e.test_oidc import ORig, orig  # noqa: F401 - the fixture
from tests.support.rig import TRANSCRIPTS

pytestmark = pytest.mark.e2e


def _kubeconfig_args(o: ORig) -> list[str]:
    config = json.loads((o.rig.root / "kubeconfig").read_text())
    return list(config["users"][0]["user"]["exec"]["args"])


def _refresh_tokens(o: ORig) -> list[str]:
    profile = parse_exec(_kubeconfig_args(o)).profile
    serialized = KeyringSecretStore(default_backend()).load(profile.cache_name)
    cache: dict[str, Any] = json.loads(serialized) if serialized else {}
    return [str(rt["secret"]) for rt in (cache.get("RefreshToken") or {}).values()]


def _refresh_with(o: ORig, token: str, *, client_id: str, secret: str = "") -> requests.Response:
    """Present a refresh token to the provider's token endpoint (what anyone holding a copy could do)."""
    discovery = requests.get(o.provider.issuer + "/.well-known/openid-configuration", verify=o.ca_file, timeout=10)
    data = {"grant_type": "refresh_token", "refresh_token": token, "client_id": client_id}
    auth = (client_id, secret) if secret else None
    return requests.post(discovery.json()["token_endpoint"], data=data, auth=auth, verify=o.ca_file, timeout=10)


def _revoked(o: ORig) -> int:
    """Refresh tokens the provider says it found and revoked, once its event line is read (or after 10 s)."""
    deadline = time.monotonic() + 10
    while o.provider.events("revocation.success", "refresh_token") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return o.provider.events("revocation.success", "refresh_token")


def _logout(o: ORig) -> str:
    proc = o.rig.kubetray("logout", "--all")
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def test_logout_revokes_a_public_clients_refresh_token_at_the_provider(orig: ORig) -> None:  # noqa: F811
    orig.kubeconfig()
    orig.ok()
    (token,) = _refresh_tokens(orig)
    out = _logout(orig)
    assert f"revoked the refresh token at {orig.provider.issuer}" in out
    assert _revoked(orig) == 1
    assert _refresh_tokens(orig) == []  # and gone from the keyring
    after = _refresh_with(orig, token, client_id=orig.provider.native_client_id)
    assert (after.status_code, after.json().get("error")) == (400, "invalid_grant")
    TRANSCRIPTS.append(after.content)


def test_a_confidential_client_authenticates_its_revocation_as_at_the_token_endpoint(orig: ORig) -> None:  # noqa: F811
    p = orig.provider
    orig.rig.apiserver.policy = dataclasses.replace(orig.rig.apiserver.policy, audience=p.confidential_client_id)
    orig.kubeconfig("--grant-type", "password", "--username", p.test_user, "--password", p.password,
                    "--oidc-client-secret", p.client_secret, client_id=p.confidential_client_id)
    orig.ok()
    (token,) = _refresh_tokens(orig)
    out = _logout(orig)
    assert "revoked the refresh token" in out, out
    assert _revoked(orig) == 1 and p.events("revocation.error") == 0
    after = _refresh_with(orig, token, client_id=p.confidential_client_id, secret=p.client_secret)
    assert (after.status_code, after.json().get("error")) == (400, "invalid_grant")


def test_when_revocation_fails_logout_says_so_and_still_deletes_the_local_copy(orig: ORig) -> None:  # noqa: F811
    orig.kubeconfig()
    orig.ok()
    assert len(_refresh_tokens(orig)) == 1
    orig.provider.stop()  # the provider is unreachable at logout
    out = _logout(orig)
    assert "could not revoke the refresh token" in out
    assert "deleted here but stays valid at the provider until it expires" in out
    assert _refresh_tokens(orig) == []
    (profile,) = orig.rig.status()["profiles"]
    assert profile["state"] == "sign_in_required"

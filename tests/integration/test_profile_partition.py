"""Profiles never weaken each other: a kubeconfig with --insecure-skip-tls-verify for the same issuer
and client id as a verified one gets a profile (and keyring cache) of its own, so the verified
kubeconfig's refresh token is only ever sent over the TLS its own kubeconfig trusted.

In-process: the real OIDC source (MSAL's oidc_authority) against the test authority's v2.0 issuer,
password grant, a dict keyring; every HTTP request is recorded with the ``verify`` it was sent with.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.core.clock import SystemClock
from broker.core.model import Parsed, RequestContext
from broker.core.service import TokenService
from broker.execplugin.kubelogin_args import parse_exec
from broker.sources._oidc import OidcSource
from broker.sources._oidc_http import VerifyingSession
from tests.support.authority import EntraAuthority
from tests.support.fakes import MemoryStore, ThreadSubmit
from tests.support.rig import CLIENT_ID
from tests.support.rig_fixtures import AUTHORITIES
from tests.support.tls import TestCA

PASSWORD = "partition-test-password-9f8e"  # noqa: S105 - a test credential
REQUESTS: list[tuple[str | bool, str]] = []  # (verify, url) of every request, in order


@pytest.fixture
def authority(ca: TestCA, tmp_path: Path) -> Iterator[EntraAuthority]:
    auth = EntraAuthority(ca, tmp_path / "authority").start()
    AUTHORITIES.append(auth)
    auth.set_password(auth.user.upn, PASSWORD)
    try:
        yield auth
    finally:
        auth.stop()


class _Recorded(VerifyingSession):
    """VerifyingSession that notes the ``verify`` each request was sent with."""

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        REQUESTS.append((self._verify, url))
        return super().get(url, params=params, headers=headers, **kwargs)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        REQUESTS.append((self._verify, url))
        return super().post(url, params=params, data=data, headers=headers, **kwargs)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MSAL warns that the password grant is deprecated
def test_an_insecure_kubeconfig_does_not_make_a_verified_ones_refreshes_unverified(
    authority: EntraAuthority, ca: TestCA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "idp-ca.pem"
    ca_file.write_bytes(ca.pem_bytes)
    REQUESTS.clear()
    store, submit, clock = MemoryStore(), ThreadSubmit(), SystemClock()
    source = OidcSource(store, clock, can_open_browser=lambda: False, stopping=threading.Event(),
                        session_factory=_Recorded)
    service = TokenService(source=source, clock=clock, submit=submit)
    base = ["get-token", "--oidc-issuer-url", authority.issuer_v2, "--oidc-client-id", CLIENT_ID,
            "--username", authority.user.upn, "--password", PASSWORD, "--oidc-use-access-token"]
    env = {"NO_PROXY": "127.0.0.1,localhost", "PATH": "/usr/bin"}  # a caller without REQUESTS_CA_BUNDLE
    try:
        secure = parse_exec([*base, "--certificate-authority", str(ca_file)], env, str(tmp_path))
        insecure = parse_exec([*base, "--insecure-skip-tls-verify"], env, str(tmp_path))
        assert secure.profile.key != insecure.profile.key
        assert secure.profile.cache_name != insecure.profile.cache_name

        def call(parsed: Parsed) -> None:
            ctx = RequestContext(env, str(tmp_path), parsed.secrets)
            service.get_token(parsed.profile, ctx, person_present=False).result(60)

        call(secure)
        call(insecure)  # the weaker kubeconfig signs in too, for the same issuer and client id
        assert any(verify is False for verify, _ in REQUESTS)  # it really went unverified
        before = len(REQUESTS)
        service.refresh(secure.profile.key).result(60)  # the verified kubeconfig's refresh token
        refresh = REQUESTS[before:]
        assert any(url.endswith("/token") for _, url in refresh), refresh
        assert all(isinstance(verify, str) for verify, _ in refresh), refresh  # its own CA, never False
        assert {secure.profile.cache_name, insecure.profile.cache_name} <= set(store.items)
        assert {v.key for v in service.snapshot()} == {secure.profile.key, insecure.profile.key}
    finally:
        submit.close()

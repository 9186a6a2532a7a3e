"""Logout wins races: a refresh (or sign-in) still running when logout arrives keeps nothing.

In-process: the real MSAL source against the test authority, the authority holding the refresh on cue
(no clock window), the TokenService and a dict keyring. Afterwards neither the service's memory nor
the keyring holds any token the authority issued, and the caller that waited is told why.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.core.clock import SystemClock
from broker.core.errors import LoginRequired
from broker.core.model import LOGIN_DEVICECODE, Profile, RequestContext
from broker.core.service import TokenService
from broker.core.state import ProfileStatus
from broker.sources._msal import MsalSource
from broker.sources.http import BoundedSession, Network
from tests.support.authority import EntraAuthority
from tests.support.fakes import MemoryStore, ThreadSubmit
from tests.support.rig import CLIENT_ID, SERVER_ID
from tests.support.rig_fixtures import AUTHORITIES
from tests.support.tls import TestCA


@pytest.fixture
def authority(ca: TestCA, tmp_path: Path) -> Iterator[EntraAuthority]:
    auth = EntraAuthority(ca, tmp_path / "authority", auto_approve_device_after=0.2).start()
    AUTHORITIES.append(auth)
    try:
        yield auth
    finally:
        auth.stop()


def _profile(authority: EntraAuthority) -> Profile:
    return Profile(login=LOGIN_DEVICECODE, authority=authority.authority_url, client_id=CLIENT_ID,
                   server_id=SERVER_ID, tenant_id=authority.tenant_id, instance_discovery=False)


def _everything_held(service: TokenService, store: MemoryStore) -> str:
    held = [v for v in store.items.values()]
    with service._lock:  # noqa: SLF001 - the test inspects what memory holds, which no API shows
        held += [s.token.access_token for s in service._states.values() if s.token is not None]  # noqa: SLF001
    return "\n".join(held)


def test_logout_during_a_slow_refresh_leaves_no_token_in_memory_or_keyring(
    authority: EntraAuthority, ca: TestCA, tmp_path: Path
) -> None:
    bundle = str(ca.bundle(tmp_path / "tls"))
    context = RequestContext({"REQUESTS_CA_BUNDLE": bundle, "NO_PROXY": "127.0.0.1,localhost"}, str(tmp_path))
    store, submit, clock = MemoryStore(), ThreadSubmit(), SystemClock()
    stopping = threading.Event()
    source = MsalSource(store, clock, http_client_factory=lambda network: BoundedSession(network=network),
                        can_open_browser=lambda: False, stopping=stopping)
    service = TokenService(source=source, clock=clock, submit=submit)
    profile = _profile(authority)
    try:
        first = service.login(profile, context).result(60)
        assert first.account == authority.user.upn
        assert store.items, "the sign-in must have written the cache to the keyring"
        hold = authority.hold_next("token.refresh_token")
        refreshing = service.refresh(profile.key)
        assert hold.arrived.wait(60), "the refresh never reached the authority"
        service.logout(profile.key)  # while the refresh is at the authority
        hold.release()  # the authority now answers it with fresh tokens
        with pytest.raises(LoginRequired) as err:
            refreshing.result(60)
        assert "signed out" in err.value.message
        assert service.cached(profile) is None
        assert [v.state for v in service.snapshot()] == [ProfileStatus.SIGN_IN_REQUIRED]
        assert store.load(profile.cache_name) is None
        held = _everything_held(service, store)
        issued = authority.issued_secrets()
        assert len(issued) >= 4  # access + refresh from the sign-in and from the held refresh
        assert not any(secret in held for secret in issued)
        # The next call starts afresh: nothing silent is left to use.
        with pytest.raises(LoginRequired):
            service.get_token(profile, context, person_present=False).result(60)
    finally:
        stopping.set()
        submit.close()


def test_a_network_from_the_caller_ignores_the_daemon_environment() -> None:
    network = Network.of({"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": ".corp.example,localhost",
                          "SSL_CERT_FILE": "/etc/ca.pem"})
    session = BoundedSession(network=network)
    assert session._session.trust_env is False and session._session.verify == "/etc/ca.pem"  # noqa: SLF001
    assert network.proxies_for("https://login.microsoftonline.com/t") == {
        "https": "http://proxy.example:3128", "http": "http://proxy.example:3128"}
    assert network.proxies_for("https://idp.corp.example/x") == {}
    assert network.proxies_for("http://localhost:8080/") == {}
    assert Network.of({}).from_caller is False
    assert BoundedSession(network=Network.of({}))._session.trust_env is True  # noqa: SLF001

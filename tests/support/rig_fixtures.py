"""Rig fixtures (imported by the integration and e2e conftests): a Rig per test on the run's private
keyring and D-Bus session."""

from __future__ import annotations

import shlex
import sys
import webbrowser
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from tests.support import browser
from tests.support._procs import child_pids, reap_children
from tests.support.apiserver import ApiServer
from tests.support.authority import EntraAuthority
from tests.support.rig import CLIENT_ID, SERVER_ID, Rig
from tests.support.session import IsolatedSession
from tests.support.tls import TestCA


class Issuer(Protocol):
    """Anything that issued tokens in this run: the test authorities, the OIDC providers, the demo's."""

    def issued_secrets(self) -> list[str]: ...


# Every issuer any test started, for the session's leak check (tests/e2e/conftest.py).
AUTHORITIES: list[Issuer] = []


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def bundle(ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The system roots plus the test CA, in one file (what REQUESTS_CA_BUNDLE names for in-process clients)."""
    return ca.bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture
def authority(ca: TestCA, tmp_path: Path) -> Iterator[EntraAuthority]:
    """A test authority of its own for the test, approving device codes at once (tests that need another
    behaviour define their own ``authority``)."""
    with EntraAuthority(ca, tmp_path / "authority", auto_approve_device_after=0.0) as server:
        yield server


@pytest.fixture
def rig(desktop_session: IsolatedSession, ca: TestCA, tmp_path: Path) -> Iterator[Rig]:
    revived = desktop_session.ensure_keyring()
    if revived:  # shown with this test's output: the run goes on, and the cause is on record
        print(f"rig: {revived}", file=sys.stderr)
    env = dict(desktop_session.env)
    authority = EntraAuthority(ca, tmp_path / "authority", auto_approve_device_after=0.3).start()
    AUTHORITIES.append(authority)
    apiserver = ApiServer(
        ca, tmp_path / "apiserver", jwks_url=authority.jwks_url, issuer=authority.issuer_v1,
        audience=SERVER_ID, client_ids=(CLIENT_ID,), ca_bundle_for_jwks=ca.bundle(tmp_path / "apiserver-tls"),
    ).start()
    the_rig = Rig(root=tmp_path, base_env=env, authority=authority, apiserver=apiserver, ca=ca)
    try:
        yield the_rig
    finally:
        the_rig.stop_daemon()
        apiserver.stop()
        authority.stop()
        if desktop_session.ensure_keyring():  # it went away during this test: the new one has the old items
            print("rig: gnome-keyring went away during this test and was started again", file=sys.stderr)
        _forget_kubetray_items()


def _forget_kubetray_items() -> None:
    """Delete what this test's daemon kept in the run's keyring.

    The next test's authority may get the same free port, hence the same authority URL and keyring entry;
    a token cache left behind would then be served to it, signed by keys its API server never saw.
    """
    import secretstorage

    connection = secretstorage.dbus_init()
    try:
        collection = secretstorage.get_default_collection(connection)
        for item in collection.search_items({"service": "kubetray"}):
            item.delete()
    finally:
        connection.close()


@pytest.fixture
def scripted_browser(tmp_path: Path, bundle: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """BROWSER set the way the daemon sets it; yields the launch log."""
    log = tmp_path / "browser.log"
    script = Path(browser.__file__).resolve()
    monkeypatch.setenv("BROWSER", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} %s &")
    monkeypatch.setenv("TEST_BROWSER_LOG", str(log))
    monkeypatch.setenv("TEST_BROWSER_CONTROL", str(tmp_path / "browser.control"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    # webbrowser reads BROWSER once per process and caches its choice; start from scratch.
    monkeypatch.setattr(webbrowser, "_tryorder", None)
    already_running = set(child_pids())  # e.g. the session's D-Bus and keyring daemons
    yield log
    left = reap_children(ignore=already_running)
    assert not left, f"browser processes still running: {left}"

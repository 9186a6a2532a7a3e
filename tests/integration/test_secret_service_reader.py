"""The daemon's light Secret Service reader on the real gnome-keyring: it reads exactly what the keyring
library (through KeyringSecretStore) wrote, chunked or not, and says "cannot tell" rather than prompting
when the keyring is locked."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backends import SecretService

from broker.core.errors import StoreUnavailable
from broker.store import secret_service
from broker.store.keyring_store import KeyringSecretStore
from broker.store.secret_service import SecretServiceReader
from tests.support.session import IsolatedSession

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Secret Service is Linux's")

SERVICE = "kubetray-reader-test"


@pytest.fixture
def written(desktop_session: IsolatedSession) -> Iterator[KeyringSecretStore]:
    store = KeyringSecretStore(SecretService.Keyring(), service=SERVICE, chunk_size=700)
    yield store
    for name in ("plain", "chunked", "unicode"):
        store.delete(name)


def test_it_reads_what_the_keyring_library_wrote(written: KeyringSecretStore) -> None:
    reader = SecretServiceReader(SERVICE)
    written.save("plain", "short value")
    written.save("chunked", "x" * 5000)  # eight chunks of 700 behind a manifest
    written.save("unicode", "ü€𝄞" * 300)
    assert reader.load("plain") == "short value"
    assert reader.load("chunked") == "x" * 5000
    assert reader.load("unicode") == "ü€𝄞" * 300
    assert reader.load("absent") is None
    written.delete("chunked")
    assert reader.load("chunked") is None


def test_a_locked_keyring_reads_as_cannot_tell_and_nothing_prompts(
        written: KeyringSecretStore, desktop_session: IsolatedSession) -> None:
    written.save("plain", "short value")
    desktop_session.lock_keyring()
    try:
        with pytest.raises(StoreUnavailable, match="could not be read directly|locked"):
            SecretServiceReader(SERVICE).load("plain")
        assert desktop_session.keyring_locked()  # it did not unlock (nor ask anyone to)
    finally:
        desktop_session.unlock_keyring()


def test_no_secret_service_on_the_bus_reads_as_cannot_tell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus-here")
    with pytest.raises(StoreUnavailable, match="could not be read directly"):
        SecretServiceReader(SERVICE).load("plain")


def test_it_applies_only_where_the_store_would_use_the_same_backend(tmp_path: Path) -> None:
    env = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus", "HOME": str(tmp_path)}
    assert secret_service.applies(env, "linux")
    assert not secret_service.applies(env, "darwin")
    assert not secret_service.applies({**env, "DBUS_SESSION_BUS_ADDRESS": ""}, "linux")
    assert not secret_service.applies({**env, "PYTHON_KEYRING_BACKEND": "keyring.backends.kwallet.DBusKeyring"},
                                      "linux")
    config = tmp_path / ".config" / "python_keyring"
    config.mkdir(parents=True)
    (config / "keyringrc.cfg").write_text("[backend]\ndefault-keyring=keyring.backends.kwallet.DBusKeyring\n")
    assert not secret_service.applies(env, "linux")
    assert secret_service.applies({**env, "XDG_CONFIG_HOME": os.fspath(tmp_path / "elsewhere")}, "linux")

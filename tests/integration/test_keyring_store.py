"""KeyringSecretStore on the real OS keyrings, and the test session itself.

The Secret Service (gnome-keyring on a private D-Bus) runs on Linux; the macOS Keychain (a temporary,
unlocked keychain the CI workflow makes the default) and Windows Credential Manager run on those runners
only, each skipped elsewhere with the reason.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import time
import warnings
from contextlib import closing
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService

from broker.core.errors import StoreUnavailable
from broker.store.keyring_store import KeyringSecretStore, check_usable
from tests.support.session import IsolatedSession
from tests.support.store_contract import NAME, RecordingKeyring, SecretStoreContract

REPO = Path(__file__).resolve().parents[2]


class TestSecretService(SecretStoreContract):
    """The SecretStore contract on gnome-keyring, with small chunks so that chunking really happens."""

    chunk_size = 1000
    # Each keyring call costs 15-80 ms here (gnome-keyring rewrites its file on every change), so big
    # values go in at most 16 chunks and the exhaustive crash matrix stays with the in-memory double; these
    # three transitions cover every kind of write step the real backend sees.
    max_chunks = 16
    crash_transitions = (("big", "bigger"), ("big", "small"), ("big", "absent"))
    crash_chunks = (2, 3)

    @pytest.fixture
    def backend(self, desktop_session: IsolatedSession) -> KeyringBackend:
        return SecretService.Keyring()

    def stored_names(self, backend: KeyringBackend, service: str) -> set[str]:
        import secretstorage

        with closing(secretstorage.dbus_init()) as bus:
            collection = secretstorage.get_default_collection(bus)
            return {item.get_attributes()["username"] for item in collection.search_items({"service": service})}


_OS_BACKENDS = {"darwin": "keyring.backends.macOS.Keyring", "win32": "keyring.backends.Windows.WinVaultKeyring"}


@pytest.mark.skipif(sys.platform not in _OS_BACKENDS,
                    reason="the macOS Keychain / Windows Credential Manager run only there (the CI workflow's "
                           "macos and windows jobs); on Linux TestSecretService runs the contract")
class TestOsKeyring(SecretStoreContract):
    """The contract on the platform's own keyring; 1,000-character chunks are 2,000 bytes of UTF-16, under
    Credential Manager's 2,560, so chunking (not the backend) carries every large value."""

    max_chunks = 16
    crash_transitions = (("big", "bigger"), ("big", "small"), ("big", "absent"))
    crash_chunks = (2, 3)

    @pytest.fixture
    def backend(self) -> KeyringBackend:
        import keyring
        from keyring.core import load_keyring

        real = keyring.get_keyring()
        expected = _OS_BACKENDS[sys.platform]
        if f"{type(real).__module__}.{type(real).__name__}" != expected:
            real = load_keyring(expected)
        return RecordingKeyring(real)

    def stored_names(self, backend: KeyringBackend, service: str) -> set[str]:
        assert isinstance(backend, RecordingKeyring)
        return backend.stored(service)


# --- Checking the backend ------------------------------------------------------------------------------


def test_check_usable_accepts_the_secret_service(desktop_session: IsolatedSession) -> None:
    check_usable(SecretService.Keyring())


def test_a_locked_keyring_is_refused_with_unlock_and_works_again_once_unlocked(
    desktop_session: IsolatedSession,
) -> None:
    store = KeyringSecretStore(SecretService.Keyring(), service="kubetray-test-locked", chunk_size=1000)
    store.save(NAME, "before the lock")
    desktop_session.lock_keyring()
    try:
        assert desktop_session.keyring_locked()
        with pytest.raises(StoreUnavailable, match="locked. Unlock it"):
            check_usable(SecretService.Keyring())
        with pytest.raises(StoreUnavailable, match="Unlock it"):
            store.load(NAME)
    finally:
        desktop_session.unlock_keyring()
        # keyring's SecretService backend leaks its D-Bus connection when the collection is locked
        # (cf. jaraco/keyring#380); collect it here, where the warning is expected, not at some later test.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    assert not desktop_session.keyring_locked()
    assert store.load(NAME) == "before the lock"


def _in_fresh_process(env: dict[str, str], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter: keyring picks and caches its backend once per process."""
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


_CHECK = """
    from keyring.backends import chainer
    from broker.core.errors import StoreUnavailable
    from broker.store.keyring_store import check_usable, default_backend
    for backend in (default_backend(), chainer.ChainerBackend()):
        try:
            check_usable(backend)
            print("usable:", backend.name)
        except StoreUnavailable as error:
            print("unusable:", error.message)
"""


def test_default_backend_is_the_secret_service_when_one_answers(desktop_session: IsolatedSession) -> None:
    # keyrings.alt is installed (test extras), so keyring itself chains Secret Service with its plaintext
    # file: kubetray uses the Secret Service alone and refuses the chain as keyring built it.
    result = _in_fresh_process(desktop_session.env, _CHECK)
    assert result.returncode == 0, result.stderr
    default, chained = result.stdout.splitlines()
    assert default == "usable: SecretService Keyring"
    assert chained.startswith("unusable: The keyring backend file PlaintextKeyring, chained in chainer ")
    assert "SecretService Keyring" in chained and "stores secrets in plaintext" in chained


def test_nothing_reaches_keyrings_alt_plaintext_file_while_the_secret_service_serves(
    desktop_session: IsolatedSession,
) -> None:
    code = """
        import keyring
        from keyrings.alt.file import PlaintextKeyring
        from broker.store.keyring_store import KeyringSecretStore, default_backend
        print(keyring.get_keyring().name)
        store = KeyringSecretStore(default_backend(), service="kubetray-test-chain", chunk_size=1000)
        store.save("cache", "x" * 2500)
        print(store.load("cache") == "x" * 2500, store.describe())
        store.delete("cache")
        print(PlaintextKeyring().file_path)
    """
    result = _in_fresh_process(desktop_session.env, code)
    assert result.returncode == 0, result.stderr
    picked, stored, plaintext_file = result.stdout.splitlines()
    assert picked == "chainer ChainerBackend"  # what keyring alone would have used
    assert stored == "True SecretService Keyring"
    assert plaintext_file.startswith(str(desktop_session.root)) and not Path(plaintext_file).exists()


def test_without_a_bus_there_is_no_keyring_and_the_message_says_what_to_install(
    desktop_session: IsolatedSession,
) -> None:
    env = dict(desktop_session.env, DBUS_SESSION_BUS_ADDRESS=f"unix:path={desktop_session.root}/nobody-listens")
    result = _in_fresh_process(env, _CHECK)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # Without a Secret Service the only viable backend is keyrings.alt's plaintext file (test extras):
    # keyring picks it, alone or chained, and kubetray refuses it with the same fix.
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("unusable: The keyring backend file PlaintextKeyring")
        assert "plaintext" in line and "gnome-keyring" in line and "PYTHON_KEYRING_BACKEND" in line


# --- The session ---------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_a_session_is_private_and_leaves_nothing_behind(desktop_session: IsolatedSession) -> None:
    with IsolatedSession() as session:
        env, root, pids = session.env, session.root, session.pids
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        assert "DISPLAY" not in env and "WAYLAND_DISPLAY" not in env
        for variable in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            assert Path(env[variable]).parent == root
        assert (Path(env["XDG_RUNTIME_DIR"]).stat().st_mode & 0o777) == 0o700
        assert env["DBUS_SESSION_BUS_ADDRESS"].startswith(f"unix:path={root}/")
        assert session.bus_address != desktop_session.bus_address
        assert not session.keyring_locked()
    assert not root.exists()
    assert not any(_alive(pid) for pid in pids)


def test_a_session_whose_keyring_vanished_gets_it_back_with_its_items(desktop_session: IsolatedSession) -> None:
    import signal

    import secretstorage
    from jeepney.io.blocking import open_dbus_connection

    def collection(bus_address: str) -> tuple[object, secretstorage.Collection]:
        connection = open_dbus_connection(bus=bus_address)
        return connection, secretstorage.get_default_collection(connection)

    with IsolatedSession() as session:
        assert session.ensure_keyring() == ""
        connection, login = collection(session.bus_address)
        with closing(connection):  # type: ignore[type-var]
            login.create_item("kept", {"service": "kubetray-test"}, b"value")
        keyring_pid = session.pids[-1]
        os.kill(keyring_pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(keyring_pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        said = session.ensure_keyring()
        assert said.startswith("gnome-keyring had stopped (exit status -9)"), said
        assert session.pids[-1] != keyring_pid and _alive(session.pids[-1])
        connection, login = collection(session.bus_address)
        with closing(connection):  # type: ignore[type-var]
            (item,) = login.search_items({"service": "kubetray-test"})
            assert item.get_secret() == b"value"
        assert session.ensure_keyring() == ""

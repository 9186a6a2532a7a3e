"""KeyringSecretStore on in-memory keyrings: chunk layout, crash safety, error translation.

The contract (tests/support/store_contract.py) runs here on the in-memory double and on a keyring capped
at Credential Manager's 2,560 bytes of UTF-16 per credential; tests/integration/test_keyring_store.py
runs it on the real OS keyrings.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, Windows, chainer, fail, null
from keyring.errors import KeyringError, KeyringLocked, NoKeyringError

from broker.core.errors import StoreUnavailable
from broker.core.ports import SecretStore
from broker.store.keyring_store import (
    LARGE_CHUNK_SIZE,
    MANIFEST_PREFIX,
    WINDOWS_CHUNK_SIZE,
    KeyringSecretStore,
    check_usable,
    default_chunk_size,
)
from tests.support.store_contract import (
    CREDENTIAL_MANAGER_LIMIT,
    NAME,
    CappedKeyring,
    CrashingKeyring,
    FailingKeyring,
    ForgetfulKeyring,
    InMemoryKeyring,
    SecretStoreContract,
    SimulatedCrash,
    _Double,
    ascii_text,
    unicode_text,
    utf16_units,
)


class TestInMemoryKeyring(SecretStoreContract):
    """The contract on the in-memory double: every backend-independent rule, in milliseconds."""

    @pytest.fixture
    def backend(self) -> KeyringBackend:
        return InMemoryKeyring()

    def stored_names(self, backend: KeyringBackend, service: str) -> set[str]:
        assert isinstance(backend, InMemoryKeyring)
        return {username for (svc, username) in backend.entries if svc == service}


class TestCredentialManagerSizedKeyring(SecretStoreContract):
    """The contract on a keyring that refuses blobs over 2,560 bytes of UTF-16, at the chunk size the store
    picks for Windows: every value, however large, fits because of the chunking."""

    chunk_size = WINDOWS_CHUNK_SIZE
    crash_chunks = (3, 4)

    @pytest.fixture
    def backend(self) -> KeyringBackend:
        return CappedKeyring()

    def stored_names(self, backend: KeyringBackend, service: str) -> set[str]:
        assert isinstance(backend, CappedKeyring)
        return {username for (svc, username) in backend.blobs if svc == service}

    def test_every_blob_fits_the_limit(self, store: KeyringSecretStore, backend: KeyringBackend) -> None:
        assert isinstance(backend, CappedKeyring)
        store.save(NAME, unicode_text(20_000))
        store.save(NAME + "-ascii", ascii_text(50_000))
        assert max(len(blob) for blob in backend.blobs.values()) <= CREDENTIAL_MANAGER_LIMIT

    def test_the_cap_is_real_without_chunking(self, backend: KeyringBackend, service: str) -> None:
        # The same value through a store that believes in large items fails as Credential Manager would.
        unchunked = KeyringSecretStore(backend, service=service, chunk_size=LARGE_CHUNK_SIZE)
        with pytest.raises(StoreUnavailable):
            unchunked.save(NAME, ascii_text(CREDENTIAL_MANAGER_LIMIT))
        assert self.stored_names(backend, service) == set()

    def test_the_store_picks_windows_sized_chunks_for_the_windows_backend(self) -> None:
        assert default_chunk_size(Windows.WinVaultKeyring()) * 2 <= CREDENTIAL_MANAGER_LIMIT


# --- Properties over arbitrary text and sizes -----------------------------------------------------------

_texts = st.text(max_size=80)  # hypothesis' text() includes astral characters and excludes lone surrogates


@settings(max_examples=200, deadline=None)
@given(
    chunk_size=st.integers(min_value=2, max_value=12),
    operations=st.lists(st.tuples(st.sampled_from(["p", "q"]), st.none() | _texts), max_size=12),
)
def test_any_sequence_of_saves_and_deletes_matches_a_dict(
    chunk_size: int, operations: list[tuple[str, str | None]]
) -> None:
    backend = InMemoryKeyring()
    store = KeyringSecretStore(backend, service="svc", chunk_size=chunk_size)
    model: dict[str, str] = {}
    for name, value in operations:
        if value is None:
            store.delete(name)
            model.pop(name, None)
        else:
            store.save(name, value)
            model[name] = value
        for other in ("p", "q"):
            assert store.load(other) == model.get(other)
        for (_, username), stored in backend.entries.items():
            if not stored.startswith(MANIFEST_PREFIX):
                assert utf16_units(stored) <= chunk_size, username
    expected_heads = {("svc", name) for name in model}
    assert {key for key in backend.entries if "#" not in key[1]} == expected_heads


@settings(max_examples=300, deadline=None)
@given(old=st.none() | _texts, new=st.none() | _texts, chunk_size=st.integers(2, 8), budget=st.integers(0, 40))
def test_a_crash_anywhere_never_tears_a_value(old: str | None, new: str | None, chunk_size: int, budget: int) -> None:
    memory = InMemoryKeyring()
    if old is not None:
        KeyringSecretStore(memory, service="svc", chunk_size=chunk_size).save(NAME, old)
    store = KeyringSecretStore(CrashingKeyring(memory, budget), service="svc", chunk_size=chunk_size)
    with contextlib.suppress(SimulatedCrash):
        store.save(NAME, new) if new is not None else store.delete(NAME)
    recovered = KeyringSecretStore(memory, service="svc", chunk_size=chunk_size)
    assert recovered.load(NAME) in (old, new)
    recovered.delete(NAME)
    assert memory.entries == {}


# --- Checking the backend before use --------------------------------------------------------------------


def test_check_usable_accepts_a_working_keyring_and_cleans_up_its_probe() -> None:
    backend = InMemoryKeyring()
    check_usable(backend)
    assert backend.entries == {}


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        (fail.Keyring(), ["gnome-keyring", "KeePassXC", "PYTHON_KEYRING_BACKEND", "plaintext"]),
        (FailingKeyring(NoKeyringError("none")), ["gnome-keyring", "PYTHON_KEYRING_BACKEND"]),
        (FailingKeyring(KeyringLocked("Failed to unlock the collection!")), ["locked", "Unlock"]),
        (FailingKeyring(KeyringError("D-Bus said no")), ["KeyringError", "running and unlocked"]),
        (FailingKeyring(ConnectionRefusedError("bus gone")), ["ConnectionRefusedError"]),
        (null.Keyring(), ["stores nothing", "PYTHON_KEYRING_BACKEND"]),
        (ForgetfulKeyring(), ["did not return what was written"]),
    ],
    ids=["fail", "no-keyring", "locked", "keyring-error", "other-error", "null", "forgetful"],
)
def test_check_usable_refuses_with_a_one_line_fix(backend: KeyringBackend, words: list[str]) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        check_usable(backend)
    message = caught.value.message
    assert "\n" not in message
    for word in words:
        assert word in message


def test_check_usable_refuses_a_chainer_with_nothing_to_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    # keyring computes the chained backends once per process; an empty list is what a machine without
    # any keyring gets (tests/integration shows it in a fresh process).
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [])
    with pytest.raises(StoreUnavailable, match="^No OS keyring is available.*gnome-keyring"):
        check_usable(chainer.ChainerBackend())


# --- Errors while in use --------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["load", "save", "delete"])
def test_a_locked_keyring_says_unlock(operation: str) -> None:
    store = KeyringSecretStore(FailingKeyring(KeyringLocked("locked")), chunk_size=10)
    with pytest.raises(StoreUnavailable, match="Unlock it"):
        store.save(NAME, "v") if operation == "save" else getattr(store, operation)(NAME)


def test_error_messages_never_carry_the_value() -> None:
    secret = "refresh-token-" + ascii_text(40)

    class Echoing(_Double):
        def get_password(self, service: str, username: str) -> str | None:
            return None

        def set_password(self, service: str, username: str, password: str) -> None:
            raise KeyringError(f"could not store {password}")

    with pytest.raises(StoreUnavailable) as caught:
        KeyringSecretStore(Echoing(), chunk_size=10).save(NAME, secret)
    assert secret[:10] not in str(caught.value)
    assert caught.value.code == "store_unavailable"


def test_a_failure_after_the_commit_does_not_fail_the_save(caplog: pytest.LogCaptureFixture) -> None:
    backend = FailingKeyring(KeyringLocked("locked"), only_deletes=True)
    store = KeyringSecretStore(backend, chunk_size=10)
    store.save(NAME, ascii_text(35, seed=1))
    with caplog.at_level(logging.WARNING, logger="broker.store.keyring_store"):
        store.save(NAME, ascii_text(25, seed=2))  # the old chunks cannot be deleted
    assert store.load(NAME) == ascii_text(25, seed=2)
    assert "stale chunks" in caplog.text


def test_a_delete_that_fails_is_reported_not_swallowed() -> None:
    # Signing out must not pretend to have forgotten tokens that are still in the keyring.
    backend = FailingKeyring(KeyringLocked("locked"), only_deletes=True)
    store = KeyringSecretStore(backend, chunk_size=10)
    store.save(NAME, ascii_text(25))
    with pytest.raises(StoreUnavailable, match="Unlock it"):
        store.delete(NAME)


class SlowKeyring(InMemoryKeyring):
    """Gives other threads a chance to run inside every keyring call, as a D-Bus round trip would."""

    def get_password(self, service: str, username: str) -> str | None:
        time.sleep(0)
        return super().get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        time.sleep(0)
        super().set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        time.sleep(0)
        super().delete_password(service, username)


def test_threads_sharing_a_store_never_see_a_half_written_value(caplog: pytest.LogCaptureFixture) -> None:
    store = KeyringSecretStore(SlowKeyring(), chunk_size=10)
    values = [ascii_text(95, seed=1), ascii_text(45, seed=2), ascii_text(8, seed=3)]
    store.save(NAME, values[0])
    seen: list[str | None] = []

    def write() -> None:
        for i in range(150):
            store.save(NAME, values[i % 3])

    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():
        seen.append(store.load(NAME))
    writer.join()
    assert set(seen) <= set(values)
    assert "treating it as absent" not in caplog.text


def test_a_lone_surrogate_is_refused_before_anything_is_written() -> None:
    backend = InMemoryKeyring()
    with pytest.raises(UnicodeEncodeError):
        KeyringSecretStore(backend, chunk_size=10).save(NAME, "ok\ud800")
    assert backend.entries == {}


@pytest.mark.parametrize("name", ["", "a#b", "#"])
def test_names_with_the_chunk_separator_are_refused(name: str) -> None:
    store = KeyringSecretStore(InMemoryKeyring())
    for call in (lambda: store.load(name), lambda: store.save(name, "v"), lambda: store.delete(name)):
        with pytest.raises(ValueError, match="'#'"):
            call()


# --- Choosing the chunk size ----------------------------------------------------------------------------


class _SecretServiceSubclass(SecretService.Keyring):
    pass


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (Windows.WinVaultKeyring, WINDOWS_CHUNK_SIZE),
        (SecretService.Keyring, LARGE_CHUNK_SIZE),
        (_SecretServiceSubclass, LARGE_CHUNK_SIZE),
        (InMemoryKeyring, WINDOWS_CHUNK_SIZE),  # unknown: the smallest known limit
    ],
)
def test_default_chunk_size_follows_the_backend(make: Callable[[], KeyringBackend], expected: int) -> None:
    backend = make()
    assert default_chunk_size(backend) == expected
    assert KeyringSecretStore(backend).chunk_size == expected
    assert KeyringSecretStore(backend, chunk_size=77).chunk_size == 77


def test_windows_sized_chunks_fit_windows_credential_manager() -> None:
    # 2,560 bytes of UTF-16 per credential, for chunks and for the manifest alike.
    backend = InMemoryKeyring()
    store = KeyringSecretStore(backend, chunk_size=WINDOWS_CHUNK_SIZE)
    store.save(NAME, unicode_text(9000))
    assert max(len(v.encode("utf-16-le")) for v in backend.entries.values()) <= 2560


def test_chunk_size_must_hold_a_surrogate_pair() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        KeyringSecretStore(InMemoryKeyring(), chunk_size=1)


def test_it_is_a_secret_store_that_describes_its_backend() -> None:
    store: SecretStore = KeyringSecretStore(SecretService.Keyring())
    assert store.describe() == "SecretService Keyring"

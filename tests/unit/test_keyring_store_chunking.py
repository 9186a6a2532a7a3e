"""KeyringSecretStore on an in-memory keyring: chunk layout, crash safety, error translation.

``SecretStoreContract`` is the reusable contract for the SecretStore port (in the manner of keyring's
``BackendBasicTests``); tests/integration/test_keyring_store.py runs it against the real Secret Service.
"""

from __future__ import annotations

import contextlib
import logging
import random
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, Windows, chainer, fail, null
from keyring.compat import properties
from keyring.errors import KeyringError, KeyringLocked, NoKeyringError, PasswordDeleteError

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

NAME = "msal-cache"
# (before, after) for the crash tests: "absent" after means a delete; chunked sizes are in chunks.
TRANSITIONS = (
    ("absent", "small"),
    ("absent", "big"),
    ("small", "big"),
    ("big", "small"),
    ("big", "bigger"),
    ("bigger", "big"),
    ("small", "absent"),
    ("big", "absent"),
)

# --- Test doubles ---------------------------------------------------------------------------------------


class SimulatedCrash(BaseException):
    """The process dies here. A BaseException, so no ``except Exception`` in the store can swallow it."""


class _Double(KeyringBackend):
    """Base of the doubles: never viable, so keyring's own detection can never pick one."""

    @properties.classproperty
    def priority(cls) -> float:
        raise RuntimeError("a test double")


class InMemoryKeyring(_Double):
    """A keyring in a dict, with keyring's semantics (deleting a missing entry raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class CrashingKeyring(_Double):
    """Delegates to ``inner``; the write (set or delete) after ``budget`` writes dies with SimulatedCrash."""

    def __init__(self, inner: KeyringBackend, budget: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.budget = budget
        self.writes = 0

    def _spend(self) -> None:
        if self.budget is not None and self.writes >= self.budget:
            raise SimulatedCrash
        self.writes += 1

    def get_password(self, service: str, username: str) -> str | None:
        return self.inner.get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self._spend()
        self.inner.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self._spend()
        self.inner.delete_password(service, username)


class FailingKeyring(_Double):
    """Every operation raises ``error`` (optionally only deletes, to fail after a save's commit)."""

    def __init__(self, error: Exception, *, only_deletes: bool = False) -> None:
        super().__init__()
        self.error = error
        self.memory = InMemoryKeyring()
        self.only_deletes = only_deletes

    def get_password(self, service: str, username: str) -> str | None:
        if not self.only_deletes:
            raise self.error
        return self.memory.get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        if not self.only_deletes:
            raise self.error
        self.memory.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        raise self.error


class ForgetfulKeyring(_Double):
    """Accepts writes and keeps nothing, like keyring's null backend under another name."""

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        pass


# --- Values ---------------------------------------------------------------------------------------------


def ascii_text(size: int, seed: int = 0) -> str:
    """Token-cache-like ASCII of exactly ``size`` characters, different for each seed."""
    generator = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    return "".join(generator.choices(string.ascii_letters + string.digits + '{}":,._-', k=size))


def unicode_text(units: int) -> str:
    """About ``units`` UTF-16 code units mixing Latin, CJK, combining marks and astral characters."""
    pattern = "é中a\u0301𝄞😀ß—\u4e16👩\u200d💻"  # astral characters at odd and even offsets
    return pattern * (units // utf16_units(pattern) + 1)


def utf16_units(value: str) -> int:
    return len(value.encode("utf-16-le")) // 2


# --- The contract ---------------------------------------------------------------------------------------


class SecretStoreContract:
    """The SecretStore contract, exercised on KeyringSecretStore over one keyring backend.

    Subclasses provide the ``backend`` fixture and ``stored_names``. ``chunk_size`` is kept small so
    chunking happens. Where each keyring call is slow, ``max_chunks`` bounds the chunk count of big values
    and ``crash_transitions`` / ``crash_chunks`` shrink the crash matrix.
    """

    chunk_size = 1000
    max_chunks: int | None = None
    crash_transitions: tuple[tuple[str, str], ...] = TRANSITIONS
    crash_chunks = (3, 5)  # chunks of the "big" and "bigger" values

    @pytest.fixture
    def backend(self) -> KeyringBackend:
        raise NotImplementedError

    def stored_names(self, backend: KeyringBackend, service: str) -> set[str]:
        """Every username stored under ``service``, straight from the backend."""
        raise NotImplementedError

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "transition" in metafunc.fixturenames:
            ids = [f"{before}-{after}" for before, after in self.crash_transitions]
            metafunc.parametrize("transition", self.crash_transitions, ids=ids)

    @pytest.fixture
    def service(self, backend: KeyringBackend) -> Iterator[str]:
        """A service name of the test's own; whatever the test leaves under it is removed afterwards."""
        service = f"kubetray-test-{uuid.uuid4().hex[:12]}"
        yield service
        for name in self.stored_names(backend, service):  # big leftovers slow every later keyring write
            backend.delete_password(service, name)

    def size(self, chunks: float) -> int:
        """A value size, in characters, as a multiple of the chunk size."""
        return int(chunks * self.chunk_size)

    @pytest.fixture
    def store(self, backend: KeyringBackend, service: str) -> KeyringSecretStore:
        return KeyringSecretStore(backend, service=service, chunk_size=self.chunk_size)

    def chunk_size_for(self, size: int) -> int:
        if self.max_chunks is None:
            return self.chunk_size
        return max(self.chunk_size, -(-size // self.max_chunks))

    def assert_layout(self, backend: KeyringBackend, service: str, name: str, value: str, chunk_size: int) -> None:
        """Exactly the entries ``value`` needs: one plain entry, or a manifest plus one slot's chunks."""
        names = {n for n in self.stored_names(backend, service) if n == name or n.startswith(name + "#")}
        head = backend.get_password(service, name)
        if utf16_units(value) <= chunk_size and not value.startswith(MANIFEST_PREFIX):
            assert names == {name}
            assert head == value
            return
        assert head is not None and head.startswith(MANIFEST_PREFIX)
        slots = {n.split("#")[1].split(".")[0] for n in names - {name}}
        assert len(slots) == 1, f"chunks in more than one slot: {sorted(names)}"
        (slot,) = slots
        count = len(names) - 1
        assert names == {name} | {f"{name}#{slot}.{i}" for i in range(count)}
        assert "".join(backend.get_password(service, f"{name}#{slot}.{i}") or "" for i in range(count)) == value
        for n in names - {name}:
            assert utf16_units(backend.get_password(service, n) or "") <= chunk_size

    def test_missing_name_loads_as_none(self, store: KeyringSecretStore) -> None:
        assert store.load(NAME) is None

    @pytest.mark.parametrize("size", [0, 1, 20_000, 200_000, 2_000_000])
    def test_round_trip(self, backend: KeyringBackend, service: str, size: int) -> None:
        chunk_size = self.chunk_size_for(size)
        store = KeyringSecretStore(backend, service=service, chunk_size=chunk_size)
        value = ascii_text(size)
        store.save(NAME, value)
        assert store.load(NAME) == value
        self.assert_layout(backend, service, NAME, value, chunk_size)

    @pytest.mark.parametrize("extra", [-1, 0, 1])
    def test_chunking_starts_just_above_chunk_size(
        self, store: KeyringSecretStore, backend: KeyringBackend, service: str, extra: int
    ) -> None:
        value = ascii_text(self.chunk_size + extra)
        store.save(NAME, value)
        assert store.load(NAME) == value
        head = backend.get_password(service, NAME)
        assert head is not None
        assert head.startswith(MANIFEST_PREFIX) == (extra > 0)
        self.assert_layout(backend, service, NAME, value, self.chunk_size)

    @pytest.mark.parametrize("value", ["ünïcødé ✓", "a" + "😀" * 1500, unicode_text(3500), "😀" * 499 + "x"])
    def test_unicode_round_trip(
        self, store: KeyringSecretStore, backend: KeyringBackend, service: str, value: str
    ) -> None:
        store.save(NAME, value)
        assert store.load(NAME) == value
        self.assert_layout(backend, service, NAME, value, self.chunk_size)

    @pytest.mark.parametrize("value", [MANIFEST_PREFIX, MANIFEST_PREFIX + '{"n":1,"sha256":"00","slot":"a","v":1}'])
    def test_value_that_looks_like_a_manifest_round_trips(self, store: KeyringSecretStore, value: str) -> None:
        store.save(NAME, value)
        assert store.load(NAME) == value

    @pytest.mark.parametrize(
        ("first", "second"),
        [(0.3, 2.5), (2.5, 0.3), (1.5, 2.5), (2.5, 1.5), (2.5, 2.5), (0.3, 0.6)],
        ids=["small-by-chunked", "chunked-by-small", "chunked-by-more", "chunked-by-fewer", "same", "small-by-small"],
    )
    def test_overwrite_leaves_only_the_new_entries(
        self, store: KeyringSecretStore, backend: KeyringBackend, service: str, first: float, second: float
    ) -> None:
        value = ascii_text(self.size(second), seed=2)
        store.save(NAME, ascii_text(self.size(first), seed=1))
        store.save(NAME, value)
        assert store.load(NAME) == value
        self.assert_layout(backend, service, NAME, value, self.chunk_size)

    @pytest.mark.parametrize("chunks", [0.3, 2.5])
    def test_delete_removes_every_entry(
        self, store: KeyringSecretStore, backend: KeyringBackend, service: str, chunks: float
    ) -> None:
        store.save(NAME, ascii_text(self.size(chunks)))
        store.delete(NAME)
        assert store.load(NAME) is None
        assert self.stored_names(backend, service) == set()
        store.delete(NAME)  # deleting what is absent is not an error
        store.save(NAME, "again")
        assert store.load(NAME) == "again"

    def test_names_do_not_interfere(self, store: KeyringSecretStore, backend: KeyringBackend, service: str) -> None:
        other = ascii_text(self.size(1.5), seed=2)
        store.save(NAME, ascii_text(self.size(2.5), seed=1))
        store.save(NAME + "-2", other)
        store.save(NAME, ascii_text(self.size(1.2), seed=3))
        store.delete(NAME)
        assert store.load(NAME) is None
        assert store.load(NAME + "-2") == other
        self.assert_layout(backend, service, NAME + "-2", other, self.chunk_size)

    @pytest.mark.parametrize(
        "damage",
        ["tamper-chunk", "drop-chunk", "garble-manifest", "future-manifest"],
    )
    def test_damaged_value_reads_as_absent_with_a_warning(
        self,
        store: KeyringSecretStore,
        backend: KeyringBackend,
        service: str,
        damage: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        value = ascii_text(self.size(2.5))
        store.save(NAME, value)
        chunks = sorted(n for n in self.stored_names(backend, service) if n != NAME)
        if damage == "tamper-chunk":
            backend.set_password(service, chunks[0], ascii_text(self.chunk_size, seed=9))
        elif damage == "drop-chunk":
            backend.delete_password(service, chunks[-1])
        elif damage == "garble-manifest":
            backend.set_password(service, NAME, MANIFEST_PREFIX + "{not json")
        else:  # a whole manifest, but of a layout version this code does not know
            manifest = backend.get_password(service, NAME) or ""
            backend.set_password(service, NAME, manifest.replace('"v":1', '"v":2'))
        with caplog.at_level(logging.WARNING, logger="broker.store.keyring_store"):
            assert store.load(NAME) is None
        assert [r.levelno for r in caplog.records] == [logging.WARNING]
        assert value[:50] not in caplog.text
        # A save over the damage and a delete still leave exactly what they should.
        store.save(NAME, ascii_text(self.size(1.5), seed=4))
        self.assert_layout(backend, service, NAME, ascii_text(self.size(1.5), seed=4), self.chunk_size)
        store.delete(NAME)
        assert self.stored_names(backend, service) == set()

    def test_a_crash_at_any_write_leaves_the_old_or_the_new_value(
        self, backend: KeyringBackend, service: str, transition: tuple[str, str]
    ) -> None:
        before, after = transition
        big, bigger = self.crash_chunks
        sizes = {"small": self.size(0.5), "big": self.size(big) - 7, "bigger": self.size(bigger - 1) + 3}
        old = ascii_text(sizes[before], seed=1) if before in sizes else None
        new = ascii_text(sizes[after], seed=2) if after in sizes else None

        def run(budget: int | None, svc: str) -> CrashingKeyring:
            if old is not None:
                KeyringSecretStore(backend, service=svc, chunk_size=self.chunk_size).save(NAME, old)
            crashing = CrashingKeyring(backend, budget)
            store = KeyringSecretStore(crashing, service=svc, chunk_size=self.chunk_size)
            if new is None:
                store.delete(NAME)
            else:
                store.save(NAME, new)
            return crashing

        writes = run(None, service).writes
        assert writes > 0
        for budget in range(writes):
            svc = f"{service}-{budget}"
            with pytest.raises(SimulatedCrash):
                run(budget, svc)
            store = KeyringSecretStore(backend, service=svc, chunk_size=self.chunk_size)
            assert store.load(NAME) in (old, new), f"torn value after {budget} of {writes} writes"
            # Whatever the crash left behind, the next successful operation leaves exactly its own entries.
            if new is None:
                store.delete(NAME)
                assert self.stored_names(backend, svc) == set()
            else:
                store.save(NAME, new)
                assert store.load(NAME) == new
                self.assert_layout(backend, svc, NAME, new, self.chunk_size)
                store.delete(NAME)
        store = KeyringSecretStore(backend, service=service, chunk_size=self.chunk_size)
        store.delete(NAME)


class TestInMemoryKeyring(SecretStoreContract):
    """The contract on the in-memory double: every backend-independent rule, in milliseconds."""

    @pytest.fixture
    def backend(self) -> KeyringBackend:
        return InMemoryKeyring()

    def stored_names(self, backend: KeyringBackend, service: str) -> set[str]:
        assert isinstance(backend, InMemoryKeyring)
        return {username for (svc, username) in backend.entries if svc == service}


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

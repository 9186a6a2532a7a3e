"""The SecretStore port's contract, importable by every tier (in the manner of keyring's ``BackendBasicTests``).

``SecretStoreContract`` is subclassed once per keyring backend: the in-memory double and a keyring capped
like Windows Credential Manager (tests/unit/test_keyring_store_chunking.py), the real Secret Service, the
macOS Keychain and Credential Manager themselves (tests/integration/test_keyring_store.py, each skipped
where its backend cannot run). The doubles and value generators the contract needs live here too.
"""

from __future__ import annotations

import logging
import random
import string
import uuid
from collections.abc import Iterator

import pytest
from keyring.backend import KeyringBackend
from keyring.compat import properties
from keyring.errors import KeyringError, PasswordDeleteError

from broker.store.keyring_store import MANIFEST_PREFIX, KeyringSecretStore

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


# --- A keyring with Credential Manager's size limit -----------------------------------------------------

CREDENTIAL_MANAGER_LIMIT = 2560  # bytes per credential blob (CRED_MAX_CREDENTIAL_BLOB_SIZE)


class CredentialBlobTooLarge(KeyringError):
    """What CredWriteW reports for an oversized blob, as keyring's WinVault backend raises it."""


class CappedKeyring(_Double):
    """Stores each password as UTF-16-LE bytes, as keyring's Windows backend does, and refuses any blob
    over ``limit`` bytes the way Credential Manager does; keeps what it stores in ``blobs``."""

    def __init__(self, limit: int = CREDENTIAL_MANAGER_LIMIT) -> None:
        super().__init__()
        self.limit = limit
        self.blobs: dict[tuple[str, str], bytes] = {}

    def get_password(self, service: str, username: str) -> str | None:
        blob = self.blobs.get((service, username))
        return None if blob is None else blob.decode("utf-16-le")

    def set_password(self, service: str, username: str, password: str) -> None:
        blob = password.encode("utf-16-le")
        if len(blob) > self.limit:
            raise CredentialBlobTooLarge(f"(1783, 'CredWrite', 'The stub received bad data.') {len(blob)} bytes")
        self.blobs[(service, username)] = blob

    def delete_password(self, service: str, username: str) -> None:
        if self.blobs.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


class RecordingKeyring(_Double):
    """Delegates to a real OS backend and remembers every name written, so a contract can list what is
    stored under a service on backends that cannot enumerate (Keychain, Credential Manager)."""

    def __init__(self, inner: KeyringBackend) -> None:
        super().__init__()
        self.inner = inner
        self.names: dict[str, set[str]] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.inner.get_password(service, username)

    def set_password(self, service: str, username: str, password: str) -> None:
        self.names.setdefault(service, set()).add(username)
        self.inner.set_password(service, username, password)

    def delete_password(self, service: str, username: str) -> None:
        self.inner.delete_password(service, username)

    def stored(self, service: str) -> set[str]:
        return {n for n in self.names.get(service, set()) if self.inner.get_password(service, n) is not None}

"""SecretStore on the OS keyring, through the `keyring` library (the only module that imports it).

Values larger than one keyring entry can hold are split into chunks. Layout, for a secret ``name``
under the keyring service ``service`` (``kubetray`` by default):

* ``name`` holds either the value itself (when it fits) or a *manifest*: ``MANIFEST_PREFIX`` followed
  by JSON such as ``{"n":3,"sha256":"…","slot":"b","v":1}``.
* ``name#<slot>.<i>`` for ``i`` in ``0 … n-1`` hold the chunks. ``slot`` alternates between ``a`` and
  ``b``: a save writes the slot the current manifest does not name, so the live value is never touched.

Save writes every new chunk, then the manifest (the commit point: one atomic entry write), then deletes
the other slot's chunks. A crash at any step leaves either the old or the new value readable, never a
torn one, and the leftovers can only sit in the two slots, so later saves and deletes find them by
probing ``name#a.0`` and ``name#b.0`` without keeping a list. A slot always holds a contiguous run
``0 … k-1`` (chunks are written upwards and deleted downwards), which is what makes probing enough.

Sizes are counted in UTF-16 code units, the unit Windows Credential Manager counts against its 2,560-byte
limit; outside Windows they only decide when to chunk.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import secrets
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import cast

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail
from keyring.errors import KeyringLocked, NoKeyringError, PasswordDeleteError

from broker.core.errors import StoreUnavailable
from broker.store import chunks
from broker.store.chunks import MANIFEST_PREFIX, SLOTS

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "kubetray"
PROBE_NAME = "kubetray-probe"

# Windows caps a credential at 2,560 bytes of UTF-16 (1,280 code units); keep a margin below it.
WINDOWS_CHUNK_SIZE = 1200
LARGE_CHUNK_SIZE = 1 << 20
_CHUNK_SIZES = {
    "keyring.backends.Windows.WinVaultKeyring": WINDOWS_CHUNK_SIZE,
    "keyring.backends.SecretService.Keyring": LARGE_CHUNK_SIZE,
    "keyring.backends.libsecret.Keyring": LARGE_CHUNK_SIZE,
    "keyring.backends.macOS.Keyring": LARGE_CHUNK_SIZE,
    "keyring.backends.kwallet.DBusKeyring": LARGE_CHUNK_SIZE,
}
# Backends that must never hold tokens, whoever configured them: one forgets everything, one is plaintext,
# one asks for its password on a terminal (the daemon has none, so it would wait forever).
_REFUSED = {
    "keyring.backends.null.Keyring": "stores nothing",
    "keyrings.alt.file.PlaintextKeyring": "stores secrets in plaintext",
    "keyrings.alt.file.EncryptedKeyring": "asks for its password on a terminal, which the daemon does not have",
}

_NO_KEYRING = (
    "No OS keyring is available (on Linux: no Secret Service answers on the D-Bus session bus). "
    "Install and unlock gnome-keyring, or enable KeePassXC's Secret Service integration, "
    "or set PYTHON_KEYRING_BACKEND; kubetray never falls back to storing tokens in plaintext."
)


# The OS's own backend, taken directly when nothing configures keyring: its discovery imports every backend
# it knows through entry points (on Linux the macOS one runs ctypes.util.find_library, a subprocess), which
# the first kubectl after a restart waits for.
_PLATFORM_BACKENDS = {
    "linux": ("keyring.backends.SecretService", "Keyring"),
    "darwin": ("keyring.backends.macOS", "Keyring"),
    "win32": ("keyring.backends.Windows", "WinVaultKeyring"),
}


def default_backend(environ: Mapping[str, str] | None = None, platform: str | None = None) -> KeyringBackend:
    """The keyring backend for this process: what `keyring` picks (PYTHON_KEYRING_BACKEND, keyringrc.cfg,
    then priority), without the refused members of a chain (see :func:`without_refused`), whenever
    anything configures it; otherwise the platform's own backend if it is viable here (the secure member
    keyring's priorities would choose or chain on a desktop), without keyring's full discovery.

    `keyring` decides once per process and caches the choice, so call this at start-up.
    """
    env = os.environ if environ is None else environ
    plat = platform or sys.platform
    plat = "linux" if plat.startswith("linux") else plat
    if plat in _PLATFORM_BACKENDS and not env.get("PYTHON_KEYRING_BACKEND") and not _keyring_configured():
        module_name, class_name = _PLATFORM_BACKENDS[plat]
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
            if cls.priority > 0:  # keyring's viability test: raises, or is <= 0, where it cannot work
                return cast(KeyringBackend, cls())
        except Exception:  # not viable here: let keyring choose, and explain, as it always has
            log.debug("the platform keyring backend is not viable; asking keyring", exc_info=True)
    return without_refused(keyring.get_keyring())


class _FixedChain(chainer.ChainerBackend):
    """A ChainerBackend over a chosen list of members (keyring's own re-discovers them on every call)."""

    priority = 10  # keyring's is a class property counting the discovered backends; ours are fixed

    def __init__(self, members: list[KeyringBackend]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._members = members

    @property
    def backends(self) -> list[KeyringBackend]:
        return list(self._members)


def without_refused(backend: KeyringBackend) -> KeyringBackend:
    """``backend``, or for a chain, the chain of its members that may hold tokens.

    A chain reads from every member in turn and writes to the first that accepts, so with Secret
    Service *and* keyrings.alt's PlaintextKeyring installed (Debian pulls the latter in with several
    packages) a lookup that misses the keyring falls through to a plaintext file anyone with the user's
    files can plant or read, and a member that declines a write hands it to the file. Refusing the
    whole chain would make kubetray unusable for everyone who merely has keyrings.alt installed, so the
    refused members are excluded and the secure ones used. A chain of nothing but refused members stays
    as it is, and :func:`check_usable` refuses it with the reason.
    """
    if not isinstance(backend, chainer.ChainerBackend):
        return backend
    members = list(backend.backends)
    kept = [m for m in members if _refusal(m) is None]
    if not kept or len(kept) == len(members):
        return backend
    for member in members:
        if member not in kept:
            log.info("not using keyring backend %s: it %s", member.name, _refusal(member))
    return kept[0] if len(kept) == 1 else _FixedChain(kept)


def _refusal(backend: KeyringBackend) -> str | None:
    """Why ``backend`` must not hold tokens, or None when it may."""
    for name in _class_names(backend):
        if name in _REFUSED:
            return _REFUSED[name]
    return None


def _keyring_configured() -> bool:
    """True when a keyringrc.cfg exists (it may name a backend or extra backend paths)."""
    from keyring.util import platform_

    return os.path.exists(os.path.join(platform_.config_root(), "keyringrc.cfg"))


def describe_backend(backend: KeyringBackend) -> str:
    """A short human-readable name, e.g. "SecretService Keyring"; a chainer lists what it chains."""
    name = str(backend.name)
    if isinstance(backend, chainer.ChainerBackend):
        return f"{name} ({', '.join(str(b.name) for b in backend.backends) or 'nothing'})"
    return name


def default_chunk_size(backend: KeyringBackend) -> int:
    """The largest value (in UTF-16 code units) one entry of ``backend`` is trusted to hold.

    Unknown backends get the smallest known limit: chunking costs a few writes, an oversized write fails.
    """
    if isinstance(backend, chainer.ChainerBackend):
        # The chainer writes to whichever backend accepts first, so every one of them must fit.
        return min((default_chunk_size(b) for b in backend.backends), default=WINDOWS_CHUNK_SIZE)
    for name in _class_names(backend):
        if name in _CHUNK_SIZES:
            return _CHUNK_SIZES[name]
    return WINDOWS_CHUNK_SIZE


def check_usable(backend: KeyringBackend, *, service: str = DEFAULT_SERVICE) -> None:
    """Raise StoreUnavailable, with a one-line fix, unless ``backend`` can keep a secret right now.

    Probes with a write, a read and a delete of a random value under ``PROBE_NAME``.
    """
    if isinstance(backend, fail.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        raise StoreUnavailable(_NO_KEYRING)
    members = list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    for member in members:
        # Also inside a chain: it would write to the refused member whenever the one before it fails.
        reason = _refusal(member)
        if reason is not None:
            where = "" if member is backend else f", chained in {describe_backend(backend)},"
            raise StoreUnavailable(
                f"The keyring backend {member.name}{where} {reason}, so kubetray refuses it; use the OS "
                "keyring (install and unlock gnome-keyring, or enable KeePassXC's Secret Service integration) "
                "and unset PYTHON_KEYRING_BACKEND (or default-keyring in keyringrc.cfg) if it names this backend."
            )
    probe = secrets.token_urlsafe(16)
    with translating(backend, "use"):  # any failure of the backend means "not usable"
        backend.set_password(service, PROBE_NAME, probe)
        echoed = backend.get_password(service, PROBE_NAME)
    if echoed != probe:
        raise StoreUnavailable(
            f"The OS keyring ({describe_backend(backend)}) did not return what was written to it; "
            "kubetray needs a keyring that keeps secrets, such as gnome-keyring, KeePassXC or the macOS Keychain."
        )
    with translating(backend, "delete from"):
        backend.delete_password(service, PROBE_NAME)  # signing out must be able to forget tokens


@contextmanager
def translating(backend: KeyringBackend, doing: str) -> Iterator[None]:
    """Where keyring's errors become ours (one sentence with a fix), the cause kept."""
    try:
        yield
    except StoreUnavailable:
        raise
    except Exception as exc:
        raise _unavailable(backend, exc, doing) from exc


def _class_names(backend: KeyringBackend) -> list[str]:
    """Dotted names along the MRO, so a subclass of a known backend inherits its treatment."""
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(backend).__mro__]


def _unavailable(backend: KeyringBackend, exc: Exception, doing: str) -> StoreUnavailable:
    """Translate a backend failure into one sentence with a fix.

    Only the exception's type is named: backend messages are not ours to vouch for, and a message that
    echoed a value would leak a token into logs and the shim's stderr.
    """
    where = describe_backend(backend)
    if isinstance(exc, NoKeyringError):
        return StoreUnavailable(_NO_KEYRING)
    if isinstance(exc, KeyringLocked):
        return StoreUnavailable(
            f"The OS keyring ({where}) is locked. Unlock it (log in to the desktop, or unlock the default "
            "collection in Passwords and Keys or KeePassXC), then try again."
        )
    return StoreUnavailable(
        f"Could not {doing} the OS keyring ({where}): {type(exc).__name__}. "
        "Check that the keyring service is running and unlocked, then try again."
    )


class KeyringSecretStore:
    """Named secrets in a keyring backend, chunked when they outgrow one entry.

    Every keyring failure surfaces as StoreUnavailable. Operations are serialised within the process;
    two processes writing the same name at once are not supported (the daemon is the only writer).
    """

    def __init__(
        self, backend: KeyringBackend, *, service: str = DEFAULT_SERVICE, chunk_size: int | None = None
    ) -> None:
        size = default_chunk_size(backend) if chunk_size is None else chunk_size
        if size < 2:
            # A character outside the BMP takes two code units and cannot be split.
            raise ValueError(f"chunk_size must be at least 2, not {size}")
        self._backend = backend
        self._service = service
        self._chunk_size = size
        self._lock = threading.Lock()

    @property
    def chunk_size(self) -> int:
        """The largest value, in UTF-16 code units, stored in one keyring entry."""
        return self._chunk_size

    def describe(self) -> str:
        """A short human-readable name of the backend, e.g. "SecretService Keyring"."""
        return describe_backend(self._backend)

    def check(self) -> None:
        """Raise StoreUnavailable unless the backend can keep a secret right now (see check_usable)."""
        check_usable(self._backend, service=self._service)

    def load(self, name: str) -> str | None:
        """The value saved under ``name``; None when absent or when its chunks are damaged."""
        _check_name(name)
        with self._lock:
            return chunks.read(self._get, name)

    def save(self, name: str, value: str) -> None:
        """Store ``value`` under ``name``, replacing any previous value (see the module docstring)."""
        _check_name(name)
        value.encode("utf-8")  # lone surrogates cannot be stored anywhere: fail before writing anything
        with self._lock:
            head = self._get(name)
            previous = chunks.manifest_of(head)
            if chunks.units(value) <= self._chunk_size and not value.startswith(MANIFEST_PREFIX):
                self._set(name, value)
                # Also when the old value was plain: a crashed chunked save may have left chunks behind.
                self._tidy(name, [(slot, 0, chunks.known(previous, slot)) for slot in SLOTS])
                return
            # Write the slot the live manifest does not name, so the old value stays whole until the commit.
            target = "b" if previous is not None and previous.slot == "a" else "a"
            other = "a" if target == "b" else "b"
            pieces = chunks.split(value, self._chunk_size)
            for i, piece in enumerate(pieces):
                self._set(chunks.chunk_name(name, target, i), piece)
            self._set(name, chunks.Manifest(target, len(pieces), chunks.digest(value)).encode())
            # Committed. What follows only tidies: leftovers of an earlier crash beyond our chunks, and the
            # previous generation in the other slot.
            self._tidy(name, [(target, len(pieces), len(pieces)), (other, 0, chunks.known(previous, other))])

    def delete(self, name: str) -> None:
        """Remove ``name`` and every chunk it has; deleting an absent name does nothing."""
        _check_name(name)
        with self._lock:
            head = self._get(name)
            manifest = chunks.manifest_of(head)
            # Chunks first: if this is interrupted, the manifest still stands (reading as absent) and the next
            # delete finishes the job; the other order could strand chunks that nothing points to.
            for slot in SLOTS:
                self._purge(name, slot, keep=0, known=chunks.known(manifest, slot))
            if head is not None:
                self._delete(name)

    def _tidy(self, name: str, plan: list[tuple[str, int, int]]) -> None:
        """Purge each ``(slot, keep, known)`` in ``plan``.

        Best effort, after a commit: a failure leaves only stale chunks, which later saves remove.
        """
        try:
            for slot, keep, known in plan:
                self._purge(name, slot, keep=keep, known=known)
        except StoreUnavailable:
            log.warning("could not remove stale chunks of secret %r; a later save or delete will", name)

    def _purge(self, name: str, slot: str, *, keep: int, known: int) -> None:
        """Delete chunks ``keep`` and up of ``slot``; ``known`` chunks are known to exist already."""
        end = max(keep, known)
        while self._get(chunks.chunk_name(name, slot, end)) is not None:
            end += 1
        # Downwards, so an interruption leaves a contiguous run from 0 (see the module docstring).
        for i in reversed(range(keep, end)):
            self._delete(chunks.chunk_name(name, slot, i))

    def _get(self, username: str) -> str | None:
        with translating(self._backend, "read from"):
            value: str | None = self._backend.get_password(self._service, username)
        return value

    def _set(self, username: str, value: str) -> None:
        with translating(self._backend, "write to"):
            self._backend.set_password(self._service, username, value)

    def _delete(self, username: str) -> None:
        with translating(self._backend, "delete from"), contextlib.suppress(PasswordDeleteError):
            self._backend.delete_password(self._service, username)  # already gone: deleting is idempotent


def _check_name(name: str) -> str:
    if not name or "#" in name:
        raise ValueError(f"secret names must be non-empty and free of '#' (reserved for chunks): {name!r}")
    return name



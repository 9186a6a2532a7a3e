"""The ports: what the core needs from the outside world, as Protocols.

Adapters in broker/sources, broker/store and broker/ipc implement them; tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from broker.core.model import Profile, RequestContext, Token

Progress = Callable[[str], None]
"""Receives one line for the person waiting (e.g. the device-code message)."""


class Clock(Protocol):
    """Wall-clock time in seconds since the epoch. Tests move it instead of sleeping."""

    def now(self) -> float: ...


class TokenSource(Protocol):
    """Gets tokens from an identity provider for one kind of profile. Raises KubetrayError subclasses.

    ``context`` is the caller's (environment, cwd, secrets) and comes with every call: a source reads
    what it needs from it and keeps nothing of it beyond the call.
    """

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        """Return a token without user interaction (cache or refresh token); LoginRequired if impossible."""
        ...

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        """Run an interactive sign-in (browser or device code), reporting to ``progress``."""
        ...

    def sign_out(self, profile: Profile) -> str | None:
        """Forget every token this source holds for the profile's sign-in group, in memory and at rest
        (revoking it at the provider first where the provider offers that).

        A call of this source still running for the profile must not write its result back afterwards.
        Returns a sentence for the person (e.g. whether the refresh token was revoked), or None. Never
        raises for a failed revocation: the local deletion still happens."""
        ...


class SecretStore(Protocol):
    """Named secrets in the OS keyring. Raises StoreUnavailable when the keyring cannot be used."""

    def load(self, name: str) -> str | None: ...

    def save(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...

    def describe(self) -> str:
        """A short human-readable name of the backend, e.g. "SecretService Keyring"."""
        ...


class TokenVault(Protocol):
    """The latest token of each profile, kept at rest in the OS keyring beside its sign-in, so a daemon
    started again answers the first kubectl without loading its sign-in sources. Raises StoreUnavailable."""

    def load(self, key: str) -> Token | None: ...

    def save(self, key: str, token: Token, serve_until: float) -> None:
        """Keep ``token``; ``serve_until`` is the policy's expirationTimestamp for it."""
        ...

    def forget(self, key: str) -> None: ...


class ProfileRegistry(Protocol):
    """Non-secret metadata of the profiles the daemon has served, kept across restarts."""

    def load(self) -> list[dict[str, object]]: ...

    def save(self, records: list[dict[str, object]]) -> None: ...

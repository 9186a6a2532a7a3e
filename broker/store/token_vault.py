"""TokenVault on the OS keyring: the last token each profile was served, one entry per profile.

It lives beside the sign-in caches the sources keep there (the same keyring, the same service name),
so a daemon started again — the first kubectl after login, reboot or Quit — answers from it without
msal, the sign-in caches or a round trip to the provider. Reads may go through a lighter reader than
the one that writes (broker/store/secret_service.py on Linux); both see the same entries.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from broker.core.errors import StoreUnavailable

if TYPE_CHECKING:  # the first answers read entries (read_entry) before the model loads
    from broker.core.model import Token
    from broker.core.ports import SecretStore

log = logging.getLogger(__name__)

PREFIX = "served-"  # + the profile key; the sign-in caches' names never start with it
_FIELDS = ("access_token", "expires_on", "obtained_at", "account", "home_account_id", "tenant_id")


class Reader(Protocol):
    def load(self, name: str) -> str | None: ...


def entry_name(key: str) -> str:
    return PREFIX + key


def encode(token: Token, serve_until: float) -> str:
    """The entry: the token's fields, and until when it may be handed to kubectl (Policy.serve_until,
    so the first answers need no policy of their own)."""
    body = {"v": 1, **{name: getattr(token, name) for name in _FIELDS}, "serve_until": serve_until}
    return json.dumps(body, separators=(",", ":"))


def read_entry(text: str) -> dict[str, Any] | None:
    """An entry's fields, checked (``access_token`` a non-empty string, ``serve_until`` and
    ``expires_on`` numbers), or None when the entry is not one this version wrote."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict) or body.get("v") != 1:
        return None
    token, until, expires = body.get("access_token"), body.get("serve_until"), body.get("expires_on")
    if not isinstance(token, str) or not token or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in (until, expires)):
        return None
    return body


def decode(text: str) -> Token | None:
    """The token in an entry, or None when the entry is not one this version wrote."""
    from broker.core.model import Token

    body = read_entry(text)
    if body is None:
        return None
    try:
        token = Token(access_token=body["access_token"], expires_on=float(body["expires_on"]),
                      obtained_at=float(body["obtained_at"]), account=body["account"],
                      home_account_id=body["home_account_id"], tenant_id=body["tenant_id"])
    except (KeyError, TypeError, ValueError):
        return None
    if not all(isinstance(getattr(token, n), str) for n in ("access_token", "account", "home_account_id",
                                                             "tenant_id")) or not token.access_token:
        return None
    return token


class KeyringTokenVault:
    """Reads through ``reader`` when there is one (falling back to ``store`` when it cannot tell);
    writes to ``store``."""

    def __init__(self, store: SecretStore, reader: Reader | None = None) -> None:
        self._store = store
        self._reader = reader

    def load(self, key: str) -> Token | None:
        name = entry_name(key)
        text = self._read(name)
        if text is None:
            return None
        token = decode(text)
        if token is None:
            log.warning("ignoring an unreadable saved token of profile %s", key)
        return token

    def save(self, key: str, token: Token, serve_until: float) -> None:
        self._store.save(entry_name(key), encode(token, serve_until))

    def forget(self, key: str) -> None:
        self._store.delete(entry_name(key))

    def _read(self, name: str) -> str | None:
        if self._reader is not None:
            try:
                return self._reader.load(name)
            except StoreUnavailable as exc:
                log.debug("vault: %s; asking the keyring store", exc.message)
        return self._store.load(name)

"""A read-only Secret Service client for the first kubectl after a restart (Linux), on jeepney alone.

The `keyring` library takes ~100 ms to import (its backend module pulls in urllib, importlib.metadata
and more) and SecretStorage another ~25 ms of Diffie-Hellman set-up per connection; the first kubectl
after login, reboot or Quit waits for the daemon, so that answer reads the keyring through this module
instead (~12 ms to import, ~3 ms per read). It reads exactly what keyring's SecretService backend
wrote: the default collection, items with the attributes ``service`` and ``username``, the value as
UTF-8, chunked values through broker/store/chunks.py. It never writes, never unlocks and never
prompts: a locked collection, a missing service or any D-Bus error reads as "cannot tell"
(StoreUnavailable), and the caller asks the full keyring store instead.

The secret crosses the session bus in a "plain" session: the bus is the user's own (other users cannot
connect to it), and any process of the user that could watch it could equally ask the Secret Service
for the item itself (docs/security.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from broker.core.errors import StoreUnavailable
from broker.store import chunks

_BUS_NAME = "org.freedesktop.secrets"
_SERVICE_PATH = "/org/freedesktop/secrets"
_DEFAULT_COLLECTION = "/org/freedesktop/secrets/aliases/default"
TIMEOUT = 2.0  # per D-Bus call; a Secret Service that does not answer at once is left to the full store


def applies(environ: Mapping[str, str], platform: str) -> bool:
    """Whether the full store would use keyring's SecretService backend on its default collection, so
    this reader sees the same items: Linux, a session bus, and nothing configuring keyring otherwise
    (PYTHON_KEYRING_BACKEND, or a keyringrc.cfg, which may name another backend or collection)."""
    if not platform.startswith("linux") or not environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    if environ.get("PYTHON_KEYRING_BACKEND"):
        return False
    home = environ.get("HOME") or os.path.expanduser("~")
    config = environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return not os.path.exists(os.path.join(config, "python_keyring", "keyringrc.cfg"))


class SecretServiceReader:
    """``load(name)`` of a SecretStore, read-only, one D-Bus connection per load."""

    def __init__(self, service: str = "kubetray") -> None:
        self._service = service

    def load(self, name: str) -> str | None:
        try:
            return self._load(name)
        except StoreUnavailable:
            raise
        except Exception as exc:  # jeepney's and the socket's errors alike mean "cannot tell from here"
            raise StoreUnavailable(f"the Secret Service could not be read directly ({type(exc).__name__})") from exc

    def _load(self, name: str) -> str | None:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
        from jeepney.wrappers import unwrap_msg

        service = DBusAddress(_SERVICE_PATH, bus_name=_BUS_NAME, interface="org.freedesktop.Secret.Service")
        collection = DBusAddress(_DEFAULT_COLLECTION, bus_name=_BUS_NAME,
                                 interface="org.freedesktop.Secret.Collection")
        connection = open_dbus_connection(bus="SESSION")
        try:
            def call(address: DBusAddress, method: str, signature: str, *args: Any) -> Any:
                reply = connection.send_and_get_reply(new_method_call(address, method, signature, args),
                                                      timeout=TIMEOUT)
                return unwrap_msg(reply)

            _output, session = call(service, "OpenSession", "sv", "plain", ("s", ""))

            def get(username: str) -> str | None:
                (items,) = call(collection, "SearchItems", "a{ss}", {"service": self._service, "username": username})
                if not items:
                    return None
                (secrets,) = call(service, "GetSecrets", "aoo", items[:1], session)
                if items[0] not in secrets:  # present but locked: only the full store may unlock
                    raise StoreUnavailable("the keyring item is locked")
                _session, _params, value, _content_type = secrets[items[0]]
                return bytes(value).decode("utf-8")

            return chunks.read(get, name)
        finally:
            connection.close()

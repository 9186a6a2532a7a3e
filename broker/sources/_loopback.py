"""The browser sign-in's redirect listener, on the loopback interface and nowhere else.

MSAL's listener binds 0.0.0.0 (every interface) wherever it believes it runs in a container — any host
with /.dockerenv, /run/.containerenv or a container-looking cgroup, which includes dev containers and
WSL-like setups where a desktop daemon is perfectly local. A listener on every interface lets anyone
who can reach the machine race the browser to it. kubetray's browser is always on the same machine
(the daemon opens it), so the listener binds 127.0.0.1, as RFC 8252 section 8.3 asks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from msal.oauth2cli import authcode

from broker.core.errors import InvalidArguments

LOOPBACK = "127.0.0.1"


class LoopbackReceiver(authcode.AuthCodeReceiver):  # type: ignore[misc]  # msal ships no type hints
    """MSAL's auth-code receiver (form_post handling, state check, timeout), bound to 127.0.0.1 only."""

    def __init__(self, port: int | None = None) -> None:
        # Not super().__init__(): that binds before we could choose the address. These are the three
        # attributes the receiver's methods use (msal 1.39); tests/integration pins the bound address.
        self._scheduled_actions: list[object] = []
        self._server = authcode._AuthCodeHttpServer((LOOPBACK, port or 0), authcode._AuthCodeHandler)
        self._closing = False

    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)


@contextmanager
def loopback_receiver(port: int | None, *, enabled: bool = True) -> Iterator[LoopbackReceiver | None]:
    """A listening :class:`LoopbackReceiver` for the block (None when ``enabled`` is false, e.g. the OS
    broker signs in without a redirect); a port that cannot be bound is one clear line."""
    if not enabled:
        yield None
        return
    try:
        receiver = LoopbackReceiver(port)
    except OSError as exc:
        raise InvalidArguments(
            f"cannot listen on {LOOPBACK}:{port or 0} for the browser's redirect ({exc.strerror}); "
            "free that port or change the redirect port in the kubeconfig"
        ) from exc
    with receiver:
        yield receiver

"""The HTTP client handed to MSAL: one requests session with bounded timeouts and the caller's network.

A profile's requests go through the proxy and trust the CA bundle its caller's environment named
(HTTPS_PROXY / HTTP_PROXY / NO_PROXY in either case, REQUESTS_CA_BUNDLE, SSL_CERT_FILE, SSL_CERT_DIR,
forwarded with the request), not whatever environment the long-lived daemon happened to start with.
One rule (docs/protocol.md): a call that carried an environment is served with exactly that network;
a refresh nobody asked for uses the latest caller's of that profile; only before any caller (just
after a restart) does the daemon's own environment apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class Network:
    """Proxies and CA trust for one profile's requests; ``from_caller`` False means the daemon's own."""

    https_proxy: str = ""
    http_proxy: str = ""
    no_proxy: str = ""
    ca_bundle: str = ""
    from_caller: bool = False

    @classmethod
    def of(cls, env: Mapping[str, str]) -> Network:
        """The network a caller's forwarded environment asks for (empty environment: the daemon's)."""
        if not env:
            return cls()

        def either(name: str) -> str:
            return env.get(name) or env.get(name.lower()) or ""

        ca = next((env[name] for name in _CA_VARIABLES if env.get(name)), "")
        return cls(either("HTTPS_PROXY"), either("HTTP_PROXY"), either("NO_PROXY"), ca, from_caller=True)

    def bypasses(self, url: str) -> bool:
        """NO_PROXY as curl and Go read it: ``*``, or host suffixes (a leading dot optional)."""
        host = (urlsplit(url).hostname or "").lower()
        for entry in (e.strip().lower() for e in self.no_proxy.split(",")):
            entry = entry.lstrip(".").rsplit(":", 1)[0] if entry.count(":") == 1 else entry.lstrip(".")
            if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
                return True
        return False

    def proxies_for(self, url: str) -> dict[str, str]:
        if self.bypasses(url):
            return {}
        proxy = self.https_proxy if url.lower().startswith("https:") else self.http_proxy
        return {"https": proxy, "http": proxy} if proxy else {}


class BoundedSession:
    """What MSAL calls ``http_client``: get/post/close, every request with a timeout, through ``network``."""

    def __init__(self, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
                 network: Network | None = None) -> None:
        self._session = requests.Session()
        self._timeout = timeout
        self.network = network or Network()
        if self.network.from_caller:
            # The daemon's own environment must not add a proxy or a CA the caller did not have.
            self._session.trust_env = False
            self._session.verify = self.network.ca_bundle or True

    def _options(self, url: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        kwargs.setdefault("timeout", self._timeout)
        if self.network.from_caller:
            kwargs.setdefault("proxies", self.network.proxies_for(url))
        return kwargs

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> requests.Response:
        return self._session.get(url, params=params, headers=headers, **self._options(url, kwargs))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response:
        return self._session.post(url, params=params, data=data, headers=headers, **self._options(url, kwargs))

    def close(self) -> None:
        self._session.close()


def session_for(context_env: Mapping[str, str]) -> BoundedSession:
    """The default ``http_client_factory``: a bounded session on the caller's network."""
    return BoundedSession(network=Network.of(context_env))

"""The HTTP client handed to MSAL: one requests session with bounded timeouts.

requests honours HTTPS_PROXY / NO_PROXY and REQUESTS_CA_BUNDLE from the environment by itself
(trust_env); this wrapper only makes sure no call can hang without a timeout.
"""

from __future__ import annotations

from typing import Any

import requests

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0


class BoundedSession:
    """What MSAL calls ``http_client``: get/post/close, every request with a timeout."""

    def __init__(self, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT)) -> None:
        self._session = requests.Session()
        self._timeout = timeout

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.get(url, params=params, headers=headers, **kwargs)

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return self._session.post(url, params=params, data=data, headers=headers, **kwargs)

    def close(self) -> None:
        self._session.close()

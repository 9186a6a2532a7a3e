"""When to refresh, how long to serve, how to back off: pure functions of time.

Tokens are refreshed ahead of expiry so that no kubectl call waits on the identity provider, and the
expirationTimestamp handed to kubectl is earlier than the real expiry, because client-go adds no
margin and a 401 fails the command (kubectl re-runs the plugin but not the request).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from broker.core.model import Token


@dataclass(frozen=True)
class Policy:
    """Margins in seconds. Each is capped by a fraction of the token's lifetime, so short-lived tokens
    (minutes) still get a refresh window and a usable serving window."""

    refresh_margin: float = 600.0  # refresh this long before expiry…
    refresh_fraction: float = 0.5  # …but no earlier than this fraction of the lifetime before it
    expiry_margin: float = 120.0  # expirationTimestamp this long before the real expiry…
    expiry_fraction: float = 0.25  # …capped at this fraction of the lifetime
    jitter: float = 30.0  # spread refreshes of many profiles (at most 10 % of the lifetime)
    backoff_initial: float = 10.0
    backoff_max: float = 600.0

    def lifetime(self, token: Token) -> float:
        return max(0.0, token.expires_on - token.obtained_at)

    def refresh_at(self, token: Token, rand: Callable[[], float] = random.random) -> float:
        """When the background refresh of this token should run."""
        life = self.lifetime(token)
        lead = min(self.refresh_margin, self.refresh_fraction * life)
        jitter = min(self.jitter, 0.1 * life) * rand()
        return token.expires_on - lead - jitter

    def serve_until(self, token: Token) -> float:
        """The expirationTimestamp for kubectl; the token is not served from memory after it."""
        return token.expires_on - min(self.expiry_margin, self.expiry_fraction * self.lifetime(token))

    def is_servable(self, token: Token, now: float) -> bool:
        return now < self.serve_until(token)

    def usable_as_last_resort(self, token: Token, now: float) -> bool:
        """Past the serving window but still valid for a moment: better than an error when the
        provider is down (10 s, or 10 % of the lifetime for short-lived tokens)."""
        return now < token.expires_on - min(10.0, 0.1 * self.lifetime(token))

    def backoff(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry number ``failures`` (1-based): exponential, capped, with full jitter above half."""
        base = min(self.backoff_max, self.backoff_initial * (2 ** max(0, failures - 1)))
        return float(base / 2 + (base / 2) * rand())

"""The background thread that keeps tokens fresh by running the service's due refreshes."""

from __future__ import annotations

import logging
import threading

from broker.core.ports import Clock
from broker.core.service import TokenService

log = logging.getLogger(__name__)


class RefreshScheduler:
    """Sleeps until the next refresh is due (or until poked because the state changed)."""

    def __init__(self, service: TokenService, clock: Clock, *, max_sleep: float = 30.0) -> None:
        self._service = service
        self._clock = clock
        self._max_sleep = max_sleep
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubetray-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        """Recompute the next due time now (called on every state change)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def tick(self) -> float | None:
        """One pass: start every due refresh; returns when the next one is due (None: nothing planned).

        The thread calls it in a loop; a test driving a fake clock calls it instead of the thread."""
        try:
            self._service.run_due()
            return self._service.next_due()
        except Exception:  # keep refreshing the other profiles whatever one of them does
            log.exception("refresh scheduler error")
            return None

    def _loop(self) -> None:
        while not self._stopped.is_set():
            due = self.tick()
            delay = self._max_sleep if due is None else min(self._max_sleep, max(0.05, due - self._clock.now()))
            self._wake.wait(delay)
            self._wake.clear()

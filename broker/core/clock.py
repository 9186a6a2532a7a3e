"""The real clock (tests pass their own)."""

import time


class SystemClock:
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        return time.time()

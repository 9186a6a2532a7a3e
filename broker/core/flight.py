"""Single flight: one sign-in or refresh per sign-in group, however many callers wait for it.

Every caller that arrives while a flight is running joins it: it gets the same Future, the progress
lines said so far (so a late shim still shows the device code) and every later one.
"""

from __future__ import annotations

import enum
import logging
import threading
from concurrent.futures import Future

from broker.core.errors import KubetrayError
from broker.core.model import NO_CONTEXT, RequestContext, Token
from broker.core.ports import Progress

log = logging.getLogger(__name__)


class FlightKind(enum.Enum):
    """Why a flight runs: kubectl needs a token, a person asked to sign in, a refresh nobody waits on, or
    the warm-up of a profile known from before a restart (its kept token, else a silent acquisition)."""

    OBTAIN = "obtain"
    SIGN_IN = "sign_in"
    REFRESH = "refresh"
    WARM_UP = "warm_up"


class Flight:
    """One running acquisition. ``person_present`` and ``allow_auto`` accumulate over its callers: a
    sign-in may start if any caller has a person at a terminal, or any caller permits an automatic one.

    ``context`` is the starting caller's (the source gets it with the request); ``generation`` is the
    profile's when the flight started, so a logout in between makes its result void.
    """

    def __init__(self, kind: FlightKind, context: RequestContext = NO_CONTEXT, generation: int = 0) -> None:
        self.kind = kind
        self.context = context
        self.generation = generation
        self.future: Future[Token] = Future()
        # Set when the flight failed but its callers were given the current token instead (the provider
        # is down and the token still works): what a caller that asked for a *new* token is told.
        self.fell_back: KubetrayError | None = None
        self.person_present = False
        self.allow_auto = False
        self._lock = threading.Lock()
        self._said: list[str] = []
        self._listeners: list[Progress] = []

    def join(self, listener: Progress | None, *, person_present: bool, allow_auto: bool) -> Future[Token]:
        with self._lock:
            self.person_present |= person_present
            self.allow_auto |= allow_auto
            if listener is not None:
                self._listeners.append(listener)
                said = list(self._said)
            else:
                said = []
        for line in said:
            _tell(listener, line)
        return self.future

    def progress(self, line: str) -> None:
        """Tell every waiting caller, now and later joiners, one line."""
        with self._lock:
            self._said.append(line)
            listeners = list(self._listeners)
        for listener in listeners:
            _tell(listener, line)


def _tell(listener: Progress | None, line: str) -> None:
    if listener is None:
        return
    try:
        listener(line)
    except Exception:  # a caller that went away must not break the flight for the others
        log.debug("progress listener failed", exc_info=True)

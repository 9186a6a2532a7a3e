"""Fakes for the core's ports: a clock tests move, and a scriptable token source that counts calls."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from broker.core.errors import KubetrayError, LoginRequired
from broker.core.model import Profile, RequestContext, Token
from broker.core.ports import Progress


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class FakeSource:
    """TokenSource whose behaviour tests script. Tokens are ``tok-N`` and live ``lifetime`` seconds."""

    def __init__(self, clock: FakeClock, lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.signed_in = False
        self.silent_calls: list[bool] = []  # force_refresh of each call
        self.sign_in_calls = 0
        self.silent_error: KubetrayError | None = None
        self.sign_in_error: KubetrayError | None = None
        self.sign_in_gate: threading.Event | None = None  # when set, sign_in waits for it
        self.sign_in_message = "open the page and enter code ABCD"
        self.contexts: list[RequestContext] = []  # the context each call was given
        self.silent_gate: threading.Event | None = None  # when set, acquire_silent waits for it
        self.signed_out: list[Profile] = []  # sign_out's profiles, in order
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def _token(self) -> Token:
        now = self.clock.now()
        return Token(access_token=f"tok-{next(self._serial)}", expires_on=now + self.lifetime, obtained_at=now,
                     account="alice@example.test", home_account_id="oid.tid")

    def acquire_silent(
        self, profile: Profile, context: RequestContext, *, force_refresh: bool, account_id: str = ""
    ) -> Token:
        with self._lock:
            self.silent_calls.append(force_refresh)
            self.contexts.append(context)
        if self.silent_gate is not None:
            self.silent_gate.wait(10)
        if self.silent_error is not None:
            raise self.silent_error
        if not self.signed_in:
            raise LoginRequired("not signed in")
        return self._token()

    def sign_in(self, profile: Profile, context: RequestContext, progress: Progress) -> Token:
        with self._lock:
            self.sign_in_calls += 1
            self.contexts.append(context)
        progress(self.sign_in_message)
        if self.sign_in_gate is not None:
            self.sign_in_gate.wait(10)
        if self.sign_in_error is not None:
            raise self.sign_in_error
        self.signed_in = True
        return self._token()

    def sign_out(self, profile: Profile) -> None:
        self.signed_in = False
        self.signed_out.append(profile)


class ThreadSubmit:
    """The service's ``submit`` backed by a real pool (single-flight tests need real concurrency)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4)

    def __call__(self, fn: Callable[[], None]) -> Future[None]:
        return self.pool.submit(fn)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class MemoryRegistry:
    def __init__(self) -> None:
        self.records: list[dict[str, object]] = []
        self.saves = 0

    def load(self) -> list[dict[str, object]]:
        return list(self.records)

    def save(self, records: list[dict[str, object]]) -> None:
        self.saves += 1
        self.records = list(records)


def profile(**overrides: object) -> Profile:
    values: dict[str, object] = dict(
        login="interactive",
        authority="https://login.example.test/tenant-a",
        client_id="client-1",
        server_id="server-1",
        tenant_id="tenant-a",
    )
    values.update(overrides)
    return Profile(**values)  # type: ignore[arg-type]


class MemoryStore:
    """SecretStore in a dict (the keyring's contract without a D-Bus), for in-process source tests."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> str | None:
        with self._lock:
            return self.items.get(name)

    def save(self, name: str, value: str) -> None:
        with self._lock:
            self.items[name] = value

    def delete(self, name: str) -> None:
        with self._lock:
            self.items.pop(name, None)

    def describe(self) -> str:
        return "memory"

"""The token service: cache, margins, single flight, sign-in policy and the refresh schedule.

Callers (the IPC handler, the tray, the CLI) ask for a token and get a Future. A fresh token in memory
is answered at once; otherwise one flight per sign-in group runs on the executor: a silent refresh,
and a sign-in only when a person is there to do it (or no automatic one was abandoned before).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from broker.core.errors import BadRequest, KubetrayError, LoginFailed, LoginRequired, Timeout, unexpected
from broker.core.flight import Flight, FlightKind
from broker.core.model import NO_CONTEXT, Profile, RequestContext, Token
from broker.core.policy import Policy
from broker.core.ports import Clock, ProfileRegistry, Progress, TokenSource, TokenVault
from broker.core.state import (
    STATE_ERROR,
    STATE_OK,
    STATE_SIGN_IN_REQUIRED,
    STATE_SIGNING_IN,
    STATE_UNKNOWN,
    ProfileState,
    ProfileView,
)

log = logging.getLogger(__name__)

Submit = Callable[[Callable[[], None]], object]


@dataclass
class TokenService:
    """Use-case object: ``get_token``, ``login``, ``refresh``, ``logout``, ``run_due``, ``snapshot``.

    The IPC handler and the tray only call these; each flow (including logout, which must win over a
    refresh racing it) is owned here.
    """

    source: TokenSource
    clock: Clock
    submit: Submit
    registry: ProfileRegistry | None = None
    vault: TokenVault | None = None  # the latest token per profile at rest (see Profile.keeps_sign_in)
    policy: Policy = field(default_factory=Policy)
    rand: Callable[[], float] = random.random
    on_change: Callable[[], None] | None = None
    _states: dict[str, ProfileState] = field(default_factory=dict, init=False)
    _flights: dict[str, Flight] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # Orders the vault's writes against logout's delete (taken without _lock held: keyring I/O).
    _vault_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stats: dict[str, int] = field(
        default_factory=lambda: {"served_from_memory": 0, "served_from_vault": 0, "waited": 0, "flights": 0},
        init=False,
    )

    # -- start-up ----------------------------------------------------------------------------------
    def restore(self) -> int:
        """Load remembered profiles; they are warmed (silently) by the next ``run_due``."""
        if self.registry is None:
            return 0
        loaded = 0
        for record in self.registry.load():
            try:
                state = ProfileState.from_record(record)
            except (KeyError, TypeError, ValueError):
                log.warning("ignoring a malformed profile record")
                continue
            with self._lock:
                self._states.setdefault(state.profile.key, state)
            loaded += 1
        return loaded

    # -- the fast path -----------------------------------------------------------------------------
    def cached(self, profile: Profile) -> Token | None:
        """A servable token from memory, or None. Never blocks on I/O."""
        now = self.clock.now()
        with self._lock:
            state = self._states.get(profile.key)
            if state is None or state.token is None or not self.policy.is_servable(state.token, now):
                return None
            state.last_used = now
            self._stats["served_from_memory"] += 1
            return state.token

    def serve_until(self, token: Token) -> float:
        return self.policy.serve_until(token)

    # -- use cases ---------------------------------------------------------------------------------
    def get_token(self, profile: Profile, context: RequestContext | None = None, *, person_present: bool,
                  progress: Progress | None = None) -> Future[Token]:
        """For kubectl: cached, else join or start a flight that may sign in. ``context`` is the
        caller's and applies to this profile only (None: the latest caller's of this profile)."""
        token = self.cached(profile)
        if token is not None:
            done: Future[Token] = Future()
            done.set_result(token)
            return done
        with self._lock:
            self._stats["waited"] += 1
        return self._fly(profile, FlightKind.OBTAIN, context, progress, person_present=person_present,
                         allow_auto=True)

    def login(self, profile: Profile, context: RequestContext | None = None,
              progress: Progress | None = None) -> Future[Token]:
        """A person asked to sign in (CLI, tray): sign in now, or join the flight already running.
        ``context`` None (the tray): the latest caller's context of this profile."""
        return self._fly(profile, FlightKind.SIGN_IN, context, progress, person_present=True, allow_auto=True)

    def refresh(self, key: str) -> Future[Token]:
        """Refresh now without interaction (never starts a sign-in). Fails with the refresh's error when
        it got no new token, also when the current one is still served meanwhile (kubectl is not told:
        it gets the working token; the person who asked for a refresh is)."""
        with self._lock:
            state = self._states.get(key)
        if state is None:
            raise BadRequest(f"no profile {key!r}; `kubetray status` lists them")
        flight = self._join(state.profile, FlightKind.REFRESH, None, None, person_present=False, allow_auto=False)
        refreshed: Future[Token] = Future()

        def settle(done: Future[Token]) -> None:
            error = done.exception() or flight.fell_back
            if error is not None:
                refreshed.set_exception(error)
            else:
                refreshed.set_result(done.result())

        flight.future.add_done_callback(settle)
        return refreshed

    def logout(self, key: str) -> str | None:
        """Sign the profile out: forget its token and the caller context it kept (secrets included),
        then have the source forget what it holds (keyring included). Blocks on the source's I/O.
        Returns the source's note for the person (e.g. whether the refresh token was revoked), or None.

        Serialised with the profile's flights by a generation counter: a refresh or sign-in still
        running finishes into nothing, and its caller is told the profile was signed out.
        """
        with self._lock:
            state = self._states.get(key)
            if state is None:
                raise BadRequest(f"no profile {key!r}; `kubetray status` lists them")
            state.generation += 1
            state.token = None
            state.context = NO_CONTEXT
            state.needs_sign_in = True
            state.auto_sign_in_blocked = True  # signed out on purpose: wait for a person
            # Callers arriving from now on start a new flight rather than join the void one.
            self._flights.pop(key, None)
            profile = state.profile
            records = [s.to_record() for s in self._states.values()]
        self._save(records)
        self._changed()
        kept_error: KubetrayError | None = None
        if self.vault is not None and profile.keeps_sign_in:
            with self._vault_lock:  # after the generation bump: a flight's write either came before or never
                try:
                    self.vault.forget(key)
                except KubetrayError as exc:  # the sign-in itself must still go; then say what failed
                    kept_error = exc
        note = self.source.sign_out(profile)  # the source's revocation, keyring deletion and app closing
        if kept_error is not None:
            raise kept_error
        return note

    def profile(self, key: str) -> Profile | None:
        with self._lock:
            state = self._states.get(key)
            return state.profile if state else None

    # -- the refresh schedule ----------------------------------------------------------------------
    def next_due(self) -> float | None:
        """When ``run_due`` next has work, or None."""
        with self._lock:
            times = [t for s in self._states.values() if (t := self._due_at(s)) is not None]
        return min(times) if times else None

    def run_due(self) -> int:
        """Start a background flight for every profile whose refresh (or warm-up) is due."""
        now = self.clock.now()
        with self._lock:
            due = [(s.profile, FlightKind.WARM_UP if s.token is None else FlightKind.REFRESH)
                   for s in self._states.values() if (t := self._due_at(s)) is not None and t <= now]
        for profile, kind in due:
            self._fly(profile, kind, None, None, person_present=False, allow_auto=False)
        return len(due)

    def _due_at(self, state: ProfileState) -> float | None:
        if state.profile.key in self._flights or state.needs_sign_in:
            return None
        if state.token is None:
            return None if state.warmed else max(state.retry_at, 0.0)
        return max(state.refresh_at, state.retry_at)

    # -- flights -----------------------------------------------------------------------------------
    def _fly(
        self, profile: Profile, kind: FlightKind, context: RequestContext | None, progress: Progress | None, *,
        person_present: bool, allow_auto: bool
    ) -> Future[Token]:
        """Join or start the profile's flight. ``context`` None: a refresh nobody asked for, which uses
        the latest caller's context of this profile."""
        return self._join(profile, kind, context, progress, person_present=person_present,
                          allow_auto=allow_auto).future

    def _join(
        self, profile: Profile, kind: FlightKind, context: RequestContext | None, progress: Progress | None, *,
        person_present: bool, allow_auto: bool
    ) -> Flight:
        with self._lock:
            state = self._states.setdefault(profile.key, ProfileState(profile=profile))
            if profile != state.profile and kind in (FlightKind.OBTAIN, FlightKind.SIGN_IN):
                state.profile = profile  # e.g. a new --timeout from the kubeconfig
            if context is not None:
                state.context = context.with_secrets_from(state.context)
            flight = self._flights.get(profile.key)
            started = flight is None
            if flight is None:
                flight = self._flights[profile.key] = Flight(kind, state.context, state.generation)
                self._stats["flights"] += 1
        flight.join(progress, person_present=person_present, allow_auto=allow_auto)
        if started:
            self._changed()
            self.submit(lambda: self._run(state, flight))
        return flight

    def _run(self, state: ProfileState, flight: Flight) -> None:
        profile = state.profile
        try:
            token = self._acquire(state, flight)
        except KubetrayError as exc:
            self._finish(state, flight, error=exc)
        except Exception as exc:  # an adapter bug must not leave callers waiting forever
            error = unexpected(log, exc, f"internal error while getting a token for profile {profile.key}")
            self._finish(state, flight, error=error)
        else:
            self._finish(state, flight, token=token)

    def _acquire(self, state: ProfileState, flight: Flight) -> Token:
        profile = state.profile
        if flight.kind in (FlightKind.OBTAIN, FlightKind.WARM_UP):
            vaulted = self._read_vault(state)
            if vaulted is not None:
                return vaulted
        if flight.kind is not FlightKind.SIGN_IN:
            try:
                token = self.source.acquire_silent(
                    profile, flight.context, force_refresh=state.token is not None,
                    account_id=state.home_account_id,
                )
                return token
            except LoginRequired as exc:
                reason = exc
        else:
            reason = None
        with self._lock:
            state.needs_sign_in = True
            state.warmed = True
            allowed = flight.person_present or (flight.allow_auto and not state.auto_sign_in_blocked)
            blocked = state.auto_sign_in_blocked
        if not allowed:
            self._changed()
            if blocked:
                raise LoginRequired(
                    f"sign-in to {profile.authority} is required and the last one was not completed; "
                    "run `kubetray login` (or kubectl in a terminal) to sign in"
                )
            raise reason or LoginRequired("sign-in required; run `kubetray login`")
        self._changed()
        try:
            return self.source.sign_in(profile, flight.context, flight.progress)
        except (LoginFailed, Timeout, LoginRequired):
            with self._lock:
                state.auto_sign_in_blocked = True  # abandoned: no one reopens it but a person
            raise

    def _read_vault(self, state: ProfileState) -> Token | None:
        """Once per daemon life and profile, before its sources: the token the vault kept, if servable."""
        with self._lock:
            if self.vault is None or state.vault_read or state.token is not None or state.needs_sign_in \
                    or not state.profile.keeps_sign_in:
                return None
            state.vault_read = True
        try:
            token = self.vault.load(state.profile.key)
        except KubetrayError as exc:
            log.info("could not read the saved token of %s (%s); asking its source", state.profile.key, exc.code)
            return None
        if token is None or not self.policy.is_servable(token, self.clock.now()):
            return None
        with self._lock:
            state.vaulted = token  # _finish keeps it without writing it back
            self._stats["served_from_vault"] += 1
        return token

    def _keep_in_vault(self, state: ProfileState, flight: Flight, token: Token) -> None:
        """Write the profile's new token to the vault, unless a logout came since the flight began (the
        vault lock orders this against logout's delete). A failure costs only the next restart's speed."""
        if self.vault is None or not state.profile.keeps_sign_in:
            return
        with self._vault_lock:
            with self._lock:
                if flight.generation != state.generation or state.vaulted is token or state.token is not token:
                    return
            try:
                self.vault.save(state.profile.key, token, self.policy.serve_until(token))
            except KubetrayError as exc:
                log.warning("could not keep the token of %s in the keyring (%s): the next restart signs in "
                            "through its source", state.profile.key, exc.code)
                return
            with self._lock:
                state.vaulted = token

    def _finish(self, state: ProfileState, flight: Flight, *, token: Token | None = None,
                error: KubetrayError | None = None) -> None:
        now = self.clock.now()
        fallback: Token | None = None
        with self._lock:
            if flight.generation != state.generation:
                # Signed out while this flight ran: keep nothing it got, tell its callers why.
                token, error = None, LoginRequired(
                    "the profile was signed out (`kubetray logout`) while this request waited; "
                    "run kubectl again to sign in")
            elif token is not None:
                state.warmed = True
                state.token = token
                state.account = token.account or state.account
                state.home_account_id = token.home_account_id or state.home_account_id
                state.refresh_at = self.policy.refresh_at(token, self.rand)
                state.last_refresh = now
                state.failures = 0
                state.retry_at = 0.0
                state.needs_sign_in = False
                state.auto_sign_in_blocked = False
                state.last_error = state.last_error_code = ""
            elif error is not None:
                state.warmed = True
                state.last_error, state.last_error_code = error.message, error.code
                if isinstance(error, LoginRequired | LoginFailed):
                    state.token = None
                else:
                    state.failures += 1
                    state.retry_at = now + self.policy.backoff(state.failures, self.rand)
                    # The provider is down or refusing: a token that still works beats an error.
                    if state.token is not None and self.policy.usable_as_last_resort(state.token, now):
                        fallback = state.token
            if self._flights.get(state.profile.key) is flight:
                del self._flights[state.profile.key]
            records = [s.to_record() for s in self._states.values()]
        self._save(records)
        self._changed()
        if token is not None:
            flight.future.set_result(token)
            self._keep_in_vault(state, flight, token)  # after the callers have their answer
        elif fallback is not None:
            flight.fell_back = error
            log.warning("refresh of %s failed (%s); serving the current token", state.profile.key, error.code)  # type: ignore[union-attr]
            flight.future.set_result(fallback)
        else:
            assert error is not None
            flight.future.set_exception(error)

    def _save(self, records: list[dict[str, object]]) -> None:
        if self.registry is None:
            return
        try:
            self.registry.save(records)
        except OSError as exc:
            log.warning("could not save the profile registry: %s", exc.strerror)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- views -------------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Counters since start: tokens served from memory, callers that waited, flights started."""
        with self._lock:
            return dict(self._stats)

    def snapshot(self) -> list[ProfileView]:
        now = self.clock.now()
        with self._lock:
            return [self._view(s, now) for s in self._states.values()]

    def _view(self, s: ProfileState, now: float) -> ProfileView:
        flight = self._flights.get(s.profile.key)
        if flight is not None and s.needs_sign_in:
            state = STATE_SIGNING_IN
        elif s.token is not None and now < s.token.expires_on:
            state = STATE_ERROR if s.failures else STATE_OK
        elif s.needs_sign_in:
            state = STATE_SIGN_IN_REQUIRED
        elif s.failures:
            state = STATE_ERROR
        else:
            state = STATE_UNKNOWN
        p = s.profile
        return ProfileView(
            key=p.key, login=p.login, authority=p.authority, tenant_id=p.tenant_id, client_id=p.client_id,
            server_id=p.server_id, account=s.account, state=state,
            expires_on=s.token.expires_on if s.token else None, last_refresh=s.last_refresh,
            last_error=s.last_error,
        )


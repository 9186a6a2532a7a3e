"""Glue between the token service, autostart and the tray view.

A thread of its own ("kubetray-tray") wakes when the service's state changes or the clock has moved,
takes a snapshot, asks the presenter for a model and notices, and hands them to the view (which
redraws only what changed). Menu actions arrive on the toolkit's thread and are queued to a small
worker pool here, so the menu never waits for the keyring, a browser or the identity provider.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Protocol

from broker.core.autostart import Autostart
from broker.core.errors import KubetrayError
from broker.core.model import Token
from broker.core.ports import Clock
from broker.core.remote import RemoteGate
from broker.core.service import TokenService
from broker.core.state import ProfileView
from broker.tray import presenter
from broker.tray.presenter import TrayInfo, TrayModel

log = logging.getLogger(__name__)

# Re-check the clock-driven text (expiry minutes) and the autostart checkbox this often.
TICK_SECONDS = 15.0


class ViewPort(Protocol):
    """What the controller needs from a view (TrayView, or a recorder in tests)."""

    def show(self, model: TrayModel, *, from_timer: bool = False) -> None: ...
    def notify(self, title: str, message: str) -> None: ...


def open_folder(path: str) -> None:
    """Open ``path`` in the platform's file manager (no shell; returns at once)."""
    os.makedirs(path, exist_ok=True)
    if sys.platform == "win32":
        os.startfile(path)  # noqa: S606 - a folder path we own
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    subprocess.Popen([opener, path], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # noqa: S603
                     stderr=subprocess.DEVNULL, start_new_session=True)


class TrayController:
    """Implements the view's Actions and keeps the view in step with the service."""

    def __init__(
        self,
        service: TokenService,
        view: ViewPort,
        info: TrayInfo,
        *,
        clock: Clock,
        stop: Callable[[], None],
        autostart: Autostart | None = None,
        open_logs: Callable[[str], None] = open_folder,
        tick: float = TICK_SECONDS,
        contexts: Callable[[], Mapping[str, Sequence[str]]] | None = None,
        remote: RemoteGate | None = None,
    ) -> None:
        self._contexts = contexts
        self._remote = remote
        self._contexts_seen: tuple[float, tuple[tuple[str, tuple[str, ...]], ...]] = (float("-inf"), ())
        self._service = service
        self._view = view
        self._info = info
        self._clock = clock
        self._stop = stop
        self._autostart = autostart
        self._open_logs = open_logs
        self._tick = tick
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._state_changed = True
        self._lock = threading.Lock()
        self._last: dict[str, ProfileView] | None = None  # None: no baseline yet (start quietly)
        self._warned: frozenset[tuple[str, float]] = frozenset()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kubetray-tray-action")
        self._thread = threading.Thread(target=self._loop, name="kubetray-tray", daemon=True)

    # -- life cycle ------------------------------------------------------------------------------------
    def bind(self, view: ViewPort) -> None:
        """Use ``view`` from now on (it is created after the controller: the controller is its Actions)."""
        self._view = view

    def attach(self) -> None:
        """Subscribe to the service's changes (keeping whoever was subscribed before)."""
        previous = self._service.on_change

        def changed() -> None:
            if previous is not None:
                previous()
            self.poke()
        self._service.on_change = changed

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def poke(self) -> None:
        """The service's state changed: recompute soon (cheap; called from the service's threads)."""
        with self._lock:
            self._state_changed = True
        self._wake.set()

    def set_tray_note(self, note: str) -> None:
        with self._lock:
            self._info = replace(self._info, tray_note=note)
        self.poke()

    def model(self) -> TrayModel:
        """The model for now (also what ``run`` first shows)."""
        return presenter.build(self._service.snapshot(), self._current_info(), self._clock.now())

    # -- the update loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.update()
            except Exception:  # keep the tray alive whatever one update does
                log.exception("tray update failed")
            self._wake.wait(self._tick)
            self._wake.clear()

    def update(self) -> None:
        """One step: snapshot, notices, model; the view decides whether anything needs redrawing."""
        with self._lock:
            from_timer = not self._state_changed
            self._state_changed = False
        views = self._service.snapshot()
        now = self._clock.now()
        current = {v.key: v for v in views}
        found: list[presenter.Notice] = []
        if self._last is not None:
            found = presenter.notices(self._last, views, now)
        deadline, self._warned = presenter.deadline_notices(views, now, self._warned)
        self._last = current
        for notice in (*found, *deadline):
            self._notify(notice)
        self._view.show(presenter.build(views, self._current_info(), now), from_timer=from_timer)

    def _current_info(self) -> TrayInfo:
        with self._lock:
            info = self._info
        info = replace(info, contexts=self._current_contexts())
        if self._remote is not None:
            info = replace(info, remote=tuple(self._remote.recent()),
                           local_only=tuple(sorted(self._remote.local_only())))
        if self._autostart is None:
            return info
        try:
            return replace(info, autostart=self._autostart.status().enabled)
        except OSError as exc:
            return replace(info, autostart=None, autostart_note=f"cannot read: {exc.strerror}")

    def _current_contexts(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Which kubeconfig contexts use each profile; the kubeconfig is re-read at most every 30 s."""
        if self._contexts is None:
            return ()
        seen_at, value = self._contexts_seen
        now = self._clock.now()
        if now - seen_at >= 30:
            try:
                found = self._contexts()
            except Exception:  # an unreadable kubeconfig must not break the tray
                log.debug("could not read the kubeconfig contexts", exc_info=True)
                found = {}
            value = tuple(sorted((key, tuple(names)) for key, names in found.items()))
            self._contexts_seen = (now, value)
        return value

    def _notify(self, notice: presenter.Notice) -> None:
        log.info("notification: %s for %s", notice.kind, notice.key)
        self._view.notify(notice.title, notice.message)

    # -- actions (called on the toolkit's thread: queue and return) -------------------------------------
    def sign_in(self, key: str) -> None:
        self._pool.submit(self._sign_in, key)

    def sign_in_all(self) -> None:
        self._pool.submit(self._sign_in_all)

    def sign_out(self, key: str) -> None:
        self._pool.submit(self._sign_out_one, key)

    def refresh(self, key: str) -> None:
        self._pool.submit(self._refresh, key)

    def toggle_autostart(self) -> None:
        self._pool.submit(self._toggle_autostart)

    def open_logs(self) -> None:
        self._pool.submit(self._guarded, "open the log folder", lambda: self._open_logs(self._info.log_dir))

    def quit(self) -> None:
        log.info("quit chosen in the tray")
        self._stop()

    # -- the work, on the pool -------------------------------------------------------------------------
    def _start_sign_in(self, key: str) -> Future[Token] | None:
        profile = self._service.profile(key)
        if profile is None:
            return None
        # TokenService.login joins a sign-in already running for this profile (from a shim, the CLI or
        # an earlier click) instead of starting a second one.
        return self._service.login(profile, progress=self._progress)

    def _sign_in(self, key: str) -> None:
        future = self._start_sign_in(key)
        if future is not None:
            self._report_failure(future, "Sign-in did not complete")

    def _sign_in_all(self) -> None:
        wanted = [v.key for v in self._service.snapshot() if v.state in presenter.NEEDS_SIGN_IN]
        for key in wanted:  # one at a time, as `kubetray login` does: one browser tab to deal with at once
            future = self._start_sign_in(key)
            if future is None:
                continue
            try:
                future.result()
            except KubetrayError as exc:
                self._view.notify("Sign-in did not complete", exc.message)
                return
            except Exception:
                log.exception("sign-in from the tray failed")
                return

    def _sign_out_one(self, key: str) -> None:
        profile = self._service.profile(key)
        if profile is None:
            return

        def sign_out() -> None:
            # The service owns logout (memory, keyring, a refresh racing it); the tray only asks, and
            # passes on what the source had to say (revoked at the provider, or how to revoke sessions).
            note = self._service.logout(key)
            if note:
                self._view.notify("Signed out", note)

        self._guarded("sign out", sign_out)

    def _refresh(self, key: str) -> None:
        try:
            future = self._service.refresh(key)
        except KubetrayError as exc:
            self._view.notify("Refresh failed", exc.message)
            return
        # A failing refresh is announced by the state change (error / sign-in required); nothing here.
        future.add_done_callback(lambda f: f.exception())

    def _toggle_autostart(self) -> None:
        autostart = self._autostart
        if autostart is None:
            return

        def toggle() -> None:
            if autostart.status().enabled:
                autostart.disable()
            else:
                autostart.enable()
        self._guarded("change start at login", toggle)
        self.poke()

    def _progress(self, message: str) -> None:
        # The device-code prompt (no browser here) must reach the person: the tray has no terminal.
        self._view.notify("Sign in", message)

    def _report_failure(self, future: Future[Token], title: str) -> None:
        def done(f: Future[Token]) -> None:
            exc = f.exception()
            if isinstance(exc, KubetrayError):
                self._view.notify(title, exc.message)
            elif exc is not None:
                log.error("sign-in from the tray failed: %s", type(exc).__name__)
        future.add_done_callback(done)

    def _guarded(self, what: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except (KubetrayError, OSError, ValueError) as exc:
            message = exc.message if isinstance(exc, KubetrayError) else str(exc)
            log.warning("could not %s: %s", what, message)
            self._view.notify(f"Could not {what}", message)

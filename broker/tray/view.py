"""The tray icon and its menu on pystray: the only module that imports pystray or the toolkit under it.

pystray owns the main thread (``run``). Everything else may call ``show``/``notify``/``stop`` from any
thread: updates are handed to the toolkit's thread (GLib idle on GTK, AppKit's main queue on macOS,
where touching the menu from another thread crashes) and applied only when the model differs from
the one on screen. Menu callbacks run on the toolkit's thread and only hand the action id on.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from broker.tray import icons
from broker.tray.presenter import (
    OPEN_LOGS,
    QUIT,
    REFRESH,
    SIGN_IN,
    SIGN_IN_ALL,
    SIGN_OUT,
    TOGGLE_AUTOSTART,
    Item,
    TrayModel,
)

log = logging.getLogger(__name__)

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Actions(Protocol):
    """What the menu can ask for. Called on the toolkit's thread: must return at once."""

    def sign_in(self, key: str) -> None: ...
    def sign_in_all(self) -> None: ...
    def sign_out(self, key: str) -> None: ...
    def refresh(self, key: str) -> None: ...
    def toggle_autostart(self) -> None: ...
    def open_logs(self) -> None: ...
    def quit(self) -> None: ...


APP_USER_MODEL_ID = "io.kubetray.broker"  # the same id as the macOS LaunchAgent's label


def _set_app_user_model_id() -> None:
    """Windows labels a process's toasts by its AppUserModelID; without one they read "Python"."""
    if sys.platform != "win32":
        return
    import ctypes

    try:
        ctypes.windll.shell32.SetCurrentProcessExplicitAppUserModelID(APP_USER_MODEL_ID)
    except (AttributeError, OSError):
        log.info("could not set the AppUserModelID; notifications will be labelled Python")


class TrayUnavailable(Exception):
    """No tray can be shown here; ``str()`` is the reason, for the log and `kubetray status`."""


def display_problem(environ: Mapping[str, str], platform: str) -> str | None:
    """Why no tray can be shown, judging by the environment alone; None when one may be."""
    if platform in ("darwin", "win32"):
        return None
    if not (environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY")):
        return "no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


class TrayView:
    """One pystray icon showing TrayModels. Create with ``TrayView.create``; ``run`` on the main thread."""

    def __init__(self, pystray: Any, actions: Actions, *, name: str = "kubetray", template: bool = False) -> None:
        self._pystray = pystray
        self._actions = actions
        self.name = name
        self._template = template  # macOS: pystray marks icons as templates, so draw them black
        self.backend = str(pystray.Icon.__module__).rsplit(".", 1)[-1].lstrip("_")
        self.has_menu = bool(pystray.Icon.HAS_MENU)
        self.can_notify = bool(pystray.Icon.HAS_NOTIFICATION)
        self._icon: Any = None
        self._shown: TrayModel | None = None
        self._lock = threading.Lock()
        self._pending: TrayModel | None = None
        self._pending_timer = False
        self._scheduled = False
        self._post = self._poster()
        self.ready = threading.Event()
        self.menu_builds = 0  # how often a menu was handed to the toolkit (tests check rebuild discipline)

    @classmethod
    def create(cls, actions: Actions, *, environ: Mapping[str, str] | None = None,
               platform: str | None = None) -> TrayView:
        """Load the toolkit; raises TrayUnavailable (with the reason) when no tray can be shown."""
        env = os.environ if environ is None else environ
        plat = platform or sys.platform
        problem = display_problem(env, plat)
        if problem:
            raise TrayUnavailable(problem)
        if plat == "win32":
            _set_app_user_model_id()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GTK's StatusIcon deprecation notices are not ours to fix
                pystray = importlib.import_module("pystray")
        except Exception as exc:  # pystray raises whatever its last backend raised (Xlib, gi, ImportError)
            raise TrayUnavailable(f"the tray toolkit could not start ({type(exc).__name__}: {exc})") from None
        return cls(pystray, actions, template=plat == "darwin")

    # -- the main thread -------------------------------------------------------------------------------
    def run(self, model: TrayModel, on_ready: Callable[[], None] | None = None) -> bool:
        """Show ``model`` and run the toolkit's loop until ``stop``. False if the tray never came up."""
        saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        p = self._pystray
        try:
            self._icon = p.Icon(self.name, self._image(model.icon), model.tooltip, self._menu(model.menu))
        except Exception:  # e.g. the toolkit loaded but cannot make a status icon in this session
            log.warning("the tray icon could not be created", exc_info=True)
            return False
        self._shown = model
        self.menu_builds += 1

        def setup(icon: Any) -> None:
            icon.visible = True
            # pystray's GTK backend resets SIGINT to the default (die at once); the daemon's handlers
            # stop it cleanly instead. Reinstalled on the main thread, the only one allowed to.
            self._post(lambda: _restore_signals(saved))
            self.ready.set()
            if on_ready is not None:
                on_ready()

        try:
            self._icon.run(setup)
        except Exception:
            if not self.ready.is_set():
                log.warning("the tray could not start", exc_info=True)
                return False
            # pystray's GTK backend fails while tidying up when no notification service exists.
            log.debug("the tray toolkit failed while closing", exc_info=True)
        return self.ready.is_set()

    def stop(self) -> None:
        """End ``run`` (from any thread)."""
        if self._icon is not None:
            self._icon.stop()

    # -- any thread -------------------------------------------------------------------------------------
    def show(self, model: TrayModel, *, from_timer: bool = False) -> None:
        """Display ``model``; a no-op when it equals what is shown. ``from_timer``: only the clock moved,
        so the update may wait while a menu is open (rebuilding it would close it under the pointer)."""
        with self._lock:
            self._pending_timer = from_timer if self._pending is None else (self._pending_timer and from_timer)
            self._pending = model
            if self._scheduled:
                return
            self._scheduled = True
        self._post(self._apply)

    def notify(self, title: str, message: str) -> None:
        if not self.can_notify or self._icon is None:
            return
        try:
            self._icon.notify(message, title)
        except Exception:  # a missing notification service must not take the daemon down
            log.info("could not show a notification", exc_info=True)

    def tray_hosts(self) -> list[str] | None:
        """The tray hosts present now ("xembed", "statusnotifier"); None where one always exists."""
        if self.backend in ("darwin", "win32", "dummy"):
            return None
        found = []
        if self.backend in ("gtk", "appindicator", "xorg") and _xembed_tray_present():
            found.append("xembed")
        if self.backend == "appindicator" and _statusnotifier_present():
            found.append("statusnotifier")
        return found

    @property
    def shown(self) -> TrayModel | None:
        return self._shown

    # -- the toolkit's thread ---------------------------------------------------------------------------
    def _apply(self) -> None:
        with self._lock:
            model, from_timer = self._pending, self._pending_timer
            self._pending, self._scheduled = None, False
        shown = self._shown
        if model is None or model == shown or self._icon is None:
            return
        if from_timer and self._menu_is_open():
            return  # the next tick (or state change) brings it again
        icon = self._icon
        if shown is None or model.icon != shown.icon:
            icon.icon = self._image(model.icon)
        if shown is None or model.tooltip != shown.tooltip:
            icon.title = model.tooltip
        if shown is None or model.menu != shown.menu:
            icon.menu = self._menu(model.menu)
            self.menu_builds += 1
        self._shown = model

    def _menu_is_open(self) -> bool:
        # pystray has no API for this; on GTK its Gtk.Menu is visible while popped up. Elsewhere: unknown.
        handle = getattr(self._icon, "_menu_handle", None)
        try:
            return bool(handle is not None and handle.get_visible())
        except Exception:
            return False

    def _poster(self) -> Callable[[Callable[[], None]], None]:
        """How to run a function on the toolkit's thread."""
        if self.backend in ("gtk", "appindicator"):
            glib: Any = importlib.import_module("gi.repository.GLib")

            def post_glib(fn: Callable[[], None]) -> None:
                glib.idle_add(_once(fn))
            return post_glib
        if self.backend == "darwin":
            app_helper: Any = importlib.import_module("PyObjCTools.AppHelper")
            return lambda fn: app_helper.callAfter(_once(fn))
        # win32 and xorg serialise their own requests; a lock keeps our updates whole.
        lock = threading.Lock()

        def post_locked(fn: Callable[[], None]) -> None:
            with lock:
                _once(fn)()
        return post_locked

    def _image(self, state: str) -> Any:
        return icons.render(state, 64, template=self._template)

    def _menu(self, items: tuple[Item, ...]) -> Any:
        p = self._pystray
        return p.Menu(*(self._item(item) for item in items))

    def _item(self, item: Item) -> Any:
        p = self._pystray
        if item.separator:
            return p.Menu.SEPARATOR
        if item.submenu is not None:
            return p.MenuItem(item.label, p.Menu(*(self._item(i) for i in item.submenu)), enabled=item.enabled)
        checked = None if item.checked is None else _constant(item.checked)
        return p.MenuItem(item.label, self._activate(item.action, item.arg), checked=checked, enabled=item.enabled)

    def _activate(self, action: str | None, arg: str | None) -> Callable[[Any, Any], None]:
        a = self._actions
        calls: dict[str | None, Callable[[], None]] = {
            SIGN_IN: lambda: a.sign_in(arg or ""),
            SIGN_OUT: lambda: a.sign_out(arg or ""),
            REFRESH: lambda: a.refresh(arg or ""),
            SIGN_IN_ALL: a.sign_in_all,
            TOGGLE_AUTOSTART: a.toggle_autostart,
            OPEN_LOGS: a.open_logs,
            QUIT: a.quit,
        }
        call = calls.get(action)

        def activate(icon: Any, menu_item: Any) -> None:  # pystray passes both
            if call is None:
                return
            try:
                call()
            except Exception:  # never let an action's bug escape into the toolkit's loop
                log.exception("tray action %s failed", action)
        return activate


def _constant(value: bool) -> Callable[[Any], bool]:
    def checked(menu_item: Any) -> bool:
        return value
    return checked


def _once(fn: Callable[[], None]) -> Callable[[], bool]:
    """Wrap ``fn`` for an idle queue: run once, log errors, return False (do not repeat)."""
    def run() -> bool:
        try:
            fn()
        except Exception:
            log.exception("tray update failed")
        return False
    return run


def _restore_signals(saved: Mapping[Any, Any]) -> None:
    for sig, handler in saved.items():
        if handler is not None:
            signal.signal(sig, handler)


def _xembed_tray_present() -> bool:
    """Does an XEmbed system tray own ``_NET_SYSTEM_TRAY_S<screen>`` (freedesktop System Tray spec)?"""
    try:
        xdisplay: Any = importlib.import_module("Xlib.display")
        display = xdisplay.Display()
    except Exception:
        return False
    try:
        atom = display.intern_atom(f"_NET_SYSTEM_TRAY_S{display.get_default_screen()}")
        return bool(display.get_selection_owner(atom))  # X.NONE is 0
    except Exception:
        return False
    finally:
        display.close()


def _statusnotifier_present() -> bool:
    """Is a StatusNotifierWatcher (KDE, GNOME's AppIndicator extension, waybar, …) on the session bus?"""
    try:
        gio: Any = importlib.import_module("gi.repository.Gio")
        glib: Any = importlib.import_module("gi.repository.GLib")
        bus = gio.bus_get_sync(gio.BusType.SESSION, None)
        reply = bus.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                              "NameHasOwner", glib.Variant("(s)", ("org.kde.StatusNotifierWatcher",)),
                              None, gio.DBusCallFlags.NONE, 2000, None)
        return bool(reply.unpack()[0])
    except Exception:
        return False

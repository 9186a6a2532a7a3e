"""``kubetray run``'s last step with a tray: own the main thread until the daemon stops.

``serve`` shows the tray when it can and otherwise waits exactly as a headless daemon does; either
way it returns once ``daemon.stopping`` is set (Quit in the menu, ``kubetray stop``, a signal).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from broker.core.autostart import Autostart
from broker.core.remote import RemoteGate
from broker.core.service import TokenService
from broker.tray.controller import TrayController
from broker.tray.presenter import TrayInfo

if TYPE_CHECKING:
    from broker.tray.view import TrayView

log = logging.getLogger(__name__)

# A panel started with the session may come up after us: look for a tray host after this long,
# then every RECHECK seconds until one appears.
FIRST_HOST_CHECK = 2.0
HOST_RECHECK = 30.0

Report = Callable[[str], None]


class Serving(Protocol):
    """What ``serve`` needs of the daemon (broker.app.Daemon has it)."""

    service: TokenService
    stopping: threading.Event
    remote: RemoteGate | None


def serve(daemon: Serving, info: TrayInfo, *, report: Report | None = None,
          autostart: Autostart | None = None,
          contexts: Callable[[], Mapping[str, Sequence[str]]] | None = None) -> None:
    """Run the tray on this (the main) thread until the daemon stops; headless when there is no tray.

    ``report`` receives one line about the tray's state whenever it changes (for `kubetray status`);
    ``autostart`` is None where start at login cannot be managed (broker.app builds it).
    """
    say = report or (lambda _text: None)
    from broker.tray.view import TrayUnavailable, TrayView  # loads nothing of the toolkit yet

    controller = TrayController(
        daemon.service, _NoView(), info, clock=daemon.service.clock,
        stop=daemon.stopping.set, autostart=autostart,
        contexts=contexts, remote=daemon.remote,
    )
    try:
        view = TrayView.create(controller)
    except TrayUnavailable as exc:
        log.info("no tray icon: %s; running headless", exc)
        say(f"off: {exc}")
        _wait(daemon.stopping)
        return
    if not view.has_menu:
        log.warning("the %s tray backend shows the icon but no menu; PyGObject (GTK) gives it one", view.backend)
    controller.bind(view)
    controller.attach()

    def ready() -> None:
        controller.start()
        threading.Thread(target=_stop_when, args=(daemon.stopping, view.stop), name="kubetray-tray-stop",
                         daemon=True).start()
        threading.Thread(target=_watch_host, args=(view, controller, say, daemon.stopping),
                         name="kubetray-tray-host", daemon=True).start()

    log.info("showing the tray icon (pystray backend: %s)", view.backend)
    say(f"starting ({view.backend})")
    ran = view.run(controller.model(), on_ready=ready)
    controller.stop()
    if not daemon.stopping.is_set():
        # The toolkit gave up (or never started): keep serving kubectl without an icon.
        log.warning("the tray %s; running headless", "stopped" if ran else "could not start")
        say("off: the tray stopped; see the log")
        _wait(daemon.stopping)


def _wait(stopping: threading.Event) -> None:
    while not stopping.wait(1.0):
        pass


def _stop_when(stopping: threading.Event, stop: Callable[[], None]) -> None:
    stopping.wait()
    stop()


def _watch_host(view: TrayView, controller: TrayController, say: Report, stopping: threading.Event) -> None:
    """Say once (log, status, About) when no tray host shows the icon, and again when one appears."""
    if stopping.wait(FIRST_HOST_CHECK):
        return
    announced = False
    while True:
        hosts = view.tray_hosts()
        if hosts is None or hosts:
            where = f"{view.backend}" + (f", {'/'.join(hosts)} tray" if hosts else "")
            if announced:
                log.info("a system tray appeared; the kubetray icon is shown (%s)", where)
            say(f"shown ({where})")
            controller.set_tray_note(f"shown ({where})")
            return
        if not announced:
            log.warning("no system tray found (no XEmbed tray%s): the icon cannot be shown; kubetray keeps "
                        "running and still notifies; `kubetray status` and `kubetray login` work as always",
                        ", no StatusNotifier host" if view.backend == "appindicator" else "")
            say("no tray host: notifications and the kubetray commands still work")
            controller.set_tray_note("no tray host found")
            announced = True
        if stopping.wait(HOST_RECHECK):
            return


class _NoView:
    """Stands in until the view exists (the view needs the controller as its actions first)."""

    def show(self, model: object, *, from_timer: bool = False) -> None:
        pass

    def notify(self, title: str, message: str) -> None:
        pass

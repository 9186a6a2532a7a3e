"""The tray's controller and view without a screen: a real TokenService and FakeSource behind them, and
a stand-in for the pystray module (passed in, as the view takes it) in front."""

from __future__ import annotations

import signal
import threading
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from broker.autostart import ENABLED, Entry, Status
from broker.core.service import TokenService
from broker.tray.controller import TrayController
from broker.tray.presenter import TrayInfo, TrayModel
from broker.tray.view import TrayUnavailable, TrayView
from tests.support.fakes import FakeClock, FakeSource, ThreadSubmit, profile

INFO = TrayInfo(version="0.1.0", keyring="memory", socket="/tmp/k.sock", log_dir="/tmp/log")


# -- stand-ins ------------------------------------------------------------------------------------------
class FakeMenuItem:
    def __init__(self, text: str, action: Any, checked: Any = None, enabled: bool = True) -> None:
        self.text, self.action, self.checked, self.enabled = text, action, checked, enabled


class FakeMenu:
    SEPARATOR = FakeMenuItem("----", None)

    def __init__(self, *items: FakeMenuItem) -> None:
        self.items = items


class FakeIcon:
    """Records what the view asks of pystray. ``run`` calls setup and returns (no event loop)."""

    HAS_MENU = True
    HAS_NOTIFICATION = True

    def __init__(self, name: str, icon: Any, title: str, menu: FakeMenu) -> None:
        self.name, self.image, self.title, self._menu = name, icon, title, menu
        self.menus_set = 0
        self.images_set = 0
        self.notes: list[tuple[str, str]] = []
        self._menu_handle: Any = None

    @property
    def icon(self) -> Any:
        return self.image

    @icon.setter
    def icon(self, value: Any) -> None:
        self.image = value
        self.images_set += 1

    @property
    def menu(self) -> FakeMenu:
        return self._menu

    @menu.setter
    def menu(self, value: FakeMenu) -> None:
        self._menu = value
        self.menus_set += 1

    def run(self, setup: Callable[[Any], None]) -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # as pystray's GTK backend does
        setup(self)

    def stop(self) -> None:
        pass

    def notify(self, message: str, title: str | None = None) -> None:
        self.notes.append((title or "", message))

    def find(self, *path: str) -> FakeMenuItem:
        items = self._menu.items
        item = None
        for label in path:
            item = next(i for i in items if i.text.startswith(label))
            items = item.action.items if isinstance(item.action, FakeMenu) else ()
        assert item is not None
        return item


FakeIcon.__module__ = "pystray._fake"
FAKE_PYSTRAY = types.SimpleNamespace(Icon=FakeIcon, Menu=FakeMenu, MenuItem=FakeMenuItem)


class FakeAutostart:
    name = "fake"

    def __init__(self) -> None:
        self.on = False

    def status(self) -> Status:
        entries = (Entry("fake", "/x", ENABLED, "kubetray run"),) if self.on else ()
        return Status("fake", entries, "kubetray run")

    def enable(self, *, systemd: bool = False) -> Status:
        self.on = True
        return self.status()

    def disable(self) -> Status:
        self.on = False
        return self.status()


class Rig:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.source = FakeSource(self.clock)
        self.submit = ThreadSubmit()
        self.service = TokenService(source=self.source, clock=self.clock, submit=self.submit, rand=lambda: 0.5)
        self.stopped = threading.Event()
        self.autostart = FakeAutostart()
        self.opened: list[str] = []
        self.controller = TrayController(
            self.service, _Null(), INFO, clock=self.clock, stop=self.stopped.set,
            autostart=self.autostart, open_logs=self.opened.append, tick=3600,
        )
        self.view = TrayView(FAKE_PYSTRAY, self.controller)
        self.controller.bind(self.view)
        self.controller.attach()
        assert self.view.run(self.controller.model())
        self.icon: FakeIcon = self.view._icon

    def needs_sign_in(self) -> str:
        """A profile the daemon knows, signed out (as after `kubetray logout`)."""
        p = profile()
        self.service.login(p).result(5)
        self.service.logout(p.key)
        self.controller.update()
        return p.key

    def settle(self, until: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.01)
            self.controller.update()


class _Null:
    def show(self, model: TrayModel, *, from_timer: bool = False) -> None:
        pass

    def notify(self, title: str, message: str) -> None:
        pass


@pytest.fixture
def rig() -> Iterator[Rig]:
    saved = signal.getsignal(signal.SIGINT)
    r = Rig()
    yield r
    r.controller.stop()
    r.submit.close()
    signal.signal(signal.SIGINT, saved)


# -- view ------------------------------------------------------------------------------------------------
def test_without_a_display_the_view_says_why() -> None:
    with pytest.raises(TrayUnavailable, match="no display"):
        TrayView.create(_Null(), environ={}, platform="linux")  # type: ignore[arg-type]


def test_the_daemons_signal_handlers_survive_the_toolkit_start(rig: Rig) -> None:
    def handler(*_: object) -> None:
        pass

    signal.signal(signal.SIGINT, handler)
    view = TrayView(FAKE_PYSTRAY, rig.controller)
    assert view.run(rig.controller.model())
    assert signal.getsignal(signal.SIGINT) is handler


def test_an_unchanged_state_never_rebuilds_the_menu(rig: Rig) -> None:
    rig.needs_sign_in()
    builds, sets = rig.view.menu_builds, rig.icon.menus_set
    for _ in range(5):
        rig.controller.update()
        rig.clock.advance(5)
    assert (rig.view.menu_builds, rig.icon.menus_set) == (builds, sets)


def test_a_clock_only_change_waits_while_the_menu_is_open_but_a_state_change_does_not(rig: Rig) -> None:
    rig.service.login(profile()).result(5)
    rig.controller.update()
    assert rig.icon.find("alice@example.test").text.endswith("expires in 60 min")

    class OpenMenu:
        def get_visible(self) -> bool:
            return True

    rig.icon._menu_handle = OpenMenu()
    rig.clock.advance(120)
    rig.controller.update()  # only the minutes moved: leave the open menu alone
    assert rig.icon.find("alice@example.test").text.endswith("expires in 60 min")
    rig.service.logout(profile().key)  # a state change: show it now
    rig.controller.update()
    assert rig.icon.find("alice@example.test").text.endswith("sign-in required")


def test_menu_items_call_the_actions_with_the_profile_key(rig: Rig) -> None:
    key = rig.needs_sign_in()
    calls: list[tuple[str, str]] = []

    class Recorder:
        def __getattr__(self, name: str) -> Callable[..., None]:
            return lambda *args: calls.append((name, *args))

    view = TrayView(FAKE_PYSTRAY, Recorder())
    view.run(rig.controller.model())
    icon: FakeIcon = view._icon
    for path in (("alice", "Sign in"), ("alice", "Sign out"), ("Sign in to all",), ("Start at login",),
                 ("Open log folder",), ("Quit",)):
        item = icon.find(*path)
        item.action(icon, item)
    assert calls == [("sign_in", key), ("sign_out", key), ("sign_in_all",), ("toggle_autostart",),
                     ("open_logs",), ("quit",)]


# -- controller --------------------------------------------------------------------------------------
def test_sign_in_from_the_tray_joins_a_running_sign_in_and_returns_at_once(rig: Rig) -> None:
    rig.needs_sign_in()
    rig.source.sign_in_gate = threading.Event()
    calls_before = rig.source.sign_in_calls
    shim = rig.service.get_token(profile(), person_present=True)  # kubectl in a terminal started one
    started = time.monotonic()
    item = rig.icon.find("alice", "Sign in")
    item.action(rig.icon, item)
    item.action(rig.icon, item)
    assert time.monotonic() - started < 0.5  # the toolkit's thread never waits for a sign-in
    rig.settle(lambda: rig.icon.find("alice").text.endswith("signing in…"))
    rig.source.sign_in_gate.set()
    shim.result(5)
    rig.settle(lambda: rig.icon.find("alice").text.endswith("expires in 60 min"))
    assert rig.source.sign_in_calls == calls_before + 1


def test_completing_a_sign_in_notifies_and_a_quiet_start_does_not(rig: Rig) -> None:
    key = rig.needs_sign_in()
    assert rig.icon.notes == []  # the first snapshot is the baseline: nothing to announce at login
    rig.controller.sign_in(key)
    rig.settle(lambda: any(t == "Signed in" for t, _ in rig.icon.notes))
    assert [t for t, _ in rig.icon.notes] == ["Sign in", "Signed in"]  # the progress line, then done
    assert rig.icon.image is not None


def test_a_failed_sign_in_from_the_tray_says_why(rig: Rig) -> None:
    from broker.core.errors import LoginFailed

    key = rig.needs_sign_in()
    rig.source.sign_in_error = LoginFailed("the sign-in was cancelled in the browser")
    rig.controller.sign_in(key)
    rig.settle(lambda: ("Sign-in did not complete", "the sign-in was cancelled in the browser") in rig.icon.notes)


def test_sign_out_removes_the_tokens_and_marks_sign_in_required(rig: Rig) -> None:
    rig.service.login(profile()).result(5)
    rig.controller.update()
    rig.controller.sign_out(profile().key)
    rig.settle(lambda: rig.icon.find("alice").text.endswith("sign-in required"))
    assert rig.source.signed_out == [profile()]
    assert rig.source.signed_in is False


def test_start_at_login_toggles_and_the_checkbox_follows_the_disk(rig: Rig) -> None:
    assert rig.icon.find("Start at login").checked(None) is False
    rig.controller.toggle_autostart()
    rig.settle(lambda: rig.icon.find("Start at login").checked(None) is True)
    assert rig.autostart.on
    rig.autostart.on = False  # someone removed the file by hand
    rig.controller.update()
    assert rig.icon.find("Start at login").checked(None) is False


def test_quit_stops_the_daemon_and_open_logs_opens_the_log_folder(rig: Rig) -> None:
    rig.controller.open_logs()
    rig.settle(lambda: rig.opened == ["/tmp/log"])
    rig.controller.quit()
    assert rig.stopped.is_set()


def test_a_toolkit_that_cannot_make_an_icon_leaves_the_daemon_headless_not_dead(rig: Rig) -> None:
    class Broken(FakeIcon):
        def __init__(self, *args: Any) -> None:
            raise RuntimeError("no status icons in this session")

    broken = types.SimpleNamespace(Icon=Broken, Menu=FakeMenu, MenuItem=FakeMenuItem)
    assert TrayView(broken, rig.controller).run(rig.controller.model()) is False


def test_sign_in_to_all_signs_in_every_profile_that_needs_it(rig: Rig) -> None:
    a, b = profile(), profile(authority="https://login.example.test/tenant-b", tenant_id="tenant-b")
    for p in (a, b):
        rig.service.login(p).result(5)
        rig.service.logout(p.key)
    calls = rig.source.sign_in_calls
    item = rig.icon.find("Sign in to all")
    item.action(rig.icon, item)
    rig.settle(lambda: {v.state for v in rig.service.snapshot()} == {"ok"})
    assert rig.source.sign_in_calls == calls + 2

"""The tray, end to end: the real `kubetray run` (real MSAL against the test authority, the real Secret
Service) showing its icon in a real tray host (trayer on Xvfb) through pystray's GTK backends.

The daemon runs under tests/support/tray_probe.py, which only adds a way to read the menus that are
open on screen; the test finds items by label and clicks them with the pointer (xdotool), as a person
would. Screenshots check that the icon is docked and painted, and one of the open menu is kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageChops

from broker.core.state import ProfileState
from broker.execplugin.kubelogin_args import parse_get_token
from broker.store.profile_registry import JsonProfileRegistry
from tests.support.rig import Rig
from tests.support.tray_harness import ROOT, TrayDesktop, gtk_problem, missing_tools, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

GTK_PROBLEM = gtk_problem()
needs_gtk = pytest.mark.skipif(
    GTK_PROBLEM is not None,
    reason=f"{GTK_PROBLEM}: run the tray tests in a venv with PyGObject (see packaging/README.md)",
)
AMBER, GREEN = (0xD9, 0x8E, 0x04), (0x2E, 0x9D, 0x4F)  # the sign-in-needed and signed-in icons


def appindicator_problem() -> str | None:
    if GTK_PROBLEM:
        return GTK_PROBLEM
    probe = "import gi; gi.require_version('AyatanaAppIndicator3', '0.1')"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    return None if done.returncode == 0 else "gir1.2-ayatanaappindicator3-0.1 is not installed"


BACKENDS = [
    pytest.param("gtk", marks=needs_gtk),
    pytest.param("appindicator", marks=pytest.mark.skipif(appindicator_problem() is not None,
                                                          reason=str(appindicator_problem()))),
]


# -- fixtures and helpers ----------------------------------------------------------------------------
def desktop_for(rig: Rig, tmp_path: Path, *, tray_host: bool = True) -> TrayDesktop:
    if missing_tools():
        pytest.fail(f"{', '.join(missing_tools())} not on PATH; apt install xvfb trayer xdotool", pytrace=False)
    return TrayDesktop(tmp_path / "desktop", rig.env, tray_host=tray_host)


@pytest.fixture
def desktop(rig: Rig, tmp_path: Path) -> Iterator[TrayDesktop]:
    with desktop_for(rig, tmp_path) as desk:
        yield desk


def seed_signed_out_profile(rig: Rig) -> str:
    """The daemon remembers a profile from an earlier kubectl call that now needs a sign-in."""
    profile = parse_get_token(rig.get_token_args())
    registry = JsonProfileRegistry(str(rig.root / "state" / "profiles.json"))
    registry.save([ProfileState(profile=profile, needs_sign_in=True).to_record()])
    return profile.key


class Daemon:
    """`kubetray run` under the probe; ``menus()`` reads what is open on screen."""

    def __init__(self, rig: Rig, env: dict[str, str], tmp_path: Path, *args: str) -> None:
        self.rig = rig
        self.dump = tmp_path / "menus.json"
        self.out = tmp_path / "daemon.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.tray_probe", str(self.dump), *args],
                                         env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or rig.status().get("running"), 30, "the daemon")
        assert self.proc.poll() is None, self.output()
        self._serial = 0

    def output(self) -> str:
        return self.out.read_text(errors="replace") + "\n--- log ---\n" + self.rig.daemon_log()

    def profile(self, key: str) -> dict[str, Any]:
        return next(p for p in self.rig.status()["profiles"] if p["key"] == key)

    def menus(self) -> list[list[dict[str, Any]]]:
        self.proc.send_signal(signal.SIGUSR1)
        self._serial += 1

        def fresh() -> dict[str, Any] | None:
            try:
                doc: dict[str, Any] = json.loads(self.dump.read_text())
            except (OSError, ValueError):
                return None
            return doc if doc["serial"] >= self._serial else None
        menus: list[list[dict[str, Any]]] = wait_for(fresh, 10, "the menu dump")["menus"]
        return menus

    def wait_menus(self, count: int, what: str) -> list[list[dict[str, Any]]]:
        menus: list[list[dict[str, Any]]] = wait_for(
            lambda: (m := self.menus()) and len(m) == count and all(m) and m, 10, what, interval=0.2)
        return menus

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def started() -> Iterator[list[Daemon]]:
    daemons: list[Daemon] = []
    yield daemons
    for daemon in daemons:
        daemon.stop()


def item(menu: list[dict[str, Any]], starts: str) -> dict[str, Any]:
    found = [i for i in menu if i["label"].startswith(starts)]
    assert found, f"no item starting {starts!r} in {[i['label'] for i in menu]}"
    return found[0]


def centre(entry: dict[str, Any]) -> tuple[int, int]:
    return entry["x"] + entry["width"] // 2, entry["y"] + entry["height"] // 2


def icon_centre(desk: TrayDesktop) -> tuple[int, int]:
    x, y, w, h = wait_for(lambda: (a := desk.tray_area()) and a[2] >= 16 and a, 20, "the icon to dock")
    return x + w // 2, y + h // 2


def pixels_like(desk: TrayDesktop, colour: tuple[int, int, int]) -> int:
    """How many pixels of the tray area are close to ``colour`` (the icon's fill)."""
    x, y, w, h = desk.tray_area()
    area = desk.screenshot().convert("RGB").crop((x, y, x + w, y + h))
    near = [band.point(lambda v, c=c: 255 if abs(v - c) <= 24 else 0)
            for band, c in zip(area.split(), colour, strict=True)]
    both = ImageChops.multiply(ImageChops.multiply(near[0], near[1]), near[2])
    return both.histogram()[255]


def artifact_dir(tmp_path: Path) -> Path:
    path = Path(os.environ.get("KUBETRAY_TEST_ARTIFACTS") or tmp_path)
    path.mkdir(parents=True, exist_ok=True)
    return path


# -- tests ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_sign_in_from_the_tray_menu_then_the_menu_shows_account_and_expiry(
    rig: Rig, desktop: TrayDesktop, started: list[Daemon], tmp_path: Path, backend: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = seed_signed_out_profile(rig)
    daemon = Daemon(rig, {**desktop.env, "PYSTRAY_BACKEND": backend}, tmp_path)
    started.append(daemon)
    upn = rig.authority.user.upn

    # Docked and painted: the sign-in-needed icon (amber padlock) is in trayer's area of the screen.
    x, y = icon_centre(desktop)
    wait_for(lambda: pixels_like(desktop, AMBER) > 40, 20, "the amber icon on screen")
    assert pixels_like(desktop, GREEN) == 0
    assert daemon.profile(key)["state"] == "sign_in_required"
    assert desktop.notifications() == []  # started quietly: a state known at start is not announced

    desktop.click(x, y, button=3)
    top = daemon.wait_menus(1, "the tray menu")[0]
    entry = top[0]  # no account yet: named by tenant and host
    assert entry["label"] == f"{rig.authority.tenant_id} at 127.0.0.1 — sign-in required" and entry["submenu"]
    assert item(top, "Sign in to all")["sensitive"]
    assert item(top, "Start at login")["checked"] is False
    desktop.move(*centre(entry))
    sub = daemon.wait_menus(2, "the profile's submenu")[1]
    assert [i["label"] for i in sub if i["sensitive"]] == ["Sign in", "Sign out"]  # nothing to refresh
    desktop.click(*centre(item(sub, "Sign in")))

    # The real sign-in: MSAL opens the (scripted) browser, the test authority issues tokens.
    wait_for(lambda: daemon.profile(key)["state"] == "ok", 60, "the sign-in to complete")
    assert daemon.profile(key)["account"] == upn
    assert rig.browser_launches() == 1 and rig.authority.counts["sign_ins"] == 1
    signed_in = wait_for(lambda: [n for n in desktop.notifications() if n["summary"] == "Signed in"], 20,
                         "the signed-in notification")
    assert upn in signed_in[0]["body"]
    wait_for(lambda: pixels_like(desktop, GREEN) > 40, 20, "the icon to turn into the signed-in one")
    assert pixels_like(desktop, AMBER) == 0

    # The menu now names the account and the expiry; keep a screenshot of it open.
    desktop.click(x, y, button=3)
    top = daemon.wait_menus(1, "the tray menu again")[0]
    entry = item(top, upn)
    assert entry["label"] in (f"{upn} — expires in 59 min", f"{upn} — expires in 60 min")
    desktop.move(*centre(entry))
    sub = daemon.wait_menus(2, "the submenu again")[1]
    labels = [i["label"] for i in sub]
    assert f"Account: {upn}" in labels and any(label.startswith("Expires in ") for label in labels)
    assert [i["label"] for i in sub if i["sensitive"]] == ["Sign in", "Sign out", "Refresh now"]
    shot = artifact_dir(tmp_path) / f"tray-menu-{backend}.png"
    desktop.screenshot(shot)
    with capsys.disabled():
        print(f"\n[tray] screenshot of the open menu ({backend}): {shot}")

    # Quit stops the daemon cleanly: exit status 0, socket removed.
    desktop.xdotool("key", "Escape", "key", "Escape")
    desktop.click(x, y, button=3)
    top = daemon.wait_menus(1, "the menu for Quit")[0]
    desktop.click(*centre(item(top, "Quit kubetray")))
    assert daemon.proc.wait(20) == 0, daemon.output()
    assert not rig.socket.exists()
    assert "quit chosen in the tray" in rig.daemon_log()


@needs_gtk
def test_refresh_now_and_sign_out_from_the_real_menu_then_quit_and_the_next_kubectl_restarts_it(
    rig: Rig, desktop: TrayDesktop, started: list[Daemon]
) -> None:
    """The menu's own items on a real GTK menu (not the fake pystray): Refresh now, Sign out, Quit;
    then kubectl (with the display) starts a new daemon, which shows its tray again."""
    assert rig.kubectl("get", "pods").returncode == 0  # signed in by a headless daemon, which then stops
    rig.stop_daemon()
    profile = parse_get_token(rig.get_token_args())
    daemon = Daemon(rig, {**desktop.env, "PYSTRAY_BACKEND": "gtk"}, desktop.root)
    started.append(daemon)
    wait_for(lambda: daemon.profile(profile.key)["state"] == "ok", 60, "the profile warmed from the keyring")
    # The kept token warms the profile before the tray is up (it starts after the sign-in sources load).
    wait_for(lambda: str(rig.status().get("tray", "")).startswith("shown"), 60, "the tray")
    upn = rig.authority.user.upn
    x, y = icon_centre(desktop)

    def open_submenu() -> list[dict[str, Any]]:
        desktop.click(x, y, button=3)
        top = daemon.wait_menus(1, "the tray menu")[0]
        desktop.move(*centre(item(top, upn)))
        return daemon.wait_menus(2, "the profile's submenu")[1]

    refreshes = rig.authority.counts["refreshes"]
    desktop.click(*centre(item(open_submenu(), "Refresh now")))
    wait_for(lambda: rig.authority.counts["refreshes"] > refreshes, 30, "the refresh from the menu")
    assert rig.authority.counts["sign_ins"] == 1

    desktop.click(*centre(item(open_submenu(), "Sign out")))
    wait_for(lambda: daemon.profile(profile.key)["state"] == "sign_in_required", 30, "the sign-out from the menu")
    assert daemon.profile(profile.key)["account"] in ("", upn)
    from broker.app import build_store  # the test session's keyring, as the daemon sees it

    assert build_store(check=False).load(profile.cache_name) is None  # the tokens left the keyring too

    desktop.click(x, y, button=3)
    desktop.click(*centre(item(daemon.wait_menus(1, "the menu for Quit")[0], "Quit kubetray")))
    assert daemon.proc.wait(20) == 0, daemon.output()
    assert not rig.socket.exists()

    # A new daemon remembers that the sign-out was on purpose: a kubectl without a terminal (an IDE's,
    # a script's) is told to sign in rather than opening the browser by itself; a person signs in.
    blocked = rig.run("kubectl", "get", "pods", **desktop.env)
    assert blocked.returncode != 0 and b"kubetray login" in blocked.stderr, blocked.stderr.decode()
    assert rig.authority.counts["sign_ins"] == 1
    login = rig.kubetray("login", "--context", "aks")
    assert login.returncode == 0, login.stderr.decode()
    after = rig.run("kubectl", "get", "pods", **desktop.env)
    assert after.returncode == 0, after.stderr.decode()
    assert rig.authority.counts["sign_ins"] == 2
    status = wait_for(lambda: (doc := rig.status()).get("running") and doc, 30, "a daemon started by kubectl")
    assert status["pid"] != daemon.proc.pid
    wait_for(lambda: str(rig.status().get("tray", "")).startswith("shown"), 30, "the new daemon's tray")
    assert rig.daemon_log().count("showing the tray icon") == 2  # the probe's, then the restarted one's
    icon_centre(desktop)  # docked again


@needs_gtk
def test_without_a_tray_host_the_daemon_says_so_once_and_still_notifies(
    rig: Rig, tmp_path: Path, started: list[Daemon]
) -> None:
    key = seed_signed_out_profile(rig)
    with desktop_for(rig, tmp_path, tray_host=False) as desk:
        daemon = Daemon(rig, {**desk.env, "PYSTRAY_BACKEND": "gtk"}, tmp_path)
        started.append(daemon)
        wait_for(lambda: "no system tray found" in rig.daemon_log(), 20, "the no-tray-host log line")
        login = rig.kubetray("login", timeout=60)  # the CLI still works, and the tray notifies
        assert login.returncode == 0, login.stderr.decode()
        assert daemon.profile(key)["state"] == "ok"
        wait_for(lambda: any(n["summary"] == "Signed in" for n in desk.notifications()), 20, "a notification")
        time.sleep(0.5)
        assert rig.daemon_log().count("no system tray found") == 1
        # Ctrl-C under the GTK loop (pystray resets SIGINT to "die now") still stops the daemon cleanly.
        daemon.proc.send_signal(signal.SIGINT)
        assert daemon.proc.wait(15) == 0, daemon.output()
        assert "broker.process.daemon: stopping" in rig.daemon_log() and not rig.socket.exists()


def test_without_a_display_it_runs_headless_and_logs_why(rig: Rig, tmp_path: Path, started: list[Daemon]) -> None:
    proc = subprocess.Popen([str(Path(sys.executable).parent / "kubetray"), "run"], env=rig.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: proc.poll() is not None or rig.status().get("running"), 30, "the daemon")
        wait_for(lambda: "no tray icon: no display" in rig.daemon_log(), 10, "the headless reason in the log")
        assert "running headless" in rig.daemon_log()
        # and `kubetray status` says why there is no icon
        assert rig.status()["tray"] == "off: no display (DISPLAY and WAYLAND_DISPLAY are unset)"
        text = rig.kubetray("status").stdout.decode()
        assert "tray:    off: no display" in text, text
    finally:
        proc.terminate()
        assert proc.wait(15) == 0


@needs_gtk
def test_headless_flag_shows_no_icon_even_with_a_tray_host(rig: Rig, desktop: TrayDesktop, tmp_path: Path,
                                                            started: list[Daemon]) -> None:
    daemon = Daemon(rig, desktop.env, tmp_path, "--headless")
    started.append(daemon)
    time.sleep(3)
    assert desktop.tray_area()[2] < 16  # trayer's panel stays empty
    assert "showing the tray icon" not in rig.daemon_log()

"""A desktop for tray tests: Xvfb, a real XEmbed tray host (trayer) and a notification service.

``TrayDesktop(root, env)`` adds a display to a D-Bus session the caller owns (tests use the run's
private session): Xvfb on a free display (``-displayfd``), trayer docked at the top right, and a
stand-in for org.freedesktop.Notifications that records what it is asked to show. Screenshots come
from ``PIL.ImageGrab``, pointer and keys from xdotool (XTEST). Every process is started here and
stopped here, by PID.

``python -m tests.support.tray_harness notifyd LOG`` is the notification service (jeepney, no GLib).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.probes import wait_for

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("Xvfb", "trayer", "xdotool")
SCREEN = (800, 600)


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def gtk_problem(python: str = sys.executable) -> str | None:
    """Why ``python`` cannot load GTK 3 through PyGObject (None: it can). Checked in a child process so the
    test process never imports gi."""
    probe = "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import GLib"
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    if result.returncode == 0:
        return None
    last = (result.stderr.strip().splitlines() or ["unknown error"])[-1]
    return f"PyGObject with GTK 3 is not importable by {python} ({last})"


class TrayDesktop:
    """Xvfb + (optionally) trayer + a notification recorder, on the D-Bus session named in ``env``."""

    def __init__(self, root: Path, env: Mapping[str, str], *, tray_host: bool = True) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._base = dict(env)
        self._tray_host = tray_host
        self._procs: list[subprocess.Popen[bytes]] = []
        self.display = ""
        self.notify_log = root / "notifications.jsonl"

    # -- life cycle ------------------------------------------------------------------------------------
    def __enter__(self) -> TrayDesktop:
        try:
            self._start_xvfb()
            if self._tray_host:
                self._spawn(["trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                             "--height", "32", "--SetDockType", "true", "--transparent", "false",
                             "--tint", "0xffffff"], "trayer.log")
                wait_for(self.tray_host_present, 10, "trayer to own the system tray selection")
            self._spawn([sys.executable, "-m", "tests.support.tray_harness", "notifyd", str(self.notify_log)],
                        "notifyd.log")
            wait_for(self.notify_log.exists, 10, "the notification service")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop what we started, newest first, by PID."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._procs.clear()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process on this desktop."""
        env = dict(self._base)
        env.pop("WAYLAND_DISPLAY", None)
        env.update(DISPLAY=self.display, NO_AT_BRIDGE="1", GDK_BACKEND="x11")
        return env

    def _spawn(self, argv: list[str], log: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        with open(self.root / log, "wb") as out:
            proc = subprocess.Popen(argv, env=self.env if self.display else self._base, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT, **kwargs)
        self._procs.append(proc)
        return proc

    def _start_xvfb(self) -> None:
        read, write = os.pipe()
        try:
            w, h = SCREEN
            self._spawn(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{w}x{h}x24", "-nolisten", "tcp",
                         "-noreset"], "xvfb.log", pass_fds=(write,))
        finally:
            os.close(write)
        with os.fdopen(read, "rb") as pipe:
            number = pipe.readline().strip().decode()  # Xvfb writes the display number once it is ready
        if not number:
            raise RuntimeError(f"Xvfb did not start: {(self.root / 'xvfb.log').read_text()[-500:]}")
        self.display = f":{number}"

    # -- looking -------------------------------------------------------------------------------------
    def tray_host_present(self) -> bool:
        return bool(self._xlib(lambda d: d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S0"))))

    def tray_area(self) -> tuple[int, int, int, int]:
        """(x, y, width, height) of trayer's panel, where docked icons are."""
        def find(d: Any) -> tuple[int, int, int, int] | None:
            for window in d.screen().root.query_tree().children:
                try:
                    if window.get_wm_class() != ("panel", "trayer"):
                        continue
                    geometry = window.get_geometry()
                    origin = window.translate_coords(d.screen().root, 0, 0)
                except Exception:  # noqa: S112 - windows come and go
                    continue
                return (-origin.x, -origin.y, geometry.width, geometry.height)
            return None
        area: tuple[int, int, int, int] | None = self._xlib(find)
        if area is None:
            raise AssertionError("trayer's panel window was not found")
        return area

    def screenshot(self, path: Path | None = None) -> Any:
        from PIL import ImageGrab

        image = ImageGrab.grab(xdisplay=self.display)
        if path is not None:
            image.save(path)
        return image

    def notifications(self) -> list[dict[str, Any]]:
        if not self.notify_log.exists():
            return []
        return [json.loads(line) for line in self.notify_log.read_text().splitlines() if line.strip()]

    # -- acting ----------------------------------------------------------------------------------------
    def xdotool(self, *args: str) -> None:
        subprocess.run(["xdotool", *args], env=self.env, check=True, timeout=30, capture_output=True)

    def move(self, x: int, y: int) -> None:
        self.xdotool("mousemove", str(x), str(y))

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.xdotool("mousemove", str(x), str(y), "click", str(button))

    def _xlib(self, fn: Callable[[Any], Any]) -> Any:
        from Xlib import display as xdisplay

        d = xdisplay.Display(self.display)
        try:
            return fn(d)
        finally:
            d.close()


# -- the notification service -------------------------------------------------------------------------
def notifyd(log: str) -> None:
    """Own org.freedesktop.Notifications on the session bus and append each Notify call to ``log``."""
    from jeepney import HeaderFields, MessageType, new_error, new_method_return
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection

    conn = open_dbus_connection(bus="SESSION")
    conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.Notifications"))
    Path(log).touch()
    serial = 0
    while True:
        msg = conn.receive()
        if msg.header.message_type != MessageType.method_call:
            continue
        member = msg.header.fields.get(HeaderFields.member)
        if member == "Notify":
            app, _replaces, _icon, summary, body, *_ = msg.body
            serial += 1
            with open(log, "a", encoding="utf-8") as f:
                f.write(json.dumps({"id": serial, "app": app, "summary": summary, "body": body}) + "\n")
            conn.send(new_method_return(msg, "u", (serial,)))
        elif member == "CloseNotification":
            conn.send(new_method_return(msg))
        elif member == "GetCapabilities":
            conn.send(new_method_return(msg, "as", (["body"],)))
        elif member == "GetServerInformation":
            conn.send(new_method_return(msg, "ssss", ("notifyd", "kubetray-tests", "1", "1.2")))
        else:
            conn.send(new_error(msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"no method {member}",)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["notifyd"]:
        notifyd(sys.argv[2])

"""``kubetray run`` with a window onto its menus, for tray tests.

``python -m tests.support.tray_probe DUMP [kubetray run arguments…]`` runs the real ``kubetray run``
(broker.cli.main.main) in this process, after adding one thing: on SIGUSR1 the GTK main loop writes every
menu that is open on screen to DUMP as JSON (labels, sensitivity, check state and screen rectangles of
its items), so a test can find an item by its label and click it where it is, and can read back what a
person would read. Only open menus are listed: the dump shows what is visible, not pystray's model.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import GLib, Gtk  # noqa: E402

_serial = 0


def _item(item: Any) -> dict[str, Any] | None:
    if isinstance(item, Gtk.SeparatorMenuItem) or not item.get_visible():
        return None
    toplevel = item.get_toplevel()
    _ok, x0, y0 = toplevel.get_window().get_origin()
    x, y = item.translate_coordinates(toplevel, 0, 0)
    allocation = item.get_allocation()
    return {
        "label": item.get_label() or "",
        "sensitive": bool(item.get_sensitive()),
        "checked": bool(item.get_active()) if isinstance(item, Gtk.CheckMenuItem) else None,
        "submenu": item.get_submenu() is not None,
        "x": x0 + x, "y": y0 + y, "width": allocation.width, "height": allocation.height,
    }


def _dump(path: str) -> bool:
    global _serial
    _serial += 1
    menus = []
    for window in Gtk.Window.list_toplevels():
        menu = window.get_child() if window.get_visible() else None
        if isinstance(menu, Gtk.Menu):
            menus.append([i for i in (_item(child) for child in menu.get_children()) if i is not None])
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"serial": _serial, "menus": menus}, f)
    os.replace(tmp, path)
    return True  # GLib.SOURCE_CONTINUE: keep answering SIGUSR1


def main() -> None:
    path = sys.argv[1]
    # A GLib signal source runs in the main loop pystray drives, the one thread allowed to touch GTK.
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, _dump, path)
    from broker.cli.main import main as kubetray

    kubetray(["run", *sys.argv[2:]])


if __name__ == "__main__":
    main()

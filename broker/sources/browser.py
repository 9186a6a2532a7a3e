"""Can this daemon open a browser the person will see? If not, sign-ins use a device code."""

from __future__ import annotations

import os
import sys
import webbrowser
from collections.abc import Mapping


def can_open_browser(environ: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """True where a graphical browser can be launched: $BROWSER set, macOS, Windows, or a display.

    On Linux without a display (SSH, a server) webbrowser would fall back to a text browser in a
    terminal the daemon does not have, so the answer there is no.
    """
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if env.get("BROWSER"):
        return True
    if plat in ("darwin", "win32"):
        return True
    if not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return False
    if environ is not None:
        return True  # a display is named; the caller is asking about a hypothetical environment
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True

"""Files the runtime needs (the application icon), shipped as package data in the wheel."""

from __future__ import annotations

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def path(name: str) -> str:
    """Absolute path of a packaged asset, e.g. ``path("kubetray.png")`` for a desktop entry's Icon=."""
    return os.path.join(_HERE, name)

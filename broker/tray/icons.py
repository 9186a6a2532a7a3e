"""The tray's icons, drawn with Pillow: one silhouette per state, so state reads without colour.

macOS shows tray icons as template images (only the alpha channel counts) and taskbars may be dark or
light, so each state differs by shape and its symbol is cut out of the shape (transparent) rather than
painted white. Colour is a second cue: mid-tone fills that read on dark and light panels alike.

Drawn at 4× and scaled down for smooth edges. ``app_icon`` is the application icon shipped in
packaging/ and as package data in broker/assets (desktop entries name it); ``packaging/icons/generate.py`` writes them.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

from broker.tray.presenter import ICON_BUSY, ICON_ERROR, ICON_IDLE, ICON_OK, ICON_SIGN_IN, ICON_STATES

_CANVAS = 256  # drawing size; every coordinate below is in this square
_COLOURS = {
    ICON_OK: (0x2E, 0x9D, 0x4F),
    ICON_SIGN_IN: (0xD9, 0x8E, 0x04),
    ICON_ERROR: (0xD9, 0x30, 0x25),
    ICON_BUSY: (0x1A, 0x73, 0xE8),
    ICON_IDLE: (0x80, 0x80, 0x80),
}
APP_BLUE = (0x32, 0x6C, 0xE5)


def _mask(state: str) -> Image.Image:
    """The state's silhouette as an 8-bit mask: 255 inside, 0 outside and in the cut-out symbol."""
    mask = Image.new("L", (_CANVAS, _CANVAS), 0)
    d = ImageDraw.Draw(mask)
    if state == ICON_OK:  # a disc with a check mark cut out
        d.ellipse((8, 8, 248, 248), fill=255)
        d.line([(64, 132), (108, 176), (192, 86)], fill=0, width=30, joint="curve")
    elif state == ICON_SIGN_IN:  # a padlock: shackle and body, keyhole cut out
        d.arc((60, 12, 196, 148), start=180, end=360, fill=255, width=30)
        d.rectangle((60, 80, 90, 124), fill=255)
        d.rectangle((166, 80, 196, 124), fill=255)
        d.rounded_rectangle((28, 112, 228, 248), radius=24, fill=255)
        d.ellipse((108, 144, 148, 184), fill=0)
        d.rectangle((118, 168, 138, 216), fill=0)
    elif state == ICON_ERROR:  # a warning triangle with "!" cut out
        d.polygon([(128, 8), (250, 236), (6, 236)], fill=255)
        d.rounded_rectangle((113, 76, 143, 170), radius=12, fill=0)
        d.ellipse((111, 186, 145, 220), fill=0)
    elif state == ICON_BUSY:  # a broken ring (a spinner) around a dot
        d.arc((12, 12, 244, 244), start=-60, end=240, fill=255, width=40)
        d.ellipse((96, 96, 160, 160), fill=255)
    elif state == ICON_IDLE:  # an empty ring
        d.ellipse((16, 16, 240, 240), outline=255, width=28)
    else:
        raise ValueError(f"unknown icon state {state!r}")
    return mask


def render(state: str, size: int = 64, *, template: bool = False) -> Image.Image:
    """The icon for ``state`` as RGBA, ``size`` pixels square. ``template``: black, for macOS."""
    mask = _mask(state)  # raises on an unknown state
    colour = (0, 0, 0) if template else _COLOURS[state]
    image = Image.new("RGBA", (_CANVAS, _CANVAS), (*colour, 0))
    image.putalpha(mask)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def render_all(size: int = 64, *, template: bool = False) -> dict[str, Image.Image]:
    return {state: render(state, size, template=template) for state in ICON_STATES}


def app_icon(size: int = 256) -> Image.Image:
    """The application icon: a key on a rounded blue square (same geometry as packaging/icons/kubetray.svg)."""
    image = Image.new("RGBA", (_CANVAS, _CANVAS), (0, 0, 0, 0))
    d = ImageDraw.Draw(image)
    d.rounded_rectangle((8, 8, 248, 248), radius=48, fill=(*APP_BLUE, 255))
    white = (255, 255, 255, 255)
    d.ellipse((40, 84, 128, 172), fill=white)  # the key's bow
    d.ellipse((66, 110, 102, 146), fill=(*APP_BLUE, 255))  # and its hole
    d.rectangle((120, 116, 220, 140), fill=white)  # the shaft
    d.rectangle((172, 140, 190, 170), fill=white)  # two bits
    d.rectangle((198, 140, 216, 162), fill=white)
    return image.resize((size, size), Image.Resampling.LANCZOS)


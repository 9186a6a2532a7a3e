"""Regenerate packaging/ and broker/assets/ from the code that draws and writes them.

    python packaging/generate.py

The icons come from broker/tray/icons.py; the LaunchAgent and systemd templates from the autostart
modules, with @KUBETRAY@ where the absolute path of the installed ``kubetray`` goes. Run it after
changing either; tests/unit/test_autostart.py fails while these files are out of date.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker.autostart import RUN_ARGS, linux, macos  # noqa: E402
from broker.tray import icons  # noqa: E402

PLACEHOLDER = "@KUBETRAY@"
ICO_SIZES = [(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)]


def templates() -> dict[str, bytes]:
    """Template files by path relative to packaging/."""
    command = [PLACEHOLDER, *RUN_ARGS]
    return {
        "linux/kubetray.service.in": linux.render_unit(command).encode(),
        f"macos/{macos.LABEL}.plist.in": macos.render(command),
    }


def main() -> None:
    here = ROOT / "packaging"
    for name, content in templates().items():
        (here / name).write_bytes(content)
    app = icons.app_icon(256)
    app.save(here / "icons" / "kubetray.png")
    app.save(here / "icons" / "kubetray.ico", sizes=ICO_SIZES)
    for state, image in icons.render_all(64).items():
        image.save(here / "icons" / f"kubetray-{state}.png")
    for state, image in icons.render_all(64, template=True).items():
        image.save(here / "icons" / f"kubetray-{state}-template.png")
    assets = ROOT / "broker" / "assets"
    app.save(assets / "kubetray.png")
    shutil.copyfile(here / "icons" / "kubetray.svg", assets / "kubetray.svg")


if __name__ == "__main__":
    main()

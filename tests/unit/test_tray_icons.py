"""The tray's icons: each state has its own silhouette (macOS shows only alpha), and the packaged
icons are what the code draws."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from broker.tray import icons
from broker.tray.presenter import ICON_STATES

ROOT = Path(__file__).resolve().parents[2]


def silhouette(image: Image.Image) -> set[tuple[int, int]]:
    alpha = image.getchannel("A").tobytes()
    return {(i % image.width, i // image.width) for i, value in enumerate(alpha) if value > 127}


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(ICON_STATES, 2)))
def test_every_pair_of_states_differs_by_shape_alone(a: str, b: str) -> None:
    # Templates are black: only the alpha channel can tell them apart, as on macOS.
    sa, sb = silhouette(icons.render(a, 32, template=True)), silhouette(icons.render(b, 32, template=True))
    overlap = len(sa & sb) / len(sa | sb)
    assert overlap < 0.75, f"{a} and {b} look alike ({overlap:.0%} of their pixels overlap)"


@pytest.mark.parametrize("state", ICON_STATES)
def test_icons_are_square_rgba_partly_transparent_and_templates_are_black(state: str) -> None:
    image = icons.render(state, 48)
    assert image.mode == "RGBA" and image.size == (48, 48)
    assert image.getchannel("A").getextrema() == (0, 255)
    template = icons.render(state, 48, template=True)
    assert template.convert("RGB").getextrema() == ((0, 0), (0, 0), (0, 0))


def test_an_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown icon state"):
        icons.render("sparkly")


@pytest.mark.parametrize("path", [
    "broker/assets/kubetray.png", "packaging/icons/kubetray.png", "packaging/icons/kubetray-ok.png",
    "packaging/icons/kubetray-sign_in-template.png",
])
def test_the_packaged_pngs_are_what_the_code_draws(path: str) -> None:
    with Image.open(ROOT / path) as image:
        stored = image.convert("RGBA")
    name = Path(path).stem.removeprefix("kubetray").lstrip("-")
    if not name:
        drawn = icons.app_icon(stored.width)
    else:
        state, _, kind = name.partition("-")
        drawn = icons.render(state, stored.width, template=kind == "template")
    worst = max(ImageChops.difference(stored, drawn).tobytes())
    assert worst <= 8, f"{path} is stale: run packaging/generate.py"


def test_the_ico_holds_every_size_from_16_to_256() -> None:
    with Image.open(ROOT / "packaging" / "icons" / "kubetray.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])


def test_the_svg_and_the_png_agree_on_the_application_icon() -> None:
    svg = (ROOT / "packaging" / "icons" / "kubetray.svg").read_text()
    assert '<rect x="8" y="8" width="240" height="240" rx="48"' in svg and 'fill="#326ce5"' in svg
    assert (ROOT / "broker" / "assets" / "kubetray.svg").read_text() == svg
    assert icons.APP_BLUE == (0x32, 0x6C, 0xE5)

"""Fixtures shared by every test tier. Keep each section short; tier-specific fixtures live in the tier."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.readable import readable_copy
from tests.support.session import IsolatedSession, keyring_available

# --- Isolation: no test sees the real home directory or the real session bus ---------------------------


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point HOME and XDG_* at a temporary directory and the session bus at a socket nobody listens on.

    A test that forgets to ask for ``desktop_session`` then finds no keyring, rather than the user's.
    """
    root = tmp_path_factory.mktemp("isolated")
    with pytest.MonkeyPatch.context() as patch:
        for variable in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
            path = root / variable.lower()
            path.mkdir()
            patch.setenv(variable, str(path))
        runtime = root / "run"
        runtime.mkdir(mode=0o700)
        patch.setenv("XDG_RUNTIME_DIR", str(runtime))
        patch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={root}/no-bus")
        for variable in ("DISPLAY", "WAYLAND_DISPLAY", "GNOME_KEYRING_CONTROL", "PYTHON_KEYRING_BACKEND"):
            patch.delenv(variable, raising=False)
        yield


# --- The desktop session: a private D-Bus with an unlocked gnome-keyring -------------------------------


@pytest.fixture(scope="session")
def desktop_session(isolated_environment: None) -> Iterator[IsolatedSession]:
    """One IsolatedSession for the whole run; os.environ points into it while it lasts."""
    if not keyring_available():
        pytest.fail(
            "dbus-daemon and gnome-keyring-daemon are not on PATH; run the tests with scripts/test, "
            "which installs them",
            pytrace=False,
        )
    with IsolatedSession() as session, pytest.MonkeyPatch.context() as patch:
        for variable in set(os.environ) - set(session.env):
            patch.delenv(variable)
        for variable, value in session.env.items():
            patch.setenv(variable, value)
        _forget_keyring_choice()
        yield session
    _forget_keyring_choice()


def _forget_keyring_choice() -> None:
    """keyring picks its backend once per process (and caches which backends are viable): a test that
    ran before the session existed must not leave this process with "no keyring" for the rest."""
    import keyring.backend
    import keyring.core

    chosen = keyring.backend.get_all_keyring
    if "saved_result" in vars(chosen):  # jaraco.functools.once keeps its result there; reset() forgets it
        chosen.reset()  # type: ignore[attr-defined]
    keyring.core.init_backend()


# --- What a second uid runs: a world-readable copy (the checkout may sit in a 0700 home) ----------------


@pytest.fixture(scope="session")
def readable_tree() -> Iterator[Path]:
    """broker/ and shim/ copied where any uid can read them; tests run them with ``other_user_python()``."""
    root = readable_copy()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)

"""Paths on Linux are computed without platformdirs (its import is on the first call's path): they must
be exactly what platformdirs computes for the same environment."""

from __future__ import annotations

import os
import sys

import platformdirs
import pytest

from broker.process import paths

CASES = [
    {},  # neither XDG_STATE_HOME nor anything else: ~/.local/state
    {"XDG_STATE_HOME": "/srv/state"},
    {"XDG_STATE_HOME": ""},
    {"XDG_STATE_HOME": "relative/state"},  # the XDG spec: relative paths are ignored
    {"XDG_STATE_HOME": "  "},
]


@pytest.mark.skipif(sys.platform == "win32", reason="the XDG rules are Linux's and the BSDs'; platformdirs decides "
                    "on Windows and macOS")
@pytest.mark.parametrize("extra", CASES, ids=lambda e: repr(e.get("XDG_STATE_HOME")))
def test_linux_state_and_log_dirs_are_platformdirs_own(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str],
                                                       extra: dict[str, str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    for name, value in extra.items():
        monkeypatch.setenv(name, value)
    env = dict(os.environ)
    unix = platformdirs.unix.Unix("kubetray", appauthor=False)
    assert paths.user_state_dir(env, "linux") == unix.user_state_dir
    assert paths.user_log_dir(env, "linux") == unix.user_log_dir


def test_default_paths_honour_the_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    monkeypatch.setenv("KUBETRAY_STATE_DIR", f"{tmp_path}/s")
    monkeypatch.setenv("KUBETRAY_LOG_DIR", f"{tmp_path}/l")
    p = paths.Paths.default()
    assert (p.state_dir, p.log_dir) == (f"{tmp_path}/s", f"{tmp_path}/l")

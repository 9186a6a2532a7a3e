"""Where the socket lives, and which directories shim and daemon refuse: they must agree exactly.

These run as whichever user runs the suite; directories of "another user" are made with chown, which
needs root (the suite runs as root here; those cases skip otherwise).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from broker.core.errors import InsecureRuntimeDir
from broker.ipc import instance, unix
from broker.process.paths import Paths
from shim import main as shim_main
from shim import wire

ROOT = os.getuid() == 0
OTHER_UID = 65534


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBETRAY_RUNTIME_DIR", "KUBETRAY_SOCKET"):
        monkeypatch.delenv(name, raising=False)


def _xdg_cases(tmp_path: Path) -> dict[str, tuple[Path, bool]]:
    """Candidate XDG_RUNTIME_DIR values and whether each is usable (ours, a directory, 0700)."""
    good = _private(tmp_path / "xdg-good")
    loose = tmp_path / "xdg-loose"
    loose.mkdir()
    os.chmod(loose, 0o755)
    link = tmp_path / "xdg-link"
    link.symlink_to(good)
    cases = {"good": (good, True), "loose": (loose, False), "link": (link, False),
             "missing": (tmp_path / "nope", False)}
    if ROOT:
        foreign = _private(tmp_path / "xdg-foreign")
        os.chown(foreign, OTHER_UID, OTHER_UID)
        cases["foreign"] = (foreign, False)
    return cases


@pytest.mark.parametrize("case", ["good", "loose", "link", "missing", "foreign"])
def test_shim_and_daemon_agree_on_the_socket_and_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    cases = _xdg_cases(tmp_path)
    if case not in cases:
        pytest.skip("needs root to make a directory of another user")
    base, usable = cases[case]
    _clear(monkeypatch)
    home = _private(tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    expected = (str(base) + "/kubetray") if usable else str(home) + "/.cache/kubetray/run"
    assert wire.runtime_dir() == expected
    paths = Paths.default()
    assert paths.runtime_dir == expected
    assert paths.socket == wire.socket_path() == expected + "/kubetray.sock"
    # the daemon creates it as the shim would accept it, and the shim then accepts it
    unix.secure_runtime_dir(paths.runtime_dir)
    assert wire.check_dir(paths.runtime_dir) is None
    assert os.stat(paths.runtime_dir).st_mode & 0o777 == 0o700


def _bad_dirs(tmp_path: Path) -> dict[str, Path]:
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o770)
    target = _private(tmp_path / "target")
    link = tmp_path / "link"
    link.symlink_to(target)
    plain = tmp_path / "file"
    plain.write_text("")
    bad = {"group-writable": loose, "symlink": link, "file": plain}
    if ROOT:
        foreign = _private(tmp_path / "foreign")
        os.chown(foreign, OTHER_UID, OTHER_UID)
        bad["other-owner"] = foreign
    return bad


@pytest.mark.parametrize("case", ["group-writable", "symlink", "file", "other-owner"])
def test_shim_and_daemon_refuse_the_same_directories_with_one_line_and_the_fix(tmp_path: Path, case: str) -> None:
    bad = _bad_dirs(tmp_path)
    if case not in bad:
        pytest.skip("needs root to make a directory of another user")
    path = str(bad[case])
    problem = wire.check_dir(path)
    assert problem and "\n" not in problem and path in problem
    with pytest.raises(InsecureRuntimeDir) as refused:
        unix.secure_runtime_dir(path)
    assert refused.value.message == problem
    fixes = {"group-writable": f"chmod 700 {path}", "symlink": f"rm {path}", "file": f"rm {path}",
             "other-owner": "unset KUBETRAY_RUNTIME_DIR"}
    assert fixes[case] in problem
    if case == "symlink":  # nothing was created through the link
        assert os.listdir(tmp_path / "target") == []


@pytest.mark.parametrize("variable", ["KUBETRAY_RUNTIME_DIR", "KUBETRAY_SOCKET"])
def test_the_overrides_get_the_same_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    _clear(monkeypatch)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # a /tmp-like directory: anyone may create names in it
    monkeypatch.setenv(variable, str(shared) if variable == "KUBETRAY_RUNTIME_DIR" else str(shared / "k.sock"))
    assert shim_main.run(["get-token"]) == 1  # refused before connecting or creating anything
    assert os.listdir(shared) == []
    with pytest.raises(instance.ForeignPeer, match="chmod 700"):
        list(instance.request(wire.socket_path(), "ping"))


def test_a_missing_directory_is_not_a_refusal_but_no_daemon(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        wire.check_dir(str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError):
        shim_main.connect(str(tmp_path / "absent" / "kubetray.sock"))


def test_a_socket_path_too_long_for_sockaddr_un_still_binds_and_connects(tmp_path: Path) -> None:
    deep = _private(tmp_path / ("h" * 60) / ("o" * 60) / "run")
    path = str(deep / "kubetray.sock")
    assert len(path.encode()) > wire.MAX_SUN_PATH
    with socket.socket(socket.AF_UNIX) as plain, pytest.raises(OSError):  # what a plain connect would do
        plain.connect(path)
    listener = unix.listen(path)
    try:
        assert os.path.exists(path) and os.stat(path).st_mode & 0o777 == 0o600
        client = shim_main.connect(path)  # directory check, connect through its fd, peer check
        try:
            server, _ = listener.accept()
            with server:
                client.sendall(b"ping\n")
                assert server.recv(5) == b"ping\n"
        finally:
            client.close()
        with instance.connect(path, 2.0) as again:
            listener.accept()[0].close()
            assert again.fileno() >= 0
    finally:
        listener.close()


def test_the_daemon_lock_never_follows_a_link(tmp_path: Path) -> None:
    rundir = _private(tmp_path / "run")
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (rundir / "daemon.lock").symlink_to(victim)
    with pytest.raises(OSError):
        instance.InstanceLock(str(rundir)).try_acquire()
    assert victim.read_text() == "keep me"
    os.unlink(rundir / "daemon.lock")
    lock = instance.InstanceLock(str(rundir))
    assert lock.try_acquire()
    lock.release()
    assert os.stat(rundir / "daemon.lock").st_mode & 0o777 == 0o600


def test_the_macos_way_to_a_long_path_moves_the_working_directory_and_back(tmp_path: Path) -> None:
    deep = _private(tmp_path / ("m" * 70) / ("n" * 40))
    path = str(deep / "kubetray.sock")
    here = os.getcwd()
    seen: list[tuple[str, str]] = []
    wire.unix_call(lambda address: seen.append((address, os.getcwd())), path, platform="darwin")
    assert seen == [("kubetray.sock", str(deep))]  # a short relative name, resolved in the checked directory
    assert os.getcwd() == here
    with socket.socket(socket.AF_UNIX) as listener:
        wire.unix_call(listener.bind, path, platform="darwin")  # and it really binds there
        assert os.path.exists(path)

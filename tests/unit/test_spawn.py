"""How the shim starts the daemon (command, environment, Windows flags) and how it bounds its wait.

Pure functions, so every OS's answer is checked here; the real spawn is tests/integration/test_trust.py.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from shim import launch, spawn, wire
from shim import main as shim_main

SESSION = {
    "HOME": "/home/a", "USER": "a", "LOGNAME": "a", "PATH": "/usr/bin", "LANG": "C.UTF-8", "LC_TIME": "C",
    "DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XAUTHORITY": "/x", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/b",
    "XDG_RUNTIME_DIR": "/run/user/1", "XDG_CONFIG_HOME": "/c", "TMPDIR": "/t", "BROWSER": "firefox",
    "KUBECONFIG": "/k", "KUBETRAY_STATE_DIR": "/s", "KUBETRAY_SOCKET": "/r/k.sock",
    "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost", "SSL_CERT_FILE": "/ca.pem",
    "REQUESTS_CA_BUNDLE": "/ca.pem",
}
NEVER = {
    "LD_PRELOAD": "/evil.so", "LD_LIBRARY_PATH": "/evil", "DYLD_INSERT_LIBRARIES": "/evil.dylib",
    "PYTHONPATH": "/evil", "PYTHONSTARTUP": "/evil.py", "PYTHONHOME": "/evil", "PYTHON_KEYRING_BACKEND": "x",
    "AZURE_CLIENT_SECRET": "s3cret", "AZURE_CLIENT_ID": "id", "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET": "s",
    "OPENAI_API_KEY": "sk-unrelated", "GITHUB_TOKEN": "ghp_x", "IDENTITY_HEADER": "h", "KUBERNETES_EXEC_INFO": "{}",
    "KUBETRAY_DAEMON_COMMAND": "/bin/sh -c evil", "SSH_AUTH_SOCK": "/a",
}


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_the_daemon_gets_the_session_and_nothing_else(platform: str) -> None:
    env = spawn.daemon_env({**SESSION, **NEVER}, platform)
    assert env == SESSION


def test_on_windows_the_system_variables_pass_whatever_their_case() -> None:
    windows = {"SystemRoot": "C:\\Windows", "LOCALAPPDATA": "C:\\Users\\a\\AppData\\Local", "Path": "C:\\py",
               "USERPROFILE": "C:\\Users\\a", "TEMP": "C:\\t", "https_proxy": "http://p:1"}
    env = spawn.daemon_env({**windows, **NEVER}, "win32")
    assert env == windows


def test_extra_names_pass_only_when_they_are_neither_hooks_nor_secrets() -> None:
    env = spawn.daemon_env({**SESSION, "TEST_BROWSER_LOG": "/l", "KUBETRAY_DAEMON_ENV": "TEST_BROWSER_LOG, ABSENT"},
                           "linux")
    assert env["TEST_BROWSER_LOG"] == "/l" and "ABSENT" not in env
    for name in ("LD_PRELOAD", "PYTHONPATH", "DYLD_INSERT_LIBRARIES", "AZURE_CLIENT_SECRET", "GITHUB_TOKEN",
                 "db_password"):
        with pytest.raises(spawn.SpawnRefused, match=f"names {name}, which the daemon never inherits"):
            spawn.daemon_env({name: "x", "KUBETRAY_DAEMON_ENV": name}, "linux")


def test_the_command_is_an_isolated_interpreter_and_the_environment_cannot_choose_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    monkeypatch.setenv("KUBETRAY_DAEMON_COMMAND", f"/bin/sh -c 'touch {tmp_path}/pwned'")
    argv = launch.daemon_command("linux")
    assert argv[1:] == ["-I", "-m", "broker", "run", "--detach"]
    assert os.path.isabs(argv[0]) and "sh" not in os.path.basename(argv[0])


def test_on_windows_pythonw_runs_the_daemon_when_it_is_there() -> None:
    py = "C:\\Program Files\\Python312\\python.exe"
    assert spawn.interpreter(py, "win32", lambda p: True) == "C:\\Program Files\\Python312\\pythonw.exe"
    assert spawn.interpreter(py, "win32", lambda p: False) == py
    assert spawn.interpreter("/usr/bin/python3", "linux", lambda p: True) == "/usr/bin/python3"


def test_windows_creation_flags_open_no_console_and_leave_kubectls_group() -> None:
    flags = spawn.creation_flags("win32")
    assert flags & 0x00000008 and flags & 0x00000200 and flags & 0x08000000  # DETACHED, NEW_GROUP, NO_WINDOW
    assert spawn.creation_flags("linux") == spawn.creation_flags("darwin") == 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("300ms", 0.3), ("0", 0.0),
     ("", None), ("5", None), ("1m30", None), ("-1s", None), ("1.2.3s", None), ("5x", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert shim_main.go_duration(text) == seconds


def test_the_wait_fits_the_kubeconfigs_sign_in_timeout() -> None:
    assert shim_main.reply_silence(["get-token"]) == shim_main.REPLY_SILENCE
    assert shim_main.reply_silence(["get-token", "--timeout", "30m"]) == 1800 + shim_main.SILENCE_MARGIN
    assert shim_main.reply_silence(["get-token", "--timeout=1m"]) == shim_main.REPLY_SILENCE
    assert shim_main.reply_silence(["oidc-login", "get-token", "--authentication-timeout-sec=3600"]) == 3660.0
    assert shim_main.reply_silence(["get-token", "--timeout", "nonsense"]) == shim_main.REPLY_SILENCE


def _serve(sock: socket.socket, data: bytes) -> threading.Thread:
    def run() -> None:
        sock.recv(65536)
        sock.sendall(data)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_silent_daemon_ends_the_call_with_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    left, right = socket.socketpair()
    with left, right:
        thread = _serve(right, b'{"v":1,"type":"progress","message":"working"}\n')
        assert shim_main.exchange(left, b"{}\n", silence=0.2) == 1
        thread.join()
    err = capfd.readouterr().err
    assert err.splitlines() == ["working", "kubetray: the kubetray daemon said nothing for 0 s; run kubectl again, "
                                "or see `kubetray status` and its log"]


def test_an_endless_reply_line_is_cut_off(capfd: pytest.CaptureFixture[str]) -> None:
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(True)
        flood = threading.Thread(target=lambda: _flood(right))
        flood.start()
        assert shim_main.exchange(left, b"{}\n", silence=5) == 1
        left.close()
        flood.join()
    assert "reply longer than 1048576 bytes" in capfd.readouterr().err


def _flood(sock: socket.socket) -> None:
    sock.recv(65536)
    try:
        while True:
            sock.sendall(b"x" * 65536)
    except OSError:
        pass


def _ucred(uid: int) -> bytes:
    return struct.pack("=iII", 1, uid, 1)


@pytest.mark.skipif(wire.peer_method() != "ucred", reason="the SO_PEERCRED layout")
def test_the_peer_must_be_us() -> None:
    assert wire.foreign_peer(lambda *a: _ucred(os.getuid())) is None
    assert "uid 4242, not by your kubetray daemon" in (wire.foreign_peer(lambda *a: _ucred(4242)) or "")
    assert "cannot tell which user" in (wire.foreign_peer(lambda *a: b"\0\0") or "")

    def broken(*_: int) -> bytes:
        raise OSError(95, "Operation not supported")

    assert "Operation not supported" in (wire.foreign_peer(broken) or "")


def test_on_windows_the_pipe_read_is_bounded_by_polling_with_a_fake_clock() -> None:
    from shim import winpipe

    now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    with pytest.raises(TimeoutError):
        winpipe.wait_readable(lambda: 0, 1.0, monotonic=lambda: now[0], sleep=sleep)
    assert 0.99 <= now[0] <= 1.05 and len(naps) >= 50
    answers = iter([0, 0, 7])
    winpipe.wait_readable(lambda: next(answers), 1.0, monotonic=lambda: now[0], sleep=sleep)  # data: returns
    winpipe.wait_readable(lambda: None, 1.0, monotonic=lambda: now[0], sleep=sleep)  # broken: ReadFile says so


def test_the_runtime_directory_per_os(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBETRAY_RUNTIME_DIR", "KUBETRAY_SOCKET", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", "/Users/ann")
    monkeypatch.setenv("LOCALAPPDATA", "C:\\Users\\ann\\AppData\\Local")
    assert wire.socket_path("win32") == "C:\\Users\\ann\\AppData\\Local\\kubetray\\kubetray\\Temp\\kubetray.sock"
    assert wire.socket_path("darwin") == "/Users/ann/Library/Caches/TemporaryItems/kubetray/kubetray.sock"
    # no /run/user/<uid> for this test's uid base: the private directory under HOME, on Linux and the BSDs
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/nonexistent-kubetray-test")
    assert wire.runtime_dir("linux") == wire.runtime_dir("freebsd14") == "/Users/ann/.cache/kubetray/run"

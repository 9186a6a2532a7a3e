"""The daemon process and its socket: one per user, stale sockets, peers, and whatever clients send."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.daemon_proc import ask as _ask
from tests.support.daemon_proc import start as _start
from tests.support.daemon_proc import stop as _stop
from tests.support.readable import other_user_python
from tests.support.rig import Rig


def test_a_second_run_reports_the_running_daemon_and_exits_0(rig: Rig) -> None:
    daemon = _start(rig)
    try:
        second = rig.kubetray("run", "--headless", timeout=30)
        assert second.returncode == 0
        assert f"already running (pid {daemon.pid}".encode() in second.stdout
        assert daemon.poll() is None
    finally:
        _stop(daemon)
    assert not rig.socket.exists()  # a clean stop removes its socket


def test_a_stale_socket_is_detected_and_replaced(rig: Rig) -> None:
    daemon = _start(rig)
    daemon.kill()
    daemon.communicate()
    assert rig.socket.exists()
    again = _start(rig)
    try:
        assert _ask(rig.socket, b'{"v":1,"op":"ping"}\n')[0]["pid"] == again.pid
    finally:
        _stop(again)


@pytest.mark.parametrize("mode", [0o755, 0o770])
def test_an_insecure_socket_directory_is_refused(rig: Rig, mode: int) -> None:
    os.chmod(rig.root / "run", mode)
    proc = rig.kubetray("run", "--headless", timeout=30)
    assert proc.returncode == 2
    assert f"mode {mode:04o}".encode() in proc.stderr and b"chmod 700" in proc.stderr
    assert proc.stderr.count(b"\n") == 1
    assert not rig.socket.exists()


@pytest.mark.parametrize(
    ("request_bytes", "code"),
    [
        (b"not json\n", "bad_request"),
        (b"[1,2,3]\n", "bad_request"),
        (b'{"v":2,"op":"ping"}\n', "unsupported_version"),
        (b'{"v":1,"op":"__class__"}\n', "bad_request"),
        (b'{"v":1,"op":"exec","argv":"get-token"}\n', "bad_request"),
        (b'{"v":1,"op":"exec","argv":["get-token","--login","spn"]}\n', "invalid_arguments"),
        (b'{"v":1,"op":"exec","argv":["get-token"],"exec_info":7}\n', "bad_request"),
        (b"\xff\xfe\n", "bad_request"),
        (b'{"v":1,"op":"ping"', "bad_request"),  # no newline before EOF
        (b"x" * 70_000 + b"\n", "bad_request"),
        # Nested past json's recursion limit: the request itself, and KUBERNETES_EXEC_INFO inside it.
        (b"[" * 30_000 + b"\n", "bad_request"),
        (b'{"v":1,"op":"exec","argv":["get-token"],"exec_info":"' + b"[" * 30_000 + b'"}\n', "bad_request"),
        # Lone surrogates (bytes that are not UTF-8) in an argument, a forwarded variable, the cwd.
        (b'{"v":1,"op":"exec","argv":["get-token","--server-id","\\udc80srv","--client-id","c",'
         b'"--tenant-id","t"]}\n', "invalid_arguments"),
        (b'{"v":1,"op":"exec","argv":["get-token"],"env":{"AZURE_TENANT_ID":"\\ud800"}}\n', "invalid_arguments"),
        (b'{"v":1,"op":"exec","argv":["get-token"],"cwd":"/tmp/\\udcff"}\n', "invalid_arguments"),
        (b'{"v":1,"op":"logout","argv":["get-token","--server-id","\\udc80"]}\n', "invalid_arguments"),
        # Oversized fields inside the size limit of the line.
        (b'{"v":1,"op":"exec","argv":[' + b",".join([b'"-v"'] * 300) + b"]}\n", "invalid_arguments"),
        (b'{"v":1,"op":"exec","argv":["get-token","--server-id","' + b"s" * 40_000 + b'"]}\n',
         "invalid_arguments"),
    ],
)
def test_malformed_requests_get_structured_errors_and_the_daemon_keeps_serving(
    rig: Rig, request_bytes: bytes, code: str
) -> None:
    daemon = _start(rig)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(rig.socket))
            s.sendall(request_bytes)
            s.shutdown(socket.SHUT_WR)
            reply = json.loads(s.makefile("rb").readline())
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert "\n" not in reply["message"]
        assert _ask(rig.socket, b'{"v":1,"op":"ping"}\n')[0]["type"] == "pong"
    finally:
        _stop(daemon)


def test_a_silent_client_is_cut_off_and_others_are_still_served(rig: Rig) -> None:
    daemon = _start(rig)
    try:
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(str(rig.socket))
        idle.sendall(b'{"v":1,')
        assert _ask(rig.socket, b'{"v":1,"op":"ping"}\n')[0]["type"] == "pong"
        idle.settimeout(10)
        reply = json.loads(idle.makefile("rb").readline())
        assert reply["code"] == "timeout"
        idle.close()
    finally:
        _stop(daemon)


def test_another_uid_is_refused_even_with_the_socket_open_to_all(rig: Rig, readable_tree: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to act as another user")
    # pytest's tmp root is private to root; put this daemon's directory where another user can reach it
    rundir = Path(tempfile.mkdtemp(prefix="kubetray-peer-"))
    rig.env["KUBETRAY_RUNTIME_DIR"] = str(rundir)
    daemon = _start(rig, rundir / "kubetray.sock")
    try:
        os.chmod(rundir, 0o755)
        os.chmod(rundir / "kubetray.sock", 0o666)
        client = (
            "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
            "s.sendall(b'{\"v\":1,\"op\":\"status\"}\\n'); sys.stdout.write(s.makefile().read())"
        )
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", other_user_python(), "-I", "-c",
             client, str(rundir / "kubetray.sock")],
            capture_output=True, timeout=30, check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        reply = json.loads(proc.stdout)
        assert reply["code"] == "forbidden"
        assert "profiles" not in reply
        assert "kubetray login" not in proc.stdout.decode()
        # and the shim itself refuses to talk to a socket another user owns
        shim_src = str(readable_tree)  # the checkout itself may be in a home other users cannot enter
        shim = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", other_user_python(), "-I", "-S", "-c",
             f"import sys; sys.path.insert(0, {shim_src!r}); from shim.main import main; main()", "get-token"],
            env={"KUBETRAY_SOCKET": str(rundir / "kubetray.sock"), "PATH": "/usr/bin:/bin"},
            capture_output=True, timeout=30, check=False,
        )
        assert shim.returncode == 1
        assert b"refusing to use the broker socket" in shim.stderr
    finally:
        _stop(daemon)
        shutil.rmtree(rundir, ignore_errors=True)

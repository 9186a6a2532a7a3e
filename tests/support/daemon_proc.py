"""Run `kubetray run --headless` as a child process of the test and talk to its socket."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.rig import BIN, TRANSCRIPTS, Rig


def start(rig: Rig, sock: Path | None = None) -> subprocess.Popen[bytes]:
    sock = sock or rig.socket
    proc = subprocess.Popen([str(BIN / "kubetray"), "run", "--headless"], env=rig.env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if sock.exists() and ask(sock, b'{"v":1,"op":"ping"}\n'):
                return proc
        except OSError:
            pass  # bound but not listening yet, or a stale socket from a killed daemon
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(err.decode())
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    raise AssertionError("daemon did not start")


def ask(path: Path, data: bytes, timeout: float = 5.0) -> list[dict[str, object]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while True:  # a full listen backlog answers a timed AF_UNIX connect with EAGAIN: try again
            try:
                s.connect(str(path))
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return [json.loads(line) for line in b"".join(chunks).splitlines()]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait; the daemon's stderr joins the captured output the leak check scans."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    TRANSCRIPTS.append(err or b"")

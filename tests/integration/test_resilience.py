"""What the daemon survives: idle and byte-a-second clients, fuzzed requests, a missing or locked keyring,
and other processes trying to read its memory. Figures are printed (run pytest with -s to see them)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.daemon_proc import ask, start, stop
from tests.support.readable import other_user_python
from tests.support.rig import Rig
from tests.support.session import IsolatedSession

PING = b'{"v":1,"op":"ping"}\n'


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.slow
def test_a_thousand_idle_and_slow_clients_do_not_lock_out_a_real_one(rig: Rig) -> None:
    daemon = start(rig)
    idle: list[socket.socket] = []
    stop_dripping = threading.Event()
    try:
        for i in range(1000):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(str(rig.socket))
            if i % 2:
                s.sendall(b"{")  # half of them start a request and then crawl
            idle.append(s)

        def drip() -> None:
            while not stop_dripping.wait(1.0):
                for s in idle[1::2]:
                    with contextlib.suppress(OSError):
                        s.sendall(b" ")

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        latencies = []
        for _ in range(20):
            t0 = time.perf_counter()
            reply = ask(rig.socket, PING)
            latencies.append(time.perf_counter() - t0)
            assert reply[0]["type"] == "pong"
        print(f"\n1000 idle/slow clients: ping p50 {1000 * statistics.median(latencies):.1f} ms, "
              f"max {1000 * max(latencies):.1f} ms")
        assert statistics.median(latencies) < 0.1  # served within 100 ms
        assert "connection cap reached" in rig.daemon_log()
    finally:
        stop_dripping.set()
        for s in idle:
            s.close()
        stop(daemon)


# Messages a confused or hostile client might send: valid JSON of every shape, broken JSON, raw bytes.
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
# login/logout/shutdown are left out: well-formed, they do what they say (open a browser, forget tokens,
# stop), which is the same user's right, not a fault; their argument handling is shared with refresh.
_ops = st.sampled_from(["ping", "exec", "status", "refresh", "bogus", "", 1, None])
_requests = st.one_of(
    st.fixed_dictionaries({"v": st.sampled_from([1, 1, 2, "1", None]), "op": _ops}, optional={
        "argv": st.one_of(st.lists(st.text(max_size=30), max_size=8), _json),
        "exec_info": st.one_of(st.none(), st.text(max_size=60), _json),
        "key": st.one_of(st.text(max_size=20), _json),
    }).map(lambda d: json.dumps(d).encode() + b"\n"),
    _json.map(lambda d: json.dumps(d).encode() + b"\n"),
    st.binary(max_size=300).map(lambda b: b + b"\n"),
    st.binary(max_size=300),  # truncated: no newline
)


@pytest.mark.slow
def test_fuzzed_requests_never_take_the_daemon_down_or_leak(rig: Rig) -> None:
    assert rig.kubectl("get", "pods").returncode == 0  # there is a token to leak, if anything leaked
    pid = rig.daemon_pid()
    assert pid is not None
    rss_before = _rss_kib(pid)
    counts = {"sent": 0, "error_replies": 0}

    @settings(max_examples=10_000, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_requests)
    def fuzz(data: bytes) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(rig.socket))
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            raw = b"".join(iter(lambda: s.recv(65536), b""))
        counts["sent"] += 1
        for line in raw.splitlines():
            reply = json.loads(line)
            assert reply["v"] == 1
            if reply["type"] == "error":
                counts["error_replies"] += 1
                assert reply["code"] != "internal", reply
                assert "eyJ" not in reply["message"]

    fuzz()
    assert ask(rig.socket, PING)[0]["pid"] == pid  # the same daemon, still serving
    assert rig.kubectl("get", "pods").returncode == 0
    growth = _rss_kib(pid) - rss_before
    print(f"\nfuzzing: {counts['sent']} messages, {counts['error_replies']} error replies, "
          f"daemon RSS grew {growth} KiB")
    assert counts["sent"] >= 10_000
    assert growth < 50 * 1024  # bounded: no per-message leak


def test_without_a_keyring_the_daemon_refuses_and_says_how_to_fix_it(rig: Rig) -> None:
    rig.env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={rig.root}/no-bus"
    proc = rig.kubetray("run", "--headless", timeout=60)
    assert proc.returncode == 2
    assert b"gnome-keyring" in proc.stderr and b"plaintext" in proc.stderr
    assert not rig.socket.exists()
    assert not (rig.root / "state" / "profiles.json").exists()  # nothing written anywhere else


def test_with_a_locked_keyring_the_daemon_refuses_and_says_to_unlock_it(
    rig: Rig, desktop_session: IsolatedSession
) -> None:
    desktop_session.lock_keyring()
    try:
        proc = rig.kubetray("run", "--headless", timeout=60)
    finally:
        desktop_session.unlock_keyring()
    assert proc.returncode == 2
    assert b"nlock" in proc.stderr
    assert not rig.socket.exists()


_ATTACH = r"""
import ctypes, os, sys, time
harden = sys.argv[1] == "harden"
r, w = os.pipe()
child = os.fork()
if child == 0:
    if harden:
        from broker.process.hardening import harden_process
        harden_process()
    os.write(w, b"x")
    time.sleep(30)
    os._exit(0)
os.read(r, 1)
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_DETACH = 16, 17
ok = libc.ptrace(PTRACE_ATTACH, child, None, None) == 0
err = ctypes.get_errno()
if ok:
    os.waitpid(child, 0)
    libc.ptrace(PTRACE_DETACH, child, None, None)
os.kill(child, 9)
os.waitpid(child, 0)
print("attached" if ok else f"refused errno {err}")
"""


def test_other_processes_of_the_same_user_cannot_ptrace_the_daemon(readable_tree: Path) -> None:
    """As an unprivileged user (root could attach anyway): a hardened process refuses, a plain one not."""
    if os.getuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    results = {}
    for mode in ("plain", "harden"):  # hardening is standard library only: the readable copy is enough
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", other_user_python(), "-I", "-c",
             f"import sys; sys.path[:0] = {[str(readable_tree)]!r}\n" + _ATTACH, mode],
            capture_output=True, timeout=60, check=False, cwd="/",
        )
        assert proc.returncode == 0, proc.stderr.decode()
        results[mode] = proc.stdout.decode().strip()
    print(f"\nptrace as the same user: plain process {results['plain']}, hardened {results['harden']}")
    assert results["plain"] == "attached"
    assert results["harden"].startswith("refused")


def test_core_dumps_are_off_in_the_daemon(rig: Rig) -> None:
    daemon = start(rig)
    try:
        limits = Path(f"/proc/{daemon.pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
    finally:
        stop(daemon)


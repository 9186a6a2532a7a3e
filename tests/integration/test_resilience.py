"""What the daemon survives: idle and byte-a-second clients, fuzzed requests, a missing or locked keyring,
and other processes trying to read its memory. Figures are printed (run pytest with -s to see them)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.core.errors import KubetrayError
from broker.execplugin.kubelogin_args import parse_exec
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


_ODD = ["", "-", "--", "=", "[", "https://[::1", "http://localhost:99999", "https://h/" + "a" * 300, "\x00",
        "--login", "--authority-host", "--redirect-url", "--timeout", "5x", "-1", "1e309", "é", "\u202e"]


def _mutations(rig: Rig, count: int, seed: int) -> Iterator[bytes]:
    """Fast mutations of well-formed requests (the rig's own exec among them), from a fixed seed so a
    failure replays: two in three change the JSON (argv elements replaced, dropped, duplicated, odd
    flag values; fields of the wrong type), one in three flips, inserts, deletes or truncates bytes.

    A mutant the daemon would carry out as the user's own request (a valid exec may open a sign-in, a
    refresh without a key refreshes every profile) is skipped: that is their right, not a fault, as
    with login/logout/shutdown above."""
    rnd = random.Random(seed)
    corpus: list[dict[str, Any]] = [
        {"v": 1, "op": "ping"}, {"v": 1, "op": "status"}, {"v": 1, "op": "refresh", "key": "no-such-key"},
        {"v": 1, "op": "exec", "argv": rig.get_token_args(), "exec_info": None, "env": {}, "cwd": "/"},
        {"v": 1, "op": "exec", "argv": rig.get_token_args("devicecode", "--timeout", "3s"), "stdin_tty": False},
        {"v": 1, "op": "exec", "argv": ["get-token", "--oidc-issuer-url", "https://127.0.0.1:1/x",
                                        "--oidc-client-id", "c"], "exec_info": '{"apiVersion":"x"}'},
    ]
    made = 0
    while made < count:
        request = json.loads(json.dumps(rnd.choice(corpus)))
        if rnd.random() < 2 / 3:
            argv = request.get("argv")
            for _ in range(rnd.randint(1, 3)):
                choice = rnd.randrange(6)
                if isinstance(argv, list) and argv and choice < 4:
                    where = rnd.randrange(len(argv))
                    if choice == 0:
                        argv[where] = rnd.choice(_ODD)
                    elif choice == 1:
                        del argv[where]
                    elif choice == 2:
                        argv.insert(where, rnd.choice(_ODD))
                    else:
                        argv[where] = argv[where][: rnd.randrange(len(argv[where]) + 1)] + rnd.choice(_ODD)
                elif choice == 4:
                    name = rnd.choice(["argv", "exec_info", "env", "cwd", "key", "stdin_tty", "op", "v"])
                    request[name] = rnd.choice([None, 0, 1.5, True, "", "x", [], {}, [1], {"a": 1}, ["get-token"] * 3])
                elif request:
                    request.pop(rnd.choice(list(request)))
            if _parses(request):
                continue
            data = json.dumps(request).encode() + b"\n"
        else:
            data = bytearray(json.dumps(request).encode() + b"\n")
            for _ in range(rnd.randint(1, 4)):
                where = rnd.randrange(len(data) or 1)
                action = rnd.randrange(4)
                if action == 0 and data:
                    data[where] = rnd.randrange(256)
                elif action == 1:
                    data[where:where] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
                elif action == 2:
                    del data[where:where + rnd.randint(1, 8)]
                else:
                    data = data[:where]
            try:
                if _parses(json.loads(data)):
                    continue
            except (ValueError, TypeError, AttributeError):
                pass
            data = bytes(data)
        made += 1
        yield bytes(data)


def _parses(request: Any) -> bool:
    """Would the daemon carry this out as the user's own request: a well-formed exec, or a refresh that
    selects profiles (by valid argv, by a key prefix, or with no key: every profile, a real refresh)?"""
    if not isinstance(request, dict) or request.get("op") not in ("exec", "refresh"):
        return False
    argv = request.get("argv")
    if request.get("op") == "refresh" and not isinstance(argv, list):
        key = request.get("key")
        return not (isinstance(key, str) and key and not set(key) <= set("0123456789abcdef"))
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return False
    try:
        parse_exec(argv, {}, "/")
    except KubetrayError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_fuzzed_requests_never_take_the_daemon_down_or_leak(rig: Rig) -> None:
    """10,000 hostile messages: shape-aware ones from hypothesis and byte mutations of real requests.

    No reply is an internal error, and no reply but a credential carries token material: status,
    refreshed, pong and error replies are checked against every token the authority issued."""
    assert rig.kubectl("get", "pods").returncode == 0  # there is a token to leak, if anything leaked
    pid = rig.daemon_pid()
    assert pid is not None
    rss_before = _rss_kib(pid)
    counts = {"sent": 0, "error_replies": 0, "credentials": 0}
    kept: list[bytes] = []  # every reply line that is not a credential, for the leak check at the end

    def send(data: bytes) -> None:
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
            if reply["type"] == "credential":
                counts["credentials"] += 1  # the same user's own token (a hypothesis example that parses)
                continue
            kept.append(line)
            if reply["type"] == "error":
                counts["error_replies"] += 1
                assert reply["code"] != "internal", reply
                assert "eyJ" not in reply["message"]

    # Generating examples is most of hypothesis's cost here (~5 ms each on a loaded 2-core machine);
    # the byte mutations are nearly free and reach the argument parsers with nearly-valid requests.
    @settings(max_examples=2_500, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_requests)
    def fuzz(data: bytes) -> None:
        send(data)

    started = time.perf_counter()
    fuzz()
    shaped = time.perf_counter() - started
    for data in _mutations(rig, 10_000 - counts["sent"], seed=11):
        send(data)
    print(f"\nhypothesis: {shaped:.1f} s; mutations: {time.perf_counter() - started - shaped:.1f} s")
    assert ask(rig.socket, PING)[0]["pid"] == pid  # the same daemon, still serving
    assert rig.kubectl("get", "pods").returncode == 0
    growth = _rss_kib(pid) - rss_before
    print(f"\nfuzzing: {counts['sent']} messages, {counts['error_replies']} error replies, "
          f"{counts['credentials']} credentials, daemon RSS grew {growth} KiB")
    assert counts["sent"] >= 10_000
    assert growth < 50 * 1024  # bounded: no per-message leak
    secrets = rig.authority.issued_secrets()
    assert secrets
    needles = [s.encode() for s in secrets] + [s.rsplit(".", 1)[-1].encode() for s in secrets if s.count(".") == 2]
    leaked = [line[:200] for line in kept if any(n in line for n in needles)]
    assert not leaked, leaked[:3]
    kinds = {json.loads(line)["type"] for line in kept}
    assert {"pong", "status", "error"} <= kinds, kinds  # the replies checked include every kind


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


"""Choosing the transport per platform (and $KUBETRAY_TRANSPORT), the Unix transport for real, and the
threaded session a named pipe runs for each connection, driven here through a fake connection into the
real Handler on an asyncio loop in another thread, as PipeServer drives it on Windows."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any, cast

import pytest

from broker.ipc import instance, transport
from broker.ipc.handler import Handler
from broker.ipc.server import Limits
from broker.ipc.transport import LoopServer, TransportUnavailable, on_loop, serve_connection

LINUX = "linux"


# -- selection -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("platform", "name"), [("win32", "pipe"), ("linux", "unix"), ("darwin", "unix"), ("freebsd14", "unix")]
)
def test_default_transport_per_platform(platform: str, name: str) -> None:
    assert transport.default_name(platform) == name


def test_unix_is_chosen_on_linux_and_macos() -> None:
    for platform in ("linux", "darwin"):
        chosen = transport.select(platform=platform, environ={})
        assert isinstance(chosen, transport.UnixTransport) and chosen.name == "unix"


def test_the_environment_overrides_the_platform_and_an_argument_overrides_both() -> None:
    env = {transport.ENV_TRANSPORT: "pipe"}
    with pytest.raises(TransportUnavailable, match="pipe transport cannot run here: named pipes exist only on Windows"):
        transport.select(platform=LINUX, environ=env)
    assert transport.select("unix", platform=LINUX, environ=env).name == "unix"


def test_an_unknown_transport_names_the_choices() -> None:
    with pytest.raises(TransportUnavailable, match="unknown transport 'tcp'.*KUBETRAY_TRANSPORT.*unix, pipe"):
        transport.select(platform=LINUX, environ={transport.ENV_TRANSPORT: "tcp"})


def test_no_silent_fallback_to_the_other_transport() -> None:
    with pytest.raises(TransportUnavailable, match="unix transport cannot run here"):
        transport.select("unix", platform="win32", environ={})


@pytest.mark.skipif(sys.platform == "win32", reason="tests the pipe's refusal off Windows")
def test_pipe_on_a_platform_that_claims_windows_but_cannot_load_win32() -> None:
    with pytest.raises(TransportUnavailable, match="pipe transport cannot run here"):
        transport.select(platform="win32", environ={})


def ping_handler() -> Handler:
    # ping never touches the token service, so the handler needs none for these tests.
    return Handler(service=cast(Any, None), version="9.9")


@pytest.mark.skipif(not sys.platform.startswith(LINUX), reason="the Unix transport, verified on Linux")
def test_unix_transport_serves_the_handler(tmp_path: Any) -> None:
    chosen = transport.select(environ={})
    runtime = os.path.join(tmp_path, "rt")
    chosen.prepare(runtime)
    assert stat.S_IMODE(os.stat(runtime).st_mode) == 0o700
    endpoint = chosen.endpoint(os.path.join(runtime, "kubetray.sock"))
    server = chosen.bind(endpoint, ping_handler(), Limits())
    assert stat.S_IMODE(os.stat(endpoint).st_mode) == 0o600  # bound at once, before start()
    server.start()
    try:
        assert (instance.probe(endpoint) or {}).get("version") == "9.9"
    finally:
        server.stop()
    assert not os.path.exists(endpoint)  # its own socket is removed at stop


@pytest.mark.skipif(not sys.platform.startswith(LINUX), reason="the Unix transport, verified on Linux")
def test_unix_transport_leaves_a_newer_daemons_socket_alone(tmp_path: Any) -> None:
    chosen = transport.select(environ={})
    runtime = os.path.join(tmp_path, "rt")
    chosen.prepare(runtime)
    endpoint = chosen.endpoint(os.path.join(runtime, "kubetray.sock"))
    old = chosen.bind(endpoint, ping_handler(), Limits())
    old.start()
    os.unlink(endpoint)
    newer = chosen.bind(endpoint, ping_handler(), Limits())  # another daemon took the path over
    newer.start()
    try:
        old.stop()
        assert os.path.exists(endpoint)
    finally:
        newer.stop()


# -- the threaded session ----------------------------------------------------------------------------------
class FakeConn:
    """Reads come from a script (bytes, or an exception to raise); writes are recorded."""

    def __init__(self, *reads: bytes | BaseException, fail_writes: bool = False) -> None:
        self.reads = list(reads)
        self.writes: list[bytes] = []
        self.timeouts: list[float] = []
        self.fail_writes = fail_writes

    def read(self, size: int, timeout: float) -> bytes:
        self.timeouts.append(timeout)
        item = self.reads.pop(0) if self.reads else b""
        if isinstance(item, BaseException):
            raise item
        return item[:size]

    def write(self, data: bytes) -> None:
        if self.fail_writes:
            raise BrokenPipeError("client gone")
        self.writes.append(data)

    def replies(self) -> list[dict[str, Any]]:
        return [json.loads(line) for chunk in self.writes for line in chunk.splitlines()]


class Loop:
    """A real asyncio loop in its own thread, as LoopServer runs it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop() -> Any:
    running = Loop()
    yield running.loop
    running.close()


def never(line: bytes, send: Callable[[bytes], None]) -> Any:
    pytest.fail("dispatched a request that should have been refused")


def test_a_request_runs_the_real_handler_on_the_loop(loop: asyncio.AbstractEventLoop) -> None:
    conn = FakeConn(b'{"v":1,', b'"op":"ping"}\n')  # split across reads, as a pipe may deliver it
    serve_connection(conn, on_loop(loop, ping_handler().handle), Limits(), peer_ok=True)
    [pong] = conn.replies()
    assert pong == {"v": 1, "type": "pong", "pid": os.getpid(), "version": "9.9"}


def test_progress_from_other_threads_arrives_in_order_before_the_final_line(loop: asyncio.AbstractEventLoop) -> None:
    seen_thread: list[str] = []

    async def handle(line: bytes, send: Callable[[bytes], None]) -> None:
        seen_thread.append(threading.current_thread().name)
        running = asyncio.get_running_loop()
        for i in range(3):  # as Handler._await relays MSAL's progress from a worker thread
            await running.run_in_executor(None, running.call_soon_threadsafe, send, b'{"n":%d}\n' % i)
            await asyncio.sleep(0.01)
        send(b'{"n":"final"}\n')

    conn = FakeConn(b'{"op":"x"}\n')
    serve_connection(conn, on_loop(loop, handle), Limits(), peer_ok=True)
    assert [r["n"] for r in conn.replies()] == [0, 1, 2, "final"]
    assert seen_thread != [threading.current_thread().name]  # it ran on the loop, not the pipe thread


def test_another_users_client_is_refused_before_a_read() -> None:
    conn = FakeConn(b'{"v":1,"op":"ping"}\n')
    serve_connection(conn, never, Limits(), peer_ok=False)
    assert [r["code"] for r in conn.replies()] == ["forbidden"]
    assert conn.timeouts == []


def test_a_slow_client_gets_a_timeout_within_the_limit() -> None:
    conn = FakeConn(b'{"v":1', TimeoutError())
    serve_connection(conn, never, Limits(request_timeout=2.0), peer_ok=True)
    assert [r["code"] for r in conn.replies()] == ["timeout"]
    assert conn.timeouts and all(0 < t <= 2.0 for t in conn.timeouts)


@pytest.mark.parametrize(
    "reads", [(b"x" * 100,), (b"x" * 60, b"x" * 60 + b"\n"), (b"x" * 101 + b"\n",)], ids=["one", "two", "newline"]
)
def test_an_oversized_request_is_refused(reads: tuple[bytes, ...]) -> None:
    conn = FakeConn(*reads, b"never read")
    serve_connection(conn, never, Limits(max_request_bytes=100), peer_ok=True)
    [error] = conn.replies()
    assert error["code"] == "bad_request" and "larger than 100 bytes" in error["message"]


def test_a_request_of_exactly_the_limit_is_served(loop: asyncio.AbstractEventLoop) -> None:
    line = b'{"v":1,"op":"ping","pad":"' + b"x" * 50
    line += b"y" * (99 - len(line) - 3) + b'"}\n'
    assert len(line) == 99
    conn = FakeConn(line)
    serve_connection(conn, on_loop(loop, ping_handler().handle), Limits(max_request_bytes=99), peer_ok=True)
    assert [r["type"] for r in conn.replies()] == ["pong"]


def test_an_unterminated_request_is_refused_and_an_empty_one_ignored() -> None:
    conn = FakeConn(b'{"v":1}')
    serve_connection(conn, never, Limits(), peer_ok=True)
    assert "not terminated" in conn.replies()[0]["message"]
    silent = FakeConn()
    serve_connection(silent, never, Limits(), peer_ok=True)
    assert silent.writes == []


def test_a_client_that_leaves_does_not_stop_the_request(loop: asyncio.AbstractEventLoop) -> None:
    finished = threading.Event()

    async def handle(line: bytes, send: Callable[[bytes], None]) -> None:
        send(b'{"n":1}\n')
        await asyncio.sleep(0.05)
        send(b'{"n":2}\n')
        finished.set()  # other shims may be waiting on the same sign-in

    serve_connection(FakeConn(b"{}\n", fail_writes=True), on_loop(loop, handle), Limits(), peer_ok=True)
    assert finished.wait(5)


# -- the loop a threaded transport feeds -----------------------------------------------------------------
class FakeServer:
    def __init__(self, loop: asyncio.AbstractEventLoop, events: list[str]) -> None:
        self.loop, self.events = loop, events

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")


def test_loop_server_runs_the_loop_for_its_transport() -> None:
    events: list[str] = []
    made: list[FakeServer] = []
    server = LoopServer(lambda lp: made.append(FakeServer(lp, events)) or made[-1])
    server.start()
    dispatch = on_loop(made[0].loop, ping_handler().handle)
    conn = FakeConn(b'{"v":1,"op":"ping"}\n')
    serve_connection(conn, dispatch, Limits(), peer_ok=True)
    server.stop()
    assert events == ["start", "stop"] and conn.replies()[0]["type"] == "pong"
    assert made[0].loop.is_closed()


def test_loop_server_closes_its_loop_when_the_transport_cannot_bind() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def refuse(lp: asyncio.AbstractEventLoop) -> FakeServer:
        loops.append(lp)
        raise OSError("another process already holds the pipe name")

    with pytest.raises(OSError, match="already holds"):
        LoopServer(refuse)
    assert loops[0].is_closed()

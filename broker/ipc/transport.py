"""Which local transport serves the daemon here, chosen in one function, and what they share.

Two transports, one per OS family: ``unix`` (a Unix domain socket, broker/ipc/unix.py, served by the
asyncio IpcServer) and ``pipe`` (a Windows named pipe, broker/ipc/windows_pipe.py, served by threads).
``select()`` picks one for the platform, or $KUBETRAY_TRANSPORT, and never falls back to the other: a
transport that cannot run here is an error naming why, not a quieter, less private endpoint.

The rest is the session a threaded transport runs for each connection (read one request line within
the limits, hand it to a ``Dispatch``, write the reply lines back in order) and ``LoopServer``, the
asyncio loop the Handler runs on while such a transport's threads feed it. All of it is platform-neutral
and unit-tested on Linux with a fake connection.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from broker.core.errors import BadRequest, Forbidden, KubetrayError, Timeout
from broker.ipc import framing

if TYPE_CHECKING:  # asyncio and the server load only when serving starts (after the first answers)
    import asyncio

    from broker.ipc.handler import Handler
    from broker.ipc.server import IpcServer, Limits

log = logging.getLogger(__name__)

ENV_TRANSPORT = "KUBETRAY_TRANSPORT"
TRANSPORTS = ("unix", "pipe")
READ_CHUNK = 64 * 1024


class TransportUnavailable(KubetrayError):
    """No transport can serve here; the message lists why (the daemon refuses to start with it)."""


class Server(Protocol):
    """What the daemon starts and stops: IpcServer, or LoopServer around a threaded transport."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Transport(Protocol):
    """One OS's local endpoint: where it is, how to make its directory safe, how to serve it."""

    name: str

    def endpoint(self, socket_path: str) -> str:
        """Where to listen, given wire.socket_path() (its KUBETRAY_SOCKET override included)."""
        ...

    def prepare(self, runtime_dir: str) -> None:
        """Create and check the per-user runtime directory (locks, start log; the socket on Unix)."""
        ...

    def listen(self, endpoint: str) -> socket.socket | None:
        """Claim the endpoint now, before anything else loads: the listening socket, which the first
        answers (broker/ipc/early.py) and then ``bind`` use; None where the endpoint is not a socket."""
        ...

    def bind(self, endpoint: str, handler: Handler, limits: Limits, *, listener: socket.socket | None = None,
             adopted: Sequence[socket.socket] = ()) -> Server:
        """Claim the endpoint now (or take ``listener``) and serve it on start(), beginning with the
        connections accepted already (``adopted``)."""
        ...


def default_name(platform: str | None = None) -> str:
    """``pipe`` on Windows, ``unix`` everywhere else (Linux, macOS, the BSDs)."""
    return "pipe" if (platform or sys.platform) == "win32" else "unix"


def select(
    name: str | None = None, *, platform: str | None = None, environ: Mapping[str, str] | None = None
) -> Transport:
    """The transport for this platform (or ``name``, or $KUBETRAY_TRANSPORT); TransportUnavailable if
    it cannot run here, with the reason."""
    env = os.environ if environ is None else environ
    plat = platform or sys.platform
    chosen = name or env.get(ENV_TRANSPORT) or default_name(plat)
    if chosen not in TRANSPORTS:
        raise TransportUnavailable(
            f"unknown transport {chosen!r} (from ${ENV_TRANSPORT}?); choose one of {', '.join(TRANSPORTS)}"
        )
    try:
        return UnixTransport(plat) if chosen == "unix" else PipeTransport(plat)
    except (ImportError, OSError) as exc:
        raise TransportUnavailable(f"the {chosen} transport cannot run here: {exc}") from None


class UnixTransport:
    """A 0600 socket in a 0700 directory, served by the asyncio IpcServer with the peer-uid check."""

    name = "unix"

    def __init__(self, platform: str) -> None:
        # CPython has no AF_UNIX on Windows (the OS has it; the socket module does not expose it).
        if platform == "win32":
            raise OSError("Python has no Unix domain sockets on Windows; use the pipe transport")

    def endpoint(self, socket_path: str) -> str:
        return socket_path

    def prepare(self, runtime_dir: str) -> None:
        from broker.ipc import unix

        unix.secure_runtime_dir(runtime_dir)

    def listen(self, endpoint: str) -> socket.socket | None:
        from broker.ipc import unix

        return unix.listen(endpoint)

    def bind(self, endpoint: str, handler: Handler, limits: Limits, *, listener: socket.socket | None = None,
             adopted: Sequence[socket.socket] = ()) -> Server:
        from broker.ipc import origin, unix
        from broker.ipc.server import IpcServer

        sock = listener if listener is not None else unix.listen(endpoint)
        return SocketServer(
            IpcServer(sock, handler, unix.peer_is_owner, limits, identify=origin.identify, adopted=adopted), endpoint
        )


class SocketServer:
    """The IpcServer plus its socket file, removed at stop only while it is still ours (a newer daemon
    may have replaced it: the inode tells)."""

    def __init__(self, server: IpcServer, path: str) -> None:
        self._server, self._path = server, path
        try:
            self._ino = os.stat(path).st_ino
        except OSError:  # a listener bound elsewhere (tests): nothing of ours to remove at stop
            self._ino = -1

    @property
    def active_connections(self) -> int:
        return self._server.active_connections

    @property
    def dropped_connections(self) -> int:
        """Idle connections dropped to stay under the pending cap, since start."""
        return self._server.dropped_connections

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        try:
            if os.stat(self._path).st_ino == self._ino:
                os.unlink(self._path)
        except OSError:
            pass


class PipeTransport:
    """The per-user named pipe with its DACL, served by windows_pipe.PipeServer's threads."""

    name = "pipe"

    def __init__(self, platform: str) -> None:
        if platform != "win32":
            raise OSError("named pipes exist only on Windows")
        from shim import winpipe

        self._sid = winpipe.api().process_sid()  # raises OSError where Win32 cannot load

    def endpoint(self, socket_path: str) -> str:
        from shim import winpipe

        return winpipe.resolve_pipe_name(socket_path, self._sid)

    def prepare(self, runtime_dir: str) -> None:
        # Under %LOCALAPPDATA%, whose inherited ACL is already the user's; the pipe has its own DACL.
        os.makedirs(runtime_dir, exist_ok=True)

    def listen(self, endpoint: str) -> socket.socket | None:
        return None  # the pipe's first instance is created by PipeServer, with its DACL

    def bind(self, endpoint: str, handler: Handler, limits: Limits, *, listener: socket.socket | None = None,
             adopted: Sequence[socket.socket] = ()) -> Server:
        from broker.ipc import windows_pipe

        return LoopServer(
            lambda loop: windows_pipe.PipeServer(endpoint, self._sid, on_loop(loop, handler.handle), limits)
        )


class LoopServer:
    """An asyncio loop in the ``kubetray-ipc`` thread for the Handler, fed by a threaded transport."""

    def __init__(self, make: Callable[[asyncio.AbstractEventLoop], Server]) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        try:
            self._inner = make(self._loop)
        except BaseException:
            self._loop.close()
            raise
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubetray-ipc", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._inner.start()

    def stop(self) -> None:
        self._inner.stop()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()


Send = Callable[[bytes], None]
Dispatch = Callable[[bytes, Send], "Future[None]"]


class Conn(Protocol):
    """One connected client, as the session needs it (a pipe instance on Windows, a fake in tests)."""

    def read(self, size: int, timeout: float) -> bytes:
        """Up to ``size`` bytes; b"" at end of stream; TimeoutError after ``timeout`` seconds."""
        ...

    def write(self, data: bytes) -> None: ...


class _Refused(Exception):
    def __init__(self, error: KubetrayError) -> None:
        super().__init__(error.message)
        self.reply = framing.error(error)


def read_request(conn: Conn, limits: Limits) -> bytes | None:
    """The request line (with its newline), or None if the client left without sending anything."""
    deadline = time.monotonic() + limits.request_timeout
    buf = b""
    while b"\n" not in buf:
        if len(buf) > limits.max_request_bytes:
            break
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            chunk = conn.read(READ_CHUNK, remaining)
        except TimeoutError:
            raise _Refused(Timeout("no complete request within the time allowed")) from None
        if not chunk:
            if buf:
                raise _Refused(BadRequest("the request line was not terminated by a newline"))
            return None
        buf += chunk
    line = buf[: buf.find(b"\n") + 1] if b"\n" in buf else buf
    if not line.endswith(b"\n") or len(line) > limits.max_request_bytes:
        raise _Refused(BadRequest(f"request larger than {limits.max_request_bytes} bytes"))
    return line


def serve_connection(conn: Conn, dispatch: Dispatch, limits: Limits, *, peer_ok: bool) -> None:
    """Check, read, dispatch, and write every reply line in order until the dispatch is done."""
    try:
        if not peer_ok:
            log.warning("refused a connection from another user")
            conn.write(framing.error(Forbidden("this kubetray daemon serves only the user who runs it")))
            return
        try:
            line = read_request(conn, limits)
        except _Refused as refused:
            conn.write(refused.reply)
            return
        if line is None:
            return
        # The handler's send may be called from the loop thread at any time (progress lines): it only
        # queues, and this thread does the blocking writes, so a slow client never stalls the loop.
        replies: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        done = dispatch(line, replies.put)
        done.add_done_callback(lambda _: replies.put(None))
        while (reply := replies.get()) is not None:
            conn.write(reply)
        if not done.cancelled() and done.exception() is not None:  # Handler.handle answers its own errors
            log.error("a request failed outside the handler", exc_info=done.exception())
    except OSError:
        pass  # the client went away; the request, if any, finishes for whoever else is waiting


def on_loop(
    loop: asyncio.AbstractEventLoop, handle: Callable[[bytes, Send], Coroutine[Any, Any, None]]
) -> Dispatch:
    """A Dispatch that runs ``handle`` (Handler.handle) on ``loop``, from any thread."""

    import asyncio

    def dispatch(line: bytes, send: Send) -> Future[None]:
        return asyncio.run_coroutine_threadsafe(handle(line, send), loop)

    return dispatch

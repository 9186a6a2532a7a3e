"""The local server: an asyncio loop in its own thread, serving a listening socket.

It checks who is calling before reading a byte, bounds the request size, the time to send it and the
number of connections, and answers every request with structured replies from the Handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broker.core.errors import BadRequest, Busy, Forbidden, Timeout
from broker.core.remote import LOCAL, Caller
from broker.ipc import framing
from broker.ipc.handler import Handler
from shim import wire

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """Connections still sending their request are capped at ``max_pending``: past it the oldest is
    dropped, so idle or byte-a-second clients cannot lock out a real one. ``max_connections`` caps
    everything, including shims legitimately waiting for a sign-in."""

    max_pending: int = 128
    max_connections: int = 2048
    request_timeout: float = 5.0  # to send the request line; the reply may take as long as a sign-in
    max_request_bytes: int = wire.MAX_REQUEST_BYTES


class IpcServer:
    """Serves ``listener`` with ``handler`` until ``stop()``; ``peer_ok`` vets each connection and
    ``identify`` tells a forwarded (ssh) caller from a local one."""

    def __init__(
        self,
        listener: socket.socket,
        handler: Handler,
        peer_ok: Callable[[socket.socket], bool],
        limits: Limits = Limits(),
        identify: Callable[[socket.socket], Caller] | None = None,
        adopted: Sequence[socket.socket] = (),
    ) -> None:
        self._listener = listener
        self._adopted = list(adopted)  # accepted before this server ran (broker/ipc/early.py), unread
        self._identify = identify
        self._handler = handler
        self._peer_ok = peer_ok
        self._limits = limits
        self._active = 0
        self._pending: OrderedDict[int, asyncio.StreamWriter] = OrderedDict()
        self._dropped = 0
        self._last_cap_log = 0.0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kubetray-ipc", daemon=True)

    @property
    def active_connections(self) -> int:
        return self._active

    @property
    def dropped_connections(self) -> int:
        """Idle connections dropped to stay under the pending cap, since start."""
        return self._dropped

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._stopped is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._end_clients()
            self._loop.close()

    def _end_clients(self) -> None:
        """Cancel the connections still open, so none is left to a closed loop (which warns when it is
        collected; in a daemon that is exiting it does not matter, in a test process it does)."""
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        # Closing a transport (the clients' own close, an aborted idle connection) releases its socket in a
        # callback the loop runs next: let those run before the loop closes.
        self._loop.run_until_complete(asyncio.sleep(0))

    async def _serve(self) -> None:
        if sys.platform == "win32":  # served through transport.PipeTransport there
            raise RuntimeError("the socket server needs Unix domain sockets")
        self._stopped = asyncio.Event()
        server = await asyncio.start_unix_server(
            self._client, sock=self._listener, limit=self._limits.max_request_bytes
        )
        adopted, self._adopted = self._adopted, []
        # Kept referenced until the server ends (_end_clients cancels whatever is still open then).
        tasks = [asyncio.ensure_future(self._adopt(conn)) for conn in adopted]
        self._ready.set()
        async with server:
            await self._stopped.wait()
            server.close()
        del tasks

    async def _adopt(self, conn: socket.socket) -> None:
        """Serve a connection accepted earlier exactly as if this server had accepted it."""
        if sys.platform == "win32":  # the pipe transport has no early answers to hand over
            raise RuntimeError("the socket server needs Unix domain sockets")
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=self._limits.max_request_bytes)
        except OSError:
            conn.close()
            return
        await self._client(reader, writer)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(data: bytes) -> None:
            if not writer.is_closing():
                writer.write(data)

        try:
            if self._active >= self._limits.max_connections:
                self._log_cap()
                send(framing.error(Busy("the kubetray daemon is busy; try again")))
                await _discard_request(reader)
                return
            self._active += 1
            try:
                sock = writer.get_extra_info("socket")
                if sock is None or not self._peer_ok(sock):
                    log.warning("refused a connection from another user")
                    send(framing.error(Forbidden("this kubetray daemon serves only the user who runs it")))
                    await _discard_request(reader)
                    return
                caller = self._identify(sock) if self._identify is not None else LOCAL
                line = await self._read_pending(reader, writer, send)
                if line is not None:
                    await self._handler.handle(line, send, caller)
                    await writer.drain()
            finally:
                self._active -= 1
        except (ConnectionError, OSError):
            pass  # the client went away; nothing to tell anyone
        finally:
            writer.close()

    async def _read_pending(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, send: Callable[[bytes], None]
    ) -> bytes | None:
        """Read the request while counted as pending; drop the oldest pending connection past the cap."""
        if len(self._pending) >= self._limits.max_pending:
            _, oldest = self._pending.popitem(last=False)
            oldest.transport.abort()
            self._dropped += 1
            self._log_cap()
        self._pending[id(writer)] = writer
        try:
            return await self._read_request(reader, send)
        finally:
            self._pending.pop(id(writer), None)

    async def _read_request(self, reader: asyncio.StreamReader, send: Callable[[bytes], None]) -> bytes | None:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), self._limits.request_timeout)
        except asyncio.TimeoutError:
            send(framing.error(Timeout("no complete request within the time allowed")))
        except asyncio.LimitOverrunError:
            send(framing.error(BadRequest(f"request larger than {self._limits.max_request_bytes} bytes")))
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                send(framing.error(BadRequest("the request line was not terminated by a newline")))
        else:
            return line
        return None

    def _log_cap(self) -> None:
        now = time.monotonic()
        if now - self._last_cap_log > 10:
            self._last_cap_log = now
            log.warning(
                "connection cap reached (%d sending a request, %d in all): dropping the oldest idle ones "
                "(%d so far)", self._limits.max_pending, self._limits.max_connections, self._dropped,
            )


async def _discard_request(reader: asyncio.StreamReader) -> None:
    """Read (and drop) what the client sent before closing, so the close is not a reset that
    destroys the error reply before the client reads it."""
    with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError):
        await asyncio.wait_for(reader.read(wire.MAX_REQUEST_BYTES), 0.5)

"""The emulator's HTTP layer: a threading loopback server and its keep-alive request handler.

The handler passes every request, whatever its method, to the :class:`Emulator` that owns the
server, and writes the answer back, cut short or reset when a fault says so. Failures of single
requests (a client that hung up mid-answer) go to the ``croct_pandas.emulator`` logger.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from croct_pandas.emulator.faults import Decision

if TYPE_CHECKING:
    from croct_pandas.emulator.server import Emulator

logger = logging.getLogger("croct_pandas.emulator")

__all__: list[str] = []


class _Server(ThreadingHTTPServer):
    """Loopback server whose per-request failures (a client that hung up mid-answer, which
    fault tests do on purpose) go to the log, not to stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in separate writes; Nagle would hold the second one back
    disable_nagle_algorithm = True
    # idle keep-alive connections are dropped after this many seconds
    timeout = 60
    server_version = "croct-emulator"
    sys_version = ""

    @property
    def emulator(self) -> Emulator:
        return self.server.emulator  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        with self.emulator._lock:
            self.emulator._sockets.add(self.connection)

    def finish(self) -> None:
        with self.emulator._lock:
            self.emulator._sockets.discard(self.connection)
        # the peer (or an injected reset) may already have closed the socket
        with contextlib.suppress(OSError):
            super().finish()

    def do_GET(self) -> None:
        self.emulator._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the emulator keeps its own log, without keys

    def answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, decision: Decision
    ) -> None:
        sent = body
        if decision.truncate:
            # a complete response whose JSON stops short: Content-Length matches the cut body
            sent = body[: max(1, min(len(body) - 1, int(len(body) * decision.cut)))]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(sent)))
        self.end_headers()
        try:
            if decision.reset:
                self.wfile.write(sent[: max(1, min(len(sent) - 1, int(len(sent) * decision.cut)))])
                self._reset()
            else:
                self.wfile.write(sent)
        except OSError:
            self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

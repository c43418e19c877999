"""The normalising process: page bodies in on stdin, normalised tables out on stdout.

Started by :mod:`croct_pandas.normalize_pool` as a plain child process running :func:`main`, so
no start method has to import the user's ``__main__`` again. Each message is an 8-byte
little-endian length and a pickle: a list of response bodies in, and ``("ok", NormalizedPage)``
or ``("error", text)`` out, one answer per request, in order. The worker never sees the API key
(bodies are responses, not requests), ignores Ctrl-C (the interrupt belongs to the export that
started it) and ends when its stdin closes.
"""

from __future__ import annotations

import pickle
import signal
import struct
import sys
from collections.abc import Sequence
from typing import IO, Any

import orjson

from croct_pandas.gc_pause import paused_gc
from croct_pandas.normalize import NormalizedPage, normalize_items

__all__ = ["normalize_bodies", "read_message", "write_message"]

_HEADER = struct.Struct("<Q")


def normalize_bodies(bodies: Sequence[bytes]) -> NormalizedPage:
    """Normalise the items of whole ``GET /export/events`` response bodies, in order.

    Examples
    --------
    >>> body = (b'{"items": [{"id": "e1", "timestamp": 1767225600000, "sessionId": "s",'
    ...         b' "userId": "u", "payload": {"@type": "tabOpened", "tabId": "t"}}]}')
    >>> normalize_bodies([body, body]).tables["tabOpened"].num_rows
    2
    """
    with paused_gc():
        items: list[Any] = []
        for body in bodies:
            items.extend(orjson.loads(body)["items"])
        return normalize_items(items)


def write_message(stream: IO[bytes], obj: Any) -> None:
    """Send one length-prefixed pickle.

    Examples
    --------
    >>> import io
    >>> stream = io.BytesIO()
    >>> write_message(stream, ["a"])
    >>> _ = stream.seek(0)
    >>> read_message(stream)
    ['a']
    """
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    """Receive one length-prefixed pickle; :class:`EOFError` when the stream ends first (see
    :func:`write_message` for an example)."""
    header = _read_exactly(stream, _HEADER.size)
    (size,) = _HEADER.unpack(header)
    return pickle.loads(_read_exactly(stream, size))


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            raise EOFError("the stream ended inside a message")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def main() -> None:
    """Serve batches until stdin closes (run in the worker process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but replies may reach the pipe
    while True:
        try:
            bodies = read_message(requests)
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", normalize_bodies(bodies))
        except Exception as exc:  # the caller normalises the batch itself and reports it
            reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
        write_message(replies, reply)

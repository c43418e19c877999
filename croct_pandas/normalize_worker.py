"""The normalising process: page bodies in on stdin, normalised tables out on stdout.

Started by :mod:`croct_pandas.normalize_pool` as a plain child process running :func:`main`, so
no start method has to import the user's ``__main__`` again. Each message is a pickle
(protocol 5) with its large buffers sent beside it, each preceded by its length: a list of
response bodies in, and ``("ok", pack_page(NormalizedPage))`` (the tables in Arrow's IPC format)
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

import pyarrow as pa

from croct_pandas.normalize import NormalizedPage, normalize_items
from croct_pandas.normalize_typed import normalize_bodies_typed
from croct_pandas.page import load_events_json
from croct_pandas.process_state import paused_gc

__all__ = ["normalize_bodies", "pack_page", "read_message", "unpack_page", "write_message"]

_HEADER = struct.Struct("<Q")


def normalize_bodies(bodies: Sequence[bytes]) -> NormalizedPage:
    """Normalise the items of whole ``GET /export/events`` response bodies, in order: typed
    (:mod:`croct_pandas.normalize_typed`) when the batch allows, else through dicts.

    Examples
    --------
    >>> body = (b'{"items": [{"id": "e1", "timestamp": 1767225600000, "sessionId": "s",'
    ...         b' "userId": "u", "payload": {"@type": "tabOpened", "tabId": "t"}}]}')
    >>> normalize_bodies([body, body]).tables["tabOpened"].num_rows
    2
    >>> odd = body.replace(b'"tabId"', b'"tabKey"')  # a key the schema does not know
    >>> normalize_bodies([odd]).tables["tabOpened"].column("_croct_raw").to_pylist()
    ['{"payload.tabKey":"t"}']
    """
    with paused_gc():
        typed = normalize_bodies_typed(bodies)
        if typed is not None:
            return typed
        items: list[Any] = []
        for body in bodies:
            items.extend(load_events_json(body)["items"])
        return normalize_items(items)


def pack_page(page: NormalizedPage) -> tuple[dict[str, pa.Buffer], set[str]]:
    """A normalised batch as the worker sends it: each table in Arrow's IPC stream format, one
    buffer per table (pickling ~1,000 arrays one by one took ten times longer).

    Examples
    --------
    >>> page = NormalizedPage({"t": pa.table({"n": [1, 2]})}, {"0.7"})
    >>> unpack_page(pack_page(page)).tables["t"].column("n").to_pylist()
    [1, 2]
    """
    packed = {}
    for event_type, table in page.tables.items():
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        packed[event_type] = sink.getvalue()
    return packed, page.spec_versions


def unpack_page(packed: tuple[dict[str, Any], set[str]]) -> NormalizedPage:
    """The batch :func:`pack_page` sent; the tables use the received memory as it is."""
    tables, spec_versions = packed
    return NormalizedPage(
        {t: pa.ipc.open_stream(data).read_all() for t, data in tables.items()}, spec_versions
    )


def write_message(stream: IO[bytes], obj: Any) -> None:
    """Send one message: a pickle whose large buffers (Arrow's) travel beside it, uncopied.

    Examples
    --------
    >>> import io
    >>> import pyarrow as pa
    >>> stream = io.BytesIO()
    >>> write_message(stream, ["a", pa.table({"n": [1, 2]})])
    >>> _ = stream.seek(0)
    >>> read_message(stream)[1].column("n").to_pylist()
    [1, 2]
    """
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [buffer.raw() for buffer in buffers]
    sizes = [len(data), *(raw.nbytes for raw in raws)]
    stream.write(_HEADER.pack(len(sizes)) + b"".join(_HEADER.pack(n) for n in sizes))
    stream.write(data)
    for raw in raws:
        stream.write(raw)
    stream.flush()


def read_message(stream: IO[bytes]) -> Any:
    """Receive one message; :class:`EOFError` when the stream ends first (see
    :func:`write_message` for an example)."""
    (count,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    sizes = struct.unpack(f"<{count}Q", _read_exactly(stream, _HEADER.size * count))
    data, *buffers = (_read_exactly(stream, size) for size in sizes)
    # the buffers become the Arrow arrays' memory as they are: no further copy
    return pickle.loads(data, buffers=buffers)


def _read_exactly(stream: IO[bytes], size: int) -> bytearray:
    out = bytearray(size)
    view = memoryview(out)
    done = 0
    while done < size:
        n = stream.readinto(view[done:])  # type: ignore[attr-defined]
        if not n:
            raise EOFError("the stream ended inside a message")
        done += n
    return out


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
            reply: tuple[str, Any] = ("ok", pack_page(normalize_bodies(bodies)))
        except Exception as exc:  # the caller normalises the batch itself and reports it
            reply = ("error", f"{type(exc).__name__}: {exc}"[:500])
        write_message(replies, reply)
        del bodies, reply
        give_back()


def give_back() -> None:
    """Return the memory a batch freed to the system: between batches an idle worker holds
    its imports, not the last batch's dicts (glibc keeps freed memory otherwise).

    Examples
    --------
    >>> give_back()
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        pa.default_memory_pool().release_unused()
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do

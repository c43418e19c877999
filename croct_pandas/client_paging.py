"""Paging ``GET /export/events``: the query one window sends with every page, and the chain.

:func:`events_params` checks a window's arguments (``start``, ``end``, ``events``,
``page_size``) and turns them into the query sent unchanged with every page of a cursor chain;
:func:`check_cursor` checks the cursor a chain resumes from; :func:`chain_pages` follows
``next_cursor`` from page to page and knows where a chain ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from croct_pandas.errors import InvalidArgumentError
from croct_pandas.page import Page
from croct_pandas.params import check_events, check_page_size, check_window, to_epoch_ms

__all__ = ["chain_pages", "check_cursor", "events_params"]


def check_cursor(cursor: Any) -> str | None:
    """``cursor`` as given, when it is ``None`` or a non-empty str (the ``next_cursor`` of a Page).

    Examples
    --------
    >>> check_cursor("c2")
    'c2'
    >>> check_cursor("")
    Traceback (most recent call last):
    ...
    croct_pandas.errors.InvalidArgumentError: cursor='': cursor accepts None or a non-empty str, \
the next_cursor of a Page
    """
    if cursor is None or (isinstance(cursor, str) and cursor):
        return cursor
    raise InvalidArgumentError(
        f"cursor={cursor!r}: cursor accepts None or a non-empty str, the next_cursor of a Page"
    )


def events_params(start: Any, end: Any, events: Any, page_size: Any) -> list[tuple[str, str]]:
    """The query of one window: ``start`` and ``end`` in epoch milliseconds (each only when
    given), ``pageSize``, then one ``events`` per type.

    Examples
    --------
    >>> events_params("2026-11-01", None, ["pageOpened", "goalCompleted"], 500)
    [('start', '1793491200000'), ('pageSize', '500'), ('events', 'pageOpened'), \
('events', 'goalCompleted')]
    """
    start_ms = to_epoch_ms(start, "start")
    end_ms = to_epoch_ms(end, "end")
    check_window(start_ms, end_ms)
    types = check_events(events)
    params: list[tuple[str, str]] = []
    if start_ms is not None:
        params.append(("start", str(start_ms)))
    if end_ms is not None:
        params.append(("end", str(end_ms)))
    params.append(("pageSize", str(check_page_size(page_size))))
    params.extend(("events", name) for name in types or ())
    return params


def chain_pages(
    fetch_page: Callable[[list[tuple[str, str]], str | None], Page],
    params: list[tuple[str, str]],
    cursor: str | None,
) -> Iterator[Page]:
    """The pages of a cursor chain, from ``fetch_page(params, cursor)``.

    Stops after a page without ``next_cursor`` or at a page with no items; an empty page is
    yielded only when it is the first.

    Examples
    --------
    >>> pages = {None: Page([{"id": "a"}], {}, "c2"), "c2": Page([], {}, "c3")}
    >>> [page.count for page in chain_pages(lambda params, cursor: pages[cursor], [], None)]
    [1]
    """
    first = True
    while True:
        page = fetch_page(params, cursor)
        if not page.count:
            if first:
                yield page
            return
        yield page
        if page.next_cursor is None:
            return
        cursor, first = page.next_cursor, False

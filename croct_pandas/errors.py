"""Every exception and warning croct-pandas raises.

The tree::

    CroctError                      base of everything raised on purpose
    ├── InvalidArgumentError        bad input, raised before any request (also a ValueError)
    ├── APIError                    the API answered with an error (status, type, title, detail)
    │   ├── BadRequestError         400: the server's problem detail says which parameter
    │   ├── AuthenticationError     401/403: the key is missing, wrong or lacks data_export
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429, with the Retry-After it carried (if any)
    │   └── ServerError             5xx
    ├── TransportError              no usable answer: connection reset, timeout, bad JSON
    ├── RetriesExhaustedError       a request kept failing; says what failed and how to resume
    ├── CancelledError              the call was cancelled (``Client(cancel=...)`` was set)
    └── CacheError                  the local store cannot be read or written

    CroctWarning (UserWarning)
    ├── SchemaWarning               a value outside the schema: a new enum value, a column that
    │                               fell back to text, a mixed inferred column
    └── CacheWarning                a cache written by another schema version was rebuilt

Messages never contain the API key: errors carry the URL path and parameters, never headers.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "CacheError",
    "CacheWarning",
    "CancelledError",
    "CroctError",
    "CroctWarning",
    "InvalidArgumentError",
    "NotFoundError",
    "RateLimitError",
    "RetriesExhaustedError",
    "SchemaWarning",
    "ServerError",
    "TransportError",
    "error_from_response",
]


class CroctError(Exception):
    """Base class of every error croct-pandas raises on purpose.

    Examples
    --------
    >>> import croct_pandas as cp
    >>> try:
    ...     cp.read_croct_events("2026-11-08", "2026-11-01", api_key="k", cache=False)
    ... except cp.CroctError as error:
    ...     print(type(error).__name__)
    InvalidArgumentError
    """


class InvalidArgumentError(CroctError, ValueError):
    """An argument is not acceptable; raised before any request is sent."""


def bad_argument(name: str, value: Any, why: str) -> InvalidArgumentError:
    """An :class:`~croct_pandas.errors.InvalidArgumentError` for ``name=value``, not raised.

    The value's repr is cut to 60 characters so a huge argument cannot flood the message.

    Examples
    --------
    >>> str(bad_argument("workers", 0, "workers accepts an int from 1 to 64"))
    'workers=0: workers accepts an int from 1 to 64'
    """
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InvalidArgumentError(f"{name}={shown}: {why}")


class APIError(CroctError):
    """The Export API answered with an error status.

    Attributes hold the HTTP context; ``str()`` stays one short line.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        problem_type: str | None = None,
        title: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.problem_type = problem_type
        self.title = title
        self.detail = detail

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}: " if self.status is not None else ""
        return f"{prefix}{self.message}"


class BadRequestError(APIError):
    """400: the server refused a parameter; ``detail`` says which."""


class AuthenticationError(APIError):
    """401/403: the API key is missing, wrong, or lacks the ``data_export`` permission."""


class NotFoundError(APIError):
    """404: no such event (or endpoint)."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds, if it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the API failed; retried by the client."""


class TransportError(CroctError):
    """No usable answer: connection refused or reset, a timeout, or a body that is not JSON."""


class RetriesExhaustedError(CroctError):
    """A request kept failing after every retry; ``last_error`` is the final failure."""

    def __init__(self, message: str, *, last_error: BaseException | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class CancelledError(CroctError):
    """The client's ``cancel`` event was set: no further request is sent and waits end at once.

    ``read_croct_events`` cancels the requests of its other time slices this way when one of
    them fails or the call is interrupted.
    """


class CacheError(CroctError):
    """The local Parquet store could not be read or written."""


class CroctWarning(UserWarning):
    """Base class of croct-pandas warnings."""


class SchemaWarning(CroctWarning):
    """A value did not fit the schema; the column named in the message kept it another way."""


class CacheWarning(CroctWarning):
    """The cache was written by another schema version and has been rebuilt."""


_AUTH_HINT = (
    "the API key is read from the api_key argument, then the CROCT_API_KEY environment "
    "variable; it needs the data_export permission"
)


def error_from_response(status: int, body: Any, *, retry_after: float | None = None) -> APIError:
    """Map an HTTP error status and its problem-details body to the matching exception.

    Croct's documentation calls the text field ``detail``; its OpenAPI document calls it
    ``details``. Both are read.

    Examples
    --------
    >>> err = error_from_response(400, {"title": "Invalid input", "detail": "pageSize: 1..1000"})
    >>> type(err).__name__, str(err)
    ('BadRequestError', 'HTTP 400: Invalid input: pageSize: 1..1000')
    """
    problem = body if isinstance(body, dict) else {}
    title = _text(problem.get("title"))
    detail = _text(problem.get("detail")) or _text(problem.get("details"))
    problem_type = _text(problem.get("type"))
    summary = ": ".join(part for part in (title, detail) if part) or f"status {status}"
    kw: dict[str, Any] = {
        "status": status,
        "problem_type": problem_type,
        "title": title,
        "detail": detail,
    }
    if status in (401, 403):
        return AuthenticationError(f"{summary} ({_AUTH_HINT})", **kw)
    if status == 429:
        return RateLimitError(summary, retry_after=retry_after, **kw)
    if status == 404:
        return NotFoundError(summary, **kw)
    if status >= 500:
        return ServerError(summary, **kw)
    if status == 400:
        return BadRequestError(summary, **kw)
    return APIError(summary, **kw)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None

"""The command line's words for the Python API's errors.

The Python API names its parameters (``page_size=5000: ...``) and Python types; the command line
names options (``--page-size 5000: ...``), environment variables and what an option accepts.
This module rewords one for the other, and holds :class:`UsageError`, the command line's own
mistake (exit 2, one line).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping

__all__ = ["OPTIONS", "UsageError", "cli_terms", "one_line", "options_for", "rephrase"]

#: Python parameter -> command-line option, to word the Python API's errors for the command line
OPTIONS = {
    "start": "--start",
    "end": "--end",
    "events": "--events",
    "page_size": "--page-size",
    "workers": "--workers",
    "base_url": "--base-url",
    "cache": "--cache",
    "application": "--application",
    "steps": "--steps",
    "within": "--within",
    "by": "--by",
    "order": "--order",
    "breakdown": "--breakdown",
}
# what an option accepts, where the Python message lists Python types
_ACCEPTS = {
    "start": "an ISO 8601 date or time such as 2026-11-01, 2026-11-01T10:00 or "
    "2026-11-01T10:00:00Z (UTC without an offset), or epoch milliseconds",
    "cache": "a folder path",
}
_ACCEPTS["end"] = _ACCEPTS["start"]
_PHRASES = (
    ("pass events=None to include every type", "leave out --events to include every type"),
    ("pass milliseconds or a datetime", "pass epoch milliseconds or an ISO date"),
    ("the api_key argument, then the CROCT_API_KEY", "the CROCT_API_KEY"),
    ("pass the key as api_key", "give the key in CROCT_API_KEY"),
    ("Check base_url (or the CROCT_API_URL", "Check --base-url (or the CROCT_API_URL"),
    ("must be None or requests per second above 0", "must be requests per second above 0"),
    ("must be before end (", "must be before --end ("),
    ("must be a Timedelta, a string such as '7D' or None", "must be a duration such as 7D or 12h"),
)
_NO_KEY = (
    "no API key: set the CROCT_API_KEY environment variable (the key is never an option: "
    "command lines end up in shell history)"
)


class UsageError(Exception):
    """A mistake in the command line or its input: exit 2 with one line."""


def cli_terms(message: str, options: Mapping[str, str] = OPTIONS) -> str:
    """Word an error of the Python API for the command line: ``page_size=5000: ...`` becomes
    ``--page-size 5000: ...``, and a missing key points to ``CROCT_API_KEY``.

    ``options`` maps parameter names to option names (or to environment variables). Names with
    an underscore are replaced wherever they stand; plain words (``start``, ``end``) only where
    they are clearly the parameter: first and before ``=``, ``:`` or ``(``, or before
    ``accepts``, ``must`` or ``takes``.

    Examples
    --------
    >>> cli_terms("page_size=5000: page_size accepts an int from 1 to 1000")
    '--page-size 5000: --page-size accepts an int from 1 to 1000'
    >>> cli_terms("latency_s must be from 0 to 3600", {"latency_s": "--latency"})
    '--latency must be from 0 to 3600'
    >>> cli_terms("base_url='x': bad", {"base_url": "CROCT_API_URL"})
    "CROCT_API_URL='x': bad"
    """
    if message.startswith("no API key"):
        return _NO_KEY
    message = rephrase(message)
    for name, option in options.items():
        alone = rf"(?<![\w-]){name}"
        # True or None is the default the user did not give: the rest of the message says which
        message = re.sub(rf"^{name}=(?:True|None): ", "", message)
        message = re.sub(rf"^{name}=", option + (" " if option.startswith("-") else "="), message)
        if name in _ACCEPTS:
            message = re.sub(rf"{alone} accepts [^;]*", f"{name} accepts {_ACCEPTS[name]}", message)
        where = r"(?![\w-])" if "_" in name else r"(?= accepts | must | takes )"
        message = re.sub(alone + where, option, message)
        message = re.sub(rf"^{name}(?=:| \()", option, message)
    return message


def rephrase(message: str) -> str:
    """Replace the Python API's advice with the command line's, leaving names as they are.

    Used alone on failures of the API or the disk: their words stay as they are, but their
    advice (where to give the key, what to check) must be the command line's.

    Examples
    --------
    >>> rephrase("base_url must not carry credentials; pass the key as api_key")
    'base_url must not carry credentials; give the key in CROCT_API_KEY'
    """
    for python, cli in _PHRASES:
        message = message.replace(python, cli)
    return message


def one_line(message: str) -> str:
    """Fold a message onto one line, as every error of the command line is.

    Examples
    --------
    >>> one_line("a failure:\\n  the detail  ")
    'a failure: the detail'
    """
    return " ".join(message.split())


def options_for(args: argparse.Namespace) -> dict[str, str]:
    """The names to give the parameters of ``args``'s command: :data:`OPTIONS`, except that a
    value taken from the environment is named by its variable.

    Examples
    --------
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"CROCT_API_URL": "http://127.0.0.1:8080"}):
    ...     options_for(argparse.Namespace(base_url=None))["base_url"]
    'CROCT_API_URL'
    >>> options_for(argparse.Namespace(base_url="http://127.0.0.1:9"))["base_url"]
    '--base-url'
    """
    options = dict(OPTIONS)
    # a value that came from the environment is named as such, not as an option never given
    for name, variable in (("base_url", "CROCT_API_URL"), ("cache", "CROCT_PANDAS_CACHE")):
        if getattr(args, name, "") is None and os.environ.get(variable):
            options[name] = variable
    return options

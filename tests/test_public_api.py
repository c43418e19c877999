"""The public surface: exactly the names of docs and public-api, nothing more, nothing heavy."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pandas as pd

import croct_pandas as cp
from croct_pandas import errors

PUBLIC = [
    "Client",
    "CroctError",
    "FunnelResult",
    "Page",
    "Step",
    "__version__",
    "cache_info",
    "clear_cache",
    "read_croct_events",
]


def test_all_is_sorted_and_exact():
    assert cp.__all__ == sorted(cp.__all__)
    assert cp.__all__ == PUBLIC
    public = {name for name in dir(cp) if not name.startswith("_") and name != "annotations"}
    modules = {name for name in public if inspect.ismodule(getattr(cp, name))}
    assert public - modules == set(PUBLIC) - {"__version__"}


def test_every_public_callable_has_an_example():
    for name in PUBLIC:
        obj = getattr(cp, name)
        if callable(obj):
            assert "Examples" in (obj.__doc__ or ""), name


def test_read_croct_events_signature():
    sig = inspect.signature(cp.read_croct_events)
    assert list(sig.parameters)[:3] == ["start", "end", "events"]
    keyword_only = [p.name for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == [
        "api_key", "base_url", "page_size", "workers", "progress", "dtype_backend", "timeout",
        "cache", "refresh", "settle",
    ]  # fmt: skip
    defaults = {p.name: p.default for p in sig.parameters.values()}
    assert defaults["page_size"] == 1000 and defaults["workers"] == 4
    assert defaults["cache"] is True and defaults["settle"] == "2h" and defaults["timeout"] == 30.0


def test_the_error_tree_has_one_base():
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, cp.CroctError), name
    assert issubclass(errors.InvalidArgumentError, ValueError)
    for name in ("SchemaWarning", "CacheWarning"):
        assert issubclass(getattr(errors, name), errors.CroctWarning)


def test_the_accessor_is_registered_and_checks_columns():
    frame = pd.DataFrame({"type": ["pageOpened"]})
    try:
        frame.croct.funnel(["pageOpened", "orderPlaced"])
    except ValueError as error:
        assert "timestamp" in str(error)
    else:
        raise AssertionError("a frame without timestamp was accepted")


def test_import_is_light():
    code = (
        "import sys, croct_pandas; "
        "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'IPython', 'duckdb') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

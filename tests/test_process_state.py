"""Process-wide settings a read changes while it runs: restored after, counted when nested,
and never over the user's own choice."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pyarrow as pa
import pytest

import croct_pandas as cp
from croct_pandas.emulator import Emulator
from croct_pandas.normalize_pool import _worker_environment
from croct_pandas.process_state import paused_gc, system_arrow_pool

DEFAULT_IS_MIMALLOC = pa.default_memory_pool().backend_name == "mimalloc"


def test_nested_and_concurrent_blocks_restore_once_the_last_ends() -> None:
    before = pa.default_memory_pool().backend_name
    inner_started, outer_may_end = threading.Event(), threading.Event()
    seen: list[str] = []

    def other() -> None:
        with system_arrow_pool(), paused_gc():
            inner_started.set()
            outer_may_end.wait(5)
            seen.append(pa.default_memory_pool().backend_name)

    with system_arrow_pool(), paused_gc():
        thread = threading.Thread(target=other)
        thread.start()
        inner_started.wait(5)
    # the first block ended while the other still runs: its setting stays
    assert not gc.isenabled()
    assert pa.default_memory_pool().backend_name == ("system" if DEFAULT_IS_MIMALLOC else before)
    outer_may_end.set()
    thread.join(5)
    assert gc.isenabled()
    assert pa.default_memory_pool().backend_name == before
    assert seen == ["system" if DEFAULT_IS_MIMALLOC else before]


@pytest.mark.skipif(not DEFAULT_IS_MIMALLOC, reason="pyarrow's default pool is not mimalloc")
def test_buffers_made_in_the_block_outlive_it() -> None:
    with system_arrow_pool():
        array = pa.array(range(100_000))
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == "mimalloc"
    assert array.sum().as_py() == sum(range(100_000))
    del array  # freed by the pool that made it


@pytest.fixture
def users_pool() -> Iterator[pa.MemoryPool]:
    """A pool other than pyarrow's default, as a user would choose; the default comes back."""
    saved = pa.default_memory_pool()
    try:
        chosen = pa.jemalloc_memory_pool()
    except NotImplementedError:
        pytest.skip("this pyarrow has no jemalloc")
    yield chosen
    pa.set_memory_pool(saved)


def test_a_pool_the_user_chose_stands(users_pool: pa.MemoryPool) -> None:
    pa.set_memory_pool(users_pool)
    with system_arrow_pool():
        assert pa.default_memory_pool().backend_name == "jemalloc"
    assert pa.default_memory_pool().backend_name == "jemalloc"


@pytest.mark.skipif(not DEFAULT_IS_MIMALLOC, reason="pyarrow's default pool is not mimalloc")
def test_a_pool_set_by_the_user_during_a_read_stands_after_it(users_pool: pa.MemoryPool) -> None:
    with system_arrow_pool():
        pa.set_memory_pool(users_pool)  # the user's choice, while the read runs
    assert pa.default_memory_pool().backend_name == "jemalloc"


@pytest.mark.parametrize("variable", ["mimalloc", "jemalloc"])
def test_the_environment_variable_stands(variable: str) -> None:
    script = (
        "import pyarrow as pa\n"
        "from croct_pandas.process_state import system_arrow_pool\n"
        "outside = pa.default_memory_pool().backend_name\n"
        "with system_arrow_pool():\n"
        "    print(outside, pa.default_memory_pool().backend_name)\n"
    )
    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL=variable)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    outside, inside = out.stdout.split()
    assert inside == outside


def test_workers_get_the_c_heap_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    assert _worker_environment()["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    assert _worker_environment()["ARROW_DEFAULT_MEMORY_POOL"] == "jemalloc"


def test_a_read_leaves_the_process_as_it_found_it(tmp_path: object) -> None:
    before = pa.default_memory_pool().backend_name
    with Emulator(users=30, days=1) as emu:
        df = cp.read_croct_events(
            "2026-01-01", "2026-01-02", api_key=emu.api_key, base_url=emu.url,
            cache=str(tmp_path), progress=False,
        )  # fmt: skip
        with pytest.raises(cp.CroctError):  # a failure inside the read restores them too
            cp.read_croct_events("2026-01-01", "2026-01-02", api_key="not-the-key",
                                 base_url=emu.url, cache=False, progress=False)  # fmt: skip
    assert len(df) > 0
    assert pa.default_memory_pool().backend_name == before
    assert gc.isenabled()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_a_read_starts_with_the_settings_restored() -> None:
    before = pa.default_memory_pool().backend_name
    with system_arrow_pool(), paused_gc():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report, then leave without running the parent's cleanup
            os.close(read)
            with system_arrow_pool(), paused_gc():
                pass
            state = f"{gc.isenabled()} {pa.default_memory_pool().backend_name}"
            os.write(write, state.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            reported = pipe.read()
        os.waitpid(pid, 0)
        assert not gc.isenabled()  # the parent's block goes on
    assert reported == f"True {before}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_a_read_can_fork_again() -> None:
    import select

    with paused_gc():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child forks a grandchild, which reports and leaves
            os.close(read)
            grandchild = os.fork()
            if grandchild == 0:
                os.write(write, b"grandchild")
                os._exit(0)
            os.waitpid(grandchild, 0)
            os._exit(0)
        os.close(write)
        ready, _, _ = select.select([read], [], [], 10)
        if not ready:
            os.kill(pid, 9)
        reported = os.read(read, 100) if ready else b""
        os.close(read)
        os.waitpid(pid, 0)
    assert reported == b"grandchild"

"""PageBatcher and the normalising worker process: the same tables whoever normalises, nothing
lost when the worker fails, dies or is interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pyarrow as pa
import pytest

from croct_pandas import normalize_pool
from croct_pandas.emulator import generate_events
from croct_pandas.errors import TransportError
from croct_pandas.normalize_pool import PageBatcher, shutdown_worker, worker_enabled
from croct_pandas.normalize_worker import normalize_bodies
from croct_pandas.page import Page

pytestmark = pytest.mark.xdist_group("worker-process")

EVENTS = generate_events(users=40, days=2, seed=11)


def pages_of(events: list[dict], size: int = 300) -> list[Page]:
    bodies = [
        orjson.dumps({"items": events[i : i + size], "nextCursor": f"c{i}"})
        for i in range(0, len(events), size)
    ]
    return [Page.from_body(body) for body in bodies]


def tables_of(batcher: PageBatcher) -> dict[str, pa.Table]:
    chunks: dict[str, list[pa.Table]] = {}
    for batch in batcher.results():
        for event_type, table in batch.tables.items():
            chunks.setdefault(event_type, []).append(table)
    return {t: pa.concat_tables(c).combine_chunks() for t, c in sorted(chunks.items())}


def run(pages: list[Page], size: int = 1000) -> dict[str, pa.Table]:
    batcher = PageBatcher(size=size)
    for page in pages:
        batcher.add(page)
    batcher.flush()
    return tables_of(batcher)


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every batch may start the worker; it is stopped afterwards."""
    if not worker_enabled():
        pytest.skip("the worker process needs more than one core")
    monkeypatch.setattr(normalize_pool, "START_EVENTS", 1)
    shutdown_worker()
    yield
    shutdown_worker()


@pytest.fixture
def inline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROCT_PANDAS_WORKER", "0")


def test_the_worker_and_this_process_give_the_same_tables(worker: None) -> None:
    pages = pages_of(EVENTS)
    in_worker = run(pages)
    assert normalize_pool._workers and all(w.alive for w in normalize_pool._workers)
    os.environ["CROCT_PANDAS_WORKER"] = "0"
    try:
        here = run(pages_of(EVENTS))
    finally:
        del os.environ["CROCT_PANDAS_WORKER"]
    assert list(in_worker) == list(here)
    for event_type in here:
        assert in_worker[event_type].equals(here[event_type]), event_type
    assert sum(t.num_rows for t in here.values()) == len(EVENTS)


def test_batches_come_back_in_page_order(worker: None) -> None:
    events = [e for e in EVENTS if e["payload"]["@type"] == "pageOpened"]
    ids = run(pages_of(events, size=50), size=100)["pageOpened"].column("id").to_pylist()
    assert ids == [e["id"] for e in events]


def test_a_dead_worker_loses_no_batch(worker: None) -> None:
    pages = pages_of(EVENTS)
    expected = run(pages)
    killed = list(normalize_pool._workers)
    assert killed
    batcher = PageBatcher(size=1000)
    for i, page in enumerate(pages):
        batcher.add(page)
        if i == 2:
            for worker_process in killed:
                os.kill(worker_process.proc.pid, signal.SIGKILL)
    batcher.flush()
    got = tables_of(batcher)
    assert all(got[t].equals(expected[t]) for t in expected) and list(got) == list(expected)
    # the next batch starts new workers
    for worker_process in killed:
        worker_process.proc.wait(timeout=10)
    time.sleep(0.2)  # the reader threads notice the exits
    run(pages[:2])
    assert normalize_pool._workers and not set(normalize_pool._workers) & set(killed)


def test_the_worker_ignores_ctrl_c(worker: None) -> None:
    run(pages_of(EVENTS[:500]))
    started = list(normalize_pool._workers)
    assert started
    for worker_process in started:
        os.kill(worker_process.proc.pid, signal.SIGINT)
    time.sleep(0.3)
    assert all(worker_process.proc.poll() is None for worker_process in started)
    assert sum(t.num_rows for t in run(pages_of(EVENTS)).values()) == len(EVENTS)
    assert normalize_pool._workers == started


def test_a_batch_the_worker_cannot_parse_fails_with_a_transport_error(worker: None) -> None:
    page = Page.from_body(b'{"items": [{"id": "e1", "value": 1e999}]}')
    batcher = PageBatcher(size=1)
    batcher.add(page)
    with pytest.raises(TransportError, match="invalid JSON"):
        batcher.results()


def test_small_reads_and_pages_without_a_body_never_start_a_worker(inline: None) -> None:
    shutdown_worker()
    assert not worker_enabled()
    run(pages_of(EVENTS))
    assert not normalize_pool._workers


def test_hand_built_pages_are_normalised_here(worker: None) -> None:
    pages = [Page(p.items, p.metadata, p.next_cursor) for p in pages_of(EVENTS)]
    assert sum(t.num_rows for t in run(pages).values()) == len(EVENTS)
    assert not normalize_pool._workers


def test_pages_added_from_many_threads_keep_each_chains_order(worker: None) -> None:
    import threading

    events = [e for e in EVENTS if e["payload"]["@type"] == "pageOpened"]
    chains = [events[i::4] for i in range(4)]
    batcher = PageBatcher(size=120)

    def follow(chain: list[dict]) -> None:
        for page in pages_of(chain, size=30):
            batcher.add(page)

    threads = [threading.Thread(target=follow, args=(chain,)) for chain in chains]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.flush()
    ids = tables_of(batcher)["pageOpened"].column("id").to_pylist()
    assert sorted(ids) == sorted(e["id"] for e in events)
    for chain in chains:
        wanted = [e["id"] for e in chain]
        assert [i for i in ids if i in set(wanted)] == wanted


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_child_starts_its_own_workers_and_leaves_the_parents_alone(worker: None) -> None:
    pages = pages_of(EVENTS)
    expected = run(pages)
    parents = list(normalize_pool._workers)
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 when its own workers gave the same tables
        try:
            got = run(pages)
            same = list(got) == list(expected) and all(got[t].equals(expected[t]) for t in got)
            mine = normalize_pool._workers and not set(normalize_pool._workers) & set(parents)
            shutdown_worker()
            os._exit(0 if same and mine else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert normalize_pool._workers == parents and all(w.alive for w in parents)
    assert run(pages).keys() == expected.keys()


def test_normalize_bodies_reads_whole_response_bodies() -> None:
    bodies = [orjson.dumps({"items": EVENTS[:10]}), orjson.dumps({"items": EVENTS[10:25]})]
    assert normalize_bodies(bodies).num_rows == 25


_READ_THEN_EXIT = """
import croct_pandas as cp
from croct_pandas import normalize_pool
from croct_pandas.emulator import Emulator
with Emulator(users=100, days=2) as emu:
    df = cp.read_croct_events("2026-01-01", "2026-01-03", api_key=emu.api_key, base_url=emu.url,
                              cache=False, progress=False)
print(len(df), len(normalize_pool._workers))
"""


def test_the_workers_pipes_are_closed_when_the_interpreter_exits() -> None:
    env = {**os.environ, "CROCT_PANDAS_WORKER": "1"}
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", _READ_THEN_EXIT],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows, workers = map(int, done.stdout.split())
    assert rows > normalize_pool.START_EVENTS and workers == 1, "the read started the worker"
    assert "ResourceWarning" not in done.stderr and "unclosed" not in done.stderr, done.stderr


def test_a_dead_worker_is_reaped_with_its_pipes(worker: None) -> None:
    run(pages_of(EVENTS))
    dead = list(normalize_pool._workers)
    assert dead
    for worker_process in dead:
        os.kill(worker_process.proc.pid, signal.SIGKILL)
        worker_process.proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(w.alive for w in dead) and time.monotonic() < deadline:
        time.sleep(0.05)  # the reader threads notice the exits
    run(pages_of(EVENTS[:600]))
    assert not set(normalize_pool._workers) & set(dead)
    for worker_process in dead:
        assert worker_process.proc.stdout is not None and worker_process.proc.stdout.closed
        assert worker_process.proc.stdin is not None and worker_process.proc.stdin.closed

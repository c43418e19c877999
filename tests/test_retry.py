"""Retry decision, delay maths, jitter and the shared rate budget, on a fake clock."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from fake_clock import FakeClock

from croct_pandas.retry import (
    RateBudget,
    backoff_ceiling,
    full_jitter,
    parse_retry_after,
    retry_delay,
    should_retry,
)

# -- decision ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, True),
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (599, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (422, False),
        (301, False),
    ],
)
def test_should_retry(status, expected):
    assert should_retry(status) is expected


# -- delay maths ---------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap():
    assert [backoff_ceiling(n, 0.5, 30.0) for n in range(1, 10)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
        30.0,
    ]
    assert backoff_ceiling(5000, 0.5, 30.0) == 30.0  # no overflow
    assert backoff_ceiling(3, 0.0, 30.0) == 0.0


def test_full_jitter_stays_in_range_and_is_seeded():
    draws = [full_jitter(4.0, random.Random(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # same seed, same wait
    rng = random.Random(1)
    many = [full_jitter(4.0, rng) for _ in range(2000)]
    assert all(0.0 <= d <= 4.0 for d in many)
    # spread over the whole range, not clustered: both quarters at the ends are used
    assert min(many) < 0.5 and max(many) > 3.5
    assert 1.8 < sum(many) / len(many) < 2.2
    assert full_jitter(0.0, rng) == 0.0


NOW = datetime(2026, 11, 1, 10, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("0", 0.0),
        ("3", 3.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("nan", None),
        ("inf", None),
        ("soon", None),
        ("Sun, 01 Nov 2026 10:00:05 GMT", 5.0),  # IMF-fixdate
        ("Sunday, 01-Nov-26 10:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Sun Nov  1 10:00:30 2026", 30.0),  # obsolete asctime form
        ("Sun, 01 Nov 2026 09:00:00 GMT", 0.0),  # already past
        ("Sun, 01 Nov 2026 12:00:05 +0200", 5.0),  # an offset is honoured
        ("Sun, 32 Nov 2026 10:00:05 GMT", None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


def test_parse_retry_after_date_uses_the_current_time_by_default():
    soon = datetime.now(timezone.utc) + timedelta(seconds=30)
    got = parse_retry_after(format_datetime(soon, usegmt=True))
    assert got is not None and 0.0 < got <= 30.0


def test_retry_delay_obeys_retry_after_with_a_cap():
    kw = {"backoff": 0.5, "max_backoff": 30.0, "max_retry_after": 60.0, "rng": random.Random(0)}
    assert retry_delay(1, retry_after=2.0, **kw) == 2.0
    assert retry_delay(9, retry_after=0.0, **kw) == 0.0
    assert retry_delay(1, retry_after=3600.0, **kw) == 60.0


def test_retry_delay_without_retry_after_is_jittered_backoff():
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    kw = {"backoff": 0.5, "max_backoff": 3.0, "max_retry_after": 60.0, "rng": Top()}
    assert [retry_delay(n, retry_after=None, **kw) for n in range(1, 6)] == [
        0.5,
        1.0,
        2.0,
        3.0,
        3.0,
    ]
    seeded = {"backoff": 0.5, "max_backoff": 30.0, "max_retry_after": 60.0}
    one = [retry_delay(4, retry_after=None, rng=random.Random(3), **seeded) for _ in range(2)]
    assert one[0] == one[1] and 0.0 <= one[0] <= 4.0


# -- the rate budget -----------------------------------------------------------------------------


def make_budget(**kw) -> tuple[RateBudget, FakeClock]:
    clock = FakeClock()
    return RateBudget(clock=clock, sleep=clock.sleep, **kw), clock


def test_unlimited_budget_never_waits():
    budget, clock = make_budget()
    assert budget.rate is None
    assert [budget.acquire() for _ in range(100)] == [0.0] * 100
    assert clock.sleeps == []
    assert "unlimited" in repr(budget)


def test_rate_limit_holds_every_worker_for_retry_after():
    budget, clock = make_budget()
    waits: list[tuple[float, str]] = []
    budget.acquire()
    budget.on_rate_limited(3.0)
    assert budget.acquire(lambda s, why: waits.append((s, why))) == 3.0
    assert waits == [(3.0, "rate limited")]
    assert clock.now == 3.0


def test_rate_limit_halves_the_observed_rate():
    budget, clock = make_budget(window=5.0)
    for _ in range(8):  # 8 requests within 2 s: 4 per second
        budget.acquire()
        clock.sleep(0.25)
    budget.on_rate_limited(0.0)
    assert budget.rate == pytest.approx(2.0)
    # at 2 per second, requests are spaced by 0.5 s
    clock.sleeps.clear()
    for _ in range(4):
        budget.acquire()
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])


def test_one_cut_per_episode():
    budget, clock = make_budget(window=5.0)
    for _ in range(10):
        budget.acquire()
        clock.sleep(0.1)
    budget.on_rate_limited(2.0)
    cut = budget.rate
    assert cut is not None
    budget.on_rate_limited(2.0)  # other workers report the same wave
    budget.on_rate_limited(2.5)
    assert budget.rate == cut
    budget.acquire()
    assert clock.now == pytest.approx(1.0 + 2.5)  # the longest hold wins
    budget.on_rate_limited(1.0)  # a new episode after the hold: cut again
    assert budget.rate == pytest.approx(max(budget.min_rate, cut / 2))


def test_rate_never_drops_below_the_floor():
    budget, clock = make_budget(min_rate=0.5)
    for _ in range(20):
        budget.on_rate_limited(0.0)
        clock.sleep(0.01)
    assert budget.rate == 0.5


def test_successes_grow_the_rate_back_to_unlimited():
    budget, _ = make_budget(increase=1.0, max_rate=10.0)
    budget.acquire()
    budget.on_rate_limited(0.0)
    rates = [budget.rate]
    for _ in range(12):
        budget.on_success()
        rates.append(budget.rate)
    grown = [r for r in rates if r is not None]
    assert grown == sorted(grown) and len(grown) > 2
    assert grown[1] - grown[0] == pytest.approx(1.0)  # additive increase
    assert rates[-1] is None


def test_success_on_an_unlimited_budget_changes_nothing():
    budget, _ = make_budget()
    budget.on_success()
    assert budget.rate is None


@pytest.mark.parametrize(
    "kw",
    [{"min_rate": 0}, {"min_rate": 60.0, "max_rate": 50.0}, {"increase": 0}, {"window": 0}],
)
def test_budget_refuses_bad_settings(kw):
    with pytest.raises(ValueError, match="RateBudget needs"):
        RateBudget(**kw)


def test_threads_share_one_budget():
    budget, clock = make_budget(max_rate=1000.0, min_rate=1.0)
    budget.acquire()
    budget.on_rate_limited(1.0)  # observed rate is unknown: starts at 2 * floor, halved to 1/s
    rate = budget.rate
    assert rate == 1.0
    done: list[int] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for _ in range(5):
                budget.acquire()
                done.append(n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(done) == 20
    # 20 requests at 1 per second after a 1 s hold: the fake clock must have run >= 1 + 19 s
    assert clock.now >= 1.0 + 19 / rate - 1e-6

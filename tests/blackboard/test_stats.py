"""Agent stats: the duration histogram, p95, mean and failure rate."""

from __future__ import annotations

import itertools

import pytest

from blackboard import TaskState
from blackboard.ports.registry import BUCKET_COUNT, StatsDelta
from blackboard.records import DURATION_BUCKETS_MS, AgentStats, duration_bucket


def _stats(durations: list[float], statuses: list[TaskState] | None = None) -> AgentStats:
    delta = StatsDelta()
    for index, duration in enumerate(durations):
        status = statuses[index] if statuses else TaskState.SUCCEEDED
        delta = delta + StatsDelta.of(status, duration, 1)
    return delta.applied_to(AgentStats())


def test_buckets_double_from_one_millisecond_to_past_an_hour() -> None:
    assert DURATION_BUCKETS_MS[0] == 1
    assert all(b == 2 * a for a, b in itertools.pairwise(DURATION_BUCKETS_MS))
    assert DURATION_BUCKETS_MS[-1] >= 3_600_000
    assert BUCKET_COUNT == len(DURATION_BUCKETS_MS) + 1


@pytest.mark.parametrize(
    ("duration", "bucket"),
    [(0.0, 0), (0.3, 0), (1.0, 0), (1.01, 1), (2.0, 1), (3.0, 2), (1000.0, 10), (1025.0, 11), (9e9, BUCKET_COUNT - 1)],
)
def test_a_duration_falls_in_the_bucket_whose_bound_first_holds_it(duration: float, bucket: int) -> None:
    assert duration_bucket(duration) == bucket


def test_p95_is_the_bound_of_the_bucket_holding_the_95th_percentile() -> None:
    # 95 quick calls (~10 ms, bucket bound 16) and 5 slow ones (~3 s, bound 4096): the 95th call is still quick.
    stats = _stats([10.0] * 95 + [3000.0] * 5)
    assert stats.p95_ms == 16.0
    # One more slow call moves the 95th percentile into the slow bucket.
    assert _stats([10.0] * 95 + [3000.0] * 6).p95_ms == 4096.0
    assert stats.quantile_ms(1.0) == 4096.0
    assert stats.mean_ms == pytest.approx((950 + 15000) / 100)


def test_p95_never_undershoots_and_overshoots_at_most_twice() -> None:
    durations = [float(d) for d in range(1, 2001, 3)]
    true_p95 = sorted(durations)[int(0.95 * len(durations)) - 1]
    p95 = _stats(durations).p95_ms
    assert p95 is not None and true_p95 <= p95 <= 2 * true_p95


def test_overflow_reports_the_last_bound() -> None:
    assert _stats([1e10]).p95_ms == float(DURATION_BUCKETS_MS[-1])


def test_empty_stats_have_no_percentiles_and_no_failures() -> None:
    stats = AgentStats()
    assert stats.p95_ms is None and stats.mean_ms is None and stats.failure_rate == 0.0
    with pytest.raises(ValueError, match="quantile"):
        stats.quantile_ms(0)


def test_failure_rate_counts_timeouts_as_failures() -> None:
    statuses = [TaskState.SUCCEEDED, TaskState.FAILED, TaskState.TIMED_OUT, TaskState.FAILED]
    stats = _stats([5.0] * 4, statuses)
    assert stats.failures == 3 and stats.failure_rate == 0.75


def test_a_shorter_stored_histogram_is_padded_and_a_longer_one_refused() -> None:
    assert AgentStats(duration_buckets=[2, 1]).duration_buckets == [2, 1] + [0] * (BUCKET_COUNT - 2)
    assert AgentStats.model_validate({"invocations": 1}).duration_buckets == [0] * BUCKET_COUNT
    with pytest.raises(ValueError, match="duration buckets"):
        AgentStats(duration_buckets=[0] * (BUCKET_COUNT + 1))


def test_a_delta_needs_a_full_histogram() -> None:
    with pytest.raises(ValueError, match="duration_buckets"):
        StatsDelta(invocations=1, duration_buckets=(1, 0))
    assert (StatsDelta(tokens=1) + StatsDelta(tokens=2)).duration_buckets == ()

"""RetryPolicy: how long to wait after each failed attempt of an event handler."""

from __future__ import annotations

import pytest
from vidmesh.transport.kafka import RetryPolicy


def test_the_default_policy_is_five_attempts_from_100_ms_doubling_to_at_most_5_s() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == 5
    assert [policy.backoff(n) for n in range(1, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8])


def test_the_first_wait_is_the_initial_backoff() -> None:
    assert RetryPolicy(initial_backoff=0.25).backoff(1) == 0.25


def test_each_wait_is_multiplier_times_the_one_before() -> None:
    policy = RetryPolicy(initial_backoff=0.01, multiplier=3.0, max_backoff=100.0)
    waits = [policy.backoff(n) for n in range(1, 6)]
    assert waits == pytest.approx([0.01, 0.03, 0.09, 0.27, 0.81])


def test_waits_stop_growing_at_max_backoff() -> None:
    policy = RetryPolicy(initial_backoff=1.0, multiplier=2.0, max_backoff=5.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_a_policy_with_very_many_attempts_still_waits_max_backoff_far_out() -> None:
    # 2.0 ** 1100 overflows a float; a policy meant as "practically unbounded" must not raise.
    policy = RetryPolicy(max_attempts=100_000, initial_backoff=0.1, max_backoff=5.0)
    assert policy.backoff(1100) == 5.0
    assert policy.backoff(99_999) == 5.0


def test_a_multiplier_of_one_waits_the_same_every_time() -> None:
    policy = RetryPolicy(initial_backoff=0.01, multiplier=1.0)
    assert {policy.backoff(n) for n in range(1, 10)} == {0.01}


def test_backoff_is_a_float_even_from_int_settings() -> None:
    policy = RetryPolicy(initial_backoff=1, multiplier=2, max_backoff=10)
    assert isinstance(policy.backoff(3), float)
    assert policy.backoff(3) == 4.0


def test_a_policy_is_immutable() -> None:
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.max_attempts = 1  # type: ignore[misc]


def test_without_max_elapsed_only_attempts_count() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert not policy.gives_up(2, elapsed=1e9)
    assert policy.gives_up(3, elapsed=0.0)


def test_max_elapsed_gives_up_before_the_attempts_run_out() -> None:
    policy = RetryPolicy(max_attempts=1_000, max_elapsed=300.0)
    assert not policy.gives_up(10, elapsed=299.9)
    assert policy.gives_up(10, elapsed=300.0)


def test_the_last_pause_ends_at_the_deadline() -> None:
    policy = RetryPolicy(initial_backoff=5.0, max_backoff=5.0, max_elapsed=12.0)
    assert policy.pause(1, elapsed=0.0) == 5.0
    assert policy.pause(3, elapsed=10.0) == 2.0
    assert policy.pause(4, elapsed=12.5) == 0.0

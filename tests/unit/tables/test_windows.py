"""Window assignment (tumbling_start, hopping_starts) and WindowConfig validation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.windows import WindowConfig, WindowKind, hopping_starts, tumbling_start
from tests.unit.tables.core_helpers import MIN, SEC, at

FIVE = 5 * MIN
TEN = 10 * MIN
TWO = 2 * MIN


# -- tumbling_start --------------------------------------------------------------------


def test_tumbling_start__inside_window() -> None:
    out = [tumbling_start(at(t), FIVE) for t in ("14:00:01", "14:02:30", "14:04:59.999")]
    assert out == [at("14:00"), at("14:00"), at("14:00")]


def test_tumbling_start__event_exactly_at_start_belongs_to_that_window() -> None:
    out = [tumbling_start(at(t), FIVE) for t in ("14:00", "14:05", "14:10", "15:00")]
    assert out == [at("14:00"), at("14:05"), at("14:10"), at("15:00")]


def test_tumbling_start__last_millisecond_before_boundary() -> None:
    out = [tumbling_start(at("14:05") - 1, FIVE), tumbling_start(at("14:05"), FIVE),
           tumbling_start(at("14:05") + 1, FIVE)]
    assert out == [at("14:00"), at("14:05"), at("14:05")]


def test_tumbling_start__epoch_and_negative_times() -> None:
    out = [tumbling_start(t, FIVE) for t in (0, 1, FIVE - 1, FIVE, -1, -FIVE, -FIVE - 1)]
    assert out == [0, 0, 0, FIVE, -FIVE, -FIVE, -2 * FIVE]


def test_tumbling_start__window_always_holds_the_event() -> None:
    times = [-7 * MIN - 1, -1, 0, at("14:03:20"), at("23:59:59.999")]
    out = [(start <= t < start + FIVE, start % FIVE)
           for t in times for start in [tumbling_start(t, FIVE)]]
    assert out == [(True, 0)] * 5


def test_tumbling_start__other_sizes() -> None:
    t = at("14:23:45.678")
    out = [tumbling_start(t, size) for size in (SEC, MIN, FIVE, 3_600_000, 7 * SEC)]
    # 7 s windows are aligned to the epoch, not to the minute.
    assert out == [at("14:23:45"), at("14:23"), at("14:20"), at("14:00"), t - t % (7 * SEC)]


# -- hopping_starts ---------------------------------------------------------------------


def test_hopping_starts__event_inside_step() -> None:
    assert list(hopping_starts(at("14:03"), TEN, TWO)) == [
        at("13:54"), at("13:56"), at("13:58"), at("14:00"), at("14:02")]


def test_hopping_starts__event_exactly_at_a_window_start() -> None:
    # 14:06 starts a window; [13:56, 14:06) does not hold it (ends are exclusive).
    assert list(hopping_starts(at("14:06"), TEN, TWO)) == [
        at("13:58"), at("14:00"), at("14:02"), at("14:04"), at("14:06")]


def test_hopping_starts__last_millisecond_before_a_start() -> None:
    assert list(hopping_starts(at("14:06") - 1, TEN, TWO)) == [
        at("13:56"), at("13:58"), at("14:00"), at("14:02"), at("14:04")]


def test_hopping_starts__epoch() -> None:
    assert list(hopping_starts(0, TEN, TWO)) == [-8 * MIN, -6 * MIN, -4 * MIN, -2 * MIN, 0]


def test_hopping_starts__negative_time() -> None:
    assert list(hopping_starts(-1, TEN, TWO)) == [
        -10 * MIN, -8 * MIN, -6 * MIN, -4 * MIN, -2 * MIN]


def test_hopping_starts__size_equal_to_step_is_tumbling() -> None:
    times = [-1, 0, at("14:04:59.999"), at("14:05")]
    assert [list(hopping_starts(t, FIVE, FIVE)) for t in times] == [
        [tumbling_start(t, FIVE)] for t in times]


def test_hopping_starts__three_steps_per_window() -> None:
    assert [list(hopping_starts(t, 9, 3)) for t in (0, 2, 3, 10, -1)] == [
        [-6, -3, 0], [-6, -3, 0], [-3, 0, 3], [3, 6, 9], [-9, -6, -3]]


def test_hopping_starts__is_a_range() -> None:
    starts = hopping_starts(at("14:03"), TEN, TWO)
    assert (type(starts), len(starts), starts.step) == (range, 5, TWO)


@settings(max_examples=200, deadline=None)
@given(t=st.integers(-(10**13), 10**13), step=st.integers(1, 10**6), n=st.integers(1, 12))
def test_hopping_starts__exactly_the_aligned_windows_holding_the_event(
        t: int, step: int, n: int) -> None:
    size = step * n
    starts = list(hopping_starts(t, size, step))
    # Every aligned start s with s <= t < s + size, brute force around t.
    lo = (t - size) - (t - size) % step
    expected = [s for s in range(lo, t + 1, step) if s <= t < s + size]
    assert starts == expected
    assert len(starts) == n


@settings(max_examples=200, deadline=None)
@given(t=st.integers(-(10**13), 10**13), size=st.integers(1, 10**7))
def test_tumbling_start__property(t: int, size: int) -> None:
    start = tumbling_start(t, size)
    assert (start % size, start <= t < start + size) == (0, True)


# -- WindowKind ------------------------------------------------------------------------


def test_window_kind__values() -> None:
    assert [kind.value for kind in WindowKind] == ["tumbling", "hopping", "sliding", "session"]


# -- WindowConfig ------------------------------------------------------------------------


def test_window_config__defaults_match_the_design() -> None:
    config = WindowConfig()
    assert (config.tumbling_ms, config.hopping_size_ms, config.hopping_step_ms,
            config.sliding_ms, config.session_gap_ms, config.allowed_lateness_ms,
            config.idle_timeout_ms, config.retention_ms, config.alert_threshold_cents) == (
        300_000, 600_000, 120_000, 600_000, 900_000, 5_000, 30_000, 7_200_000, 500_000)


@pytest.mark.parametrize("name", [
    "tumbling_ms", "hopping_size_ms", "hopping_step_ms", "sliding_ms", "session_gap_ms",
    "idle_timeout_ms", "alert_threshold_cents"])
@pytest.mark.parametrize("value", [0, -1])
def test_window_config__must_be_positive(name: str, value: int) -> None:
    with pytest.raises(ValueError) as info:
        WindowConfig(**{name: value})
    assert str(info.value) == f"{name} must be positive, got {value}"


@pytest.mark.parametrize("name", ["allowed_lateness_ms", "retention_ms"])
def test_window_config__must_not_be_negative(name: str) -> None:
    with pytest.raises(ValueError) as info:
        WindowConfig(**{name: -1})
    assert str(info.value) == f"{name} must not be negative, got -1"


def test_window_config__zero_lateness_and_retention_are_allowed() -> None:
    config = WindowConfig(allowed_lateness_ms=0, retention_ms=0)
    assert (config.allowed_lateness_ms, config.retention_ms) == (0, 0)


@pytest.mark.parametrize(("size", "step"), [(600_000, 70_000), (600_000, 700_000), (5, 2)])
def test_window_config__hopping_size_must_be_a_multiple_of_step(size: int, step: int) -> None:
    with pytest.raises(ValueError) as info:
        WindowConfig(hopping_size_ms=size, hopping_step_ms=step)
    assert str(info.value) == (
        f"hopping size {size} ms is not a multiple of its step {step} ms")


def test_window_config__hopping_size_equal_to_step_is_allowed() -> None:
    config = WindowConfig(hopping_size_ms=FIVE, hopping_step_ms=FIVE)
    assert (config.hopping_size_ms, config.hopping_step_ms) == (FIVE, FIVE)


def test_window_config__zero_step_is_reported_before_the_modulo() -> None:
    with pytest.raises(ValueError) as info:
        WindowConfig(hopping_step_ms=0)
    assert str(info.value) == "hopping_step_ms must be positive, got 0"


def test_window_config__is_frozen() -> None:
    config = WindowConfig()
    with pytest.raises(AttributeError):
        config.tumbling_ms = 1  # type: ignore[misc]

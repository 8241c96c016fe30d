"""space.latency.interleaved_ms: callables timed run by run in turn, so drift hits them alike."""

from __future__ import annotations

import pytest

from space import latency
from space.latency import interleaved_ms


def test_interleaved_runs_each_callable_in_turn_in_blocks() -> None:
    calls: list[str] = []
    interleaved_ms(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
        rounds=3,
        block=2,
        warmup_rounds=1,
    )
    assert calls == ["a", "a", "b", "b"] * 4, "block by block, round by round, warm-up included"


def test_result_is_the_median_of_the_timed_runs_in_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake clock that each callable advances by its own durations (in seconds): the warm-up
    round's durations are left out, the median of the others is reported in milliseconds."""
    now = [0.0]
    monkeypatch.setattr(latency.time, "perf_counter", lambda: now[0])
    durations = {
        "a": iter([9.0, 9.0, 0.001, 0.005, 0.003, 0.002]),  # warm-up: the two 9 s
        "b": iter([7.0, 7.0, 0.010, 0.010, 0.050, 0.030]),
    }

    def run(name: str) -> None:
        now[0] += next(durations[name])

    ms = interleaved_ms(
        {"a": lambda: run("a"), "b": lambda: run("b")}, rounds=2, block=2, warmup_rounds=1
    )
    assert ms == {"a": pytest.approx(2.5), "b": pytest.approx(20.0)}

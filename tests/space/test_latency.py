"""space.latency.interleaved_ms: callables timed run by run in turn, so drift hits them alike."""

from __future__ import annotations

from space.latency import interleaved_ms


def test_interleaved_runs_each_callable_in_turn_in_blocks() -> None:
    calls: list[str] = []
    ms = interleaved_ms({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                        rounds=3, block=2, warmup_rounds=1)  # fmt: skip
    assert calls == ["a", "a", "b", "b"] * 4, "block by block, round by round, warm-up included"
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())

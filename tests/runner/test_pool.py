"""runner.training.pool: jobs in worker processes, results in order, errors and Ctrl-C kept."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest
import torch

from runner.training import pool
from runner.training.pool import default_workers, map_in_workers, threads_per_worker


def square_and_threads(x: int) -> tuple[int, int, int]:
    return x * x, torch.get_num_threads(), os.getpid()


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"job {x} is bad input")
    return x


def die_on_two(x: int) -> int:
    if x == 2:
        time.sleep(1.0)  # the results sent before are on their way by now
        os._exit(9)  # as the out-of-memory killer would end it
    return x


def sleep_then_return(x: float) -> float:
    time.sleep(x)
    return x


@pytest.fixture
def two_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_results_come_in_order_from_workers_sharing_the_threads(two_threads: None) -> None:
    seen: list[int] = []
    out = map_in_workers(square_and_threads, list(range(6)), 2, lambda i, r: seen.append(i))
    assert [r[0] for r in out] == [0, 1, 4, 9, 16, 25]
    assert {r[1] for r in out} == {1}, "two workers share out two threads: one each"
    assert os.getpid() not in {r[2] for r in out}, "trained in worker processes"
    assert sorted(seen) == list(range(6)), "on_result once per job"
    assert threads_per_worker(2) == 1 and threads_per_worker(4) == 1


def test_more_workers_than_jobs_start_only_as_many_as_jobs(two_threads: None) -> None:
    out = map_in_workers(square_and_threads, [3], 4)
    assert [r[0] for r in out] == [9] and out[0][1] == 2, "one worker keeps both threads"


def test_a_job_error_is_raised_here_after_the_other_jobs_are_kept() -> None:
    kept: list[int] = []
    with pytest.raises(ValueError, match="job 3 is bad input"):
        map_in_workers(fail_on_three, [0, 1, 2, 3], 1, lambda i, r: kept.append(r))
    assert kept == [0, 1, 2], "finished before the error, so delivered"


def test_a_worker_that_dies_is_named_not_waited_for() -> None:
    with pytest.raises(RuntimeError, match=r"worker process died .*jobs \[2\] not done"):
        map_in_workers(die_on_two, [0, 1, 2], 1)


def test_ctrl_c_here_stops_the_workers_and_keeps_what_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pool, "GRACE_SECONDS", 0.5)
    kept: list[float] = []

    def keep_then_ctrl_c(index: int, result: float) -> None:
        kept.append(result)
        os.kill(os.getpid(), signal.SIGINT)  # this process only: the workers are asked in turn

    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        map_in_workers(sleep_then_return, [0.0, 60.0, 60.0], 2, keep_then_ctrl_c)
    assert time.perf_counter() - start < 40, "the workers were asked to stop, not waited for"
    assert kept == [0.0]


def test_default_workers_two_on_a_cpu_one_on_an_accelerator(two_threads: None) -> None:
    assert default_workers("cpu") == 2
    assert default_workers("cuda:0") == 1
    torch.set_num_threads(1)
    assert default_workers("cpu") == 1, "OMP_NUM_THREADS=1 or --threads 1: nothing to share"

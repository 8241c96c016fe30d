"""Train several runs at once: worker processes that share out the CPU cores.

The models a search hands over are small, and a small net's epoch is mostly per-layer overhead
that a second thread hardly shortens; on a CPU, two runs side by side with one thread each finish
sooner than the same runs one after the other with two threads each (bench/finalize_workers.py).
Each worker takes the next job as it frees up, so a slow model does not hold the others back.

Ctrl-C reaches the workers (forwarded if only this process got it): each saves its last finished
epoch, as train_run does, and stops; the jobs finished so far keep their results.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from runner.training.loop import pick_device

T = TypeVar("T")
R = TypeVar("R")

POLL_SECONDS = 1.0
GRACE_SECONDS = 5.0  # after Ctrl-C: how long a worker may take to save before it is asked again
INTERRUPTED = "interrupted"


def default_workers(device: str | None) -> int:
    """Workers when none are asked for: one on a GPU (or any accelerator), else two when torch
    has two or more CPU threads here (the setting bench/finalize_workers.py measured)."""
    picked = torch.device(device) if device else pick_device()  # pick_device: CUDA when here
    return 1 if picked.type != "cpu" else min(2, torch.get_num_threads())


def threads_per_worker(workers: int) -> int:
    """This process's torch threads (all cores, or OMP_NUM_THREADS) shared out, at least one."""
    return max(1, torch.get_num_threads() // workers)


def _work(
    fn: Callable[[Any], Any], items: Sequence[Any], jobs: Any, results: Any, threads: int
) -> None:
    """A worker: take job indexes until the sentinel; send back (index, result, error)."""
    torch.set_num_threads(threads)
    i = -1
    try:
        while (i := jobs.get()) is not None:
            results.put((i, fn(items[i]), None))
    except KeyboardInterrupt:
        results.put((i, None, INTERRUPTED))
    except Exception as e:  # noqa: BLE001 - sent to the parent, which raises it
        results.put((i, None, _picklable(e)))


def _picklable(error: Exception) -> Exception:
    """The error itself if it crosses to the parent intact, else its text in a RuntimeError."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any exception that does not round-trip
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


def map_in_workers(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """fn(item) for every item in `workers` processes; results in the order of items.

    fn and the items must pickle (a module-level function, or a functools.partial of one).
    on_result(index, result) runs here as each job finishes. The first error a worker raises
    is raised here once the other workers have finished their current job (their work is kept).
    """
    context = multiprocessing.get_context("spawn")  # fork and torch's threads do not mix
    jobs, results = context.Queue(), context.Queue()
    for i in range(len(items)):
        jobs.put(i)
    workers = max(1, min(workers, len(items)))
    for _ in range(workers):
        jobs.put(None)
    threads = threads_per_worker(workers)
    procs = [
        context.Process(target=_work, args=(fn, items, jobs, results, threads), daemon=True)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()
    done: dict[int, R] = {}
    error: BaseException | None = None
    interrupted = False
    try:
        while len(done) < len(items) and (any(p.is_alive() for p in procs) or _pending(results)):
            try:
                i, result, err = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if err == INTERRUPTED:
                interrupted = True
            elif err is not None:
                error = error or err
                _drain(jobs)  # the others finish their current job, then stop
            else:
                done[i] = result
                if on_result is not None:
                    on_result(i, result)
    except KeyboardInterrupt:
        interrupted = True
        _stop(procs)
    finally:
        for proc in procs:
            proc.join()
    if interrupted:
        raise KeyboardInterrupt
    if error is not None:
        raise error
    missing = [i for i in range(len(items)) if i not in done]
    if missing:  # a worker died without a word (killed, out of memory)
        codes = ", ".join(str(p.exitcode) for p in procs)
        raise RuntimeError(f"a worker process died (exit codes {codes}); jobs {missing} not done")
    return [done[i] for i in range(len(items))]


def _pending(results: Any) -> bool:
    """Results still queued after every worker has exited."""
    return not results.empty()


def _drain(jobs: Any) -> None:
    """Take the jobs nobody has started off the queue; sentinels stay, so every worker stops."""
    left = []
    while True:
        try:
            left.append(jobs.get_nowait())
        except queue.Empty:
            break
    for _ in [j for j in left if j is None]:
        jobs.put(None)


def _stop(procs: Sequence[Any]) -> None:
    """After Ctrl-C: give the workers time to save their epoch, then ask again, once."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan
    try:
        for proc in procs:
            proc.join(GRACE_SECONDS)
        for proc in procs:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGINT)
        for proc in procs:
            proc.join()
    finally:
        signal.signal(signal.SIGINT, previous)

"""`--workers K`: K local worker processes on one study, watched from here.

Each worker is the same command with `--workers 1`; they share the study through its storage,
which must take several processes (a journal file or a database server). On a machine with GPUs
worker i sees GPU i mod count; on a CPU the cores are shared out between the workers. Their
trial lines are relayed here, prefixed with the worker, under one bar of the study's progress.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

import optuna
import torch
from tqdm import tqdm

from search.study._progress import StudyBar
from search.study._study import INTERRUPTED_EXIT, RunOutcome

POLL_SECONDS = 2.0


def worker_env(index: int, workers: int) -> dict[str, str]:
    """The environment of worker `index`: its own GPU, or its share of the CPU cores."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    gpus = torch.cuda.device_count()
    if gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus))))
        env["CUDA_VISIBLE_DEVICES"] = visible.split(",")[index % gpus]
    else:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))
    return env


def _relay(label: str, stream: IO[str]) -> None:
    """Print a worker's output lines above the progress bar, prefixed with its label."""
    for line in stream:
        tqdm.write(f"[{label}] {line.rstrip()}")


def run_workers(
    study: optuna.Study, module: str, argv: Sequence[str], workers: int, trials: int
) -> RunOutcome:
    """Start `workers` processes of `python -m module argv --workers 1` and wait for them.

    Ctrl-C reaches the workers (forwarded if only this process got it): each ends its running
    trial, which is recorded, and exits.
    """
    procs, relays = [], []
    for i in range(workers):
        label = f"w{i}"
        cmd = [sys.executable, "-m", module, *argv, "--workers", "1", "--worker-label", label]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=worker_env(i, workers),
        )
        relay = threading.Thread(target=_relay, args=(label, proc.stdout), daemon=True)
        relay.start()
        procs.append(proc)
        relays.append(relay)
    bar = StudyBar(study, trials)
    interrupted = False
    previous = signal.getsignal(signal.SIGINT)
    try:
        while any(p.poll() is None for p in procs):
            time.sleep(POLL_SECONDS)
            bar.refresh(study)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not orphan them
        interrupted = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait()
    finally:
        signal.signal(signal.SIGINT, previous)  # the caller's Ctrl-C works again
    for relay in relays:
        relay.join()
    bar.refresh(study)
    bar.close()
    return _outcome([p.returncode for p in procs], interrupted)


def _outcome(codes: Sequence[int], interrupted: bool) -> RunOutcome:
    """Interrupted if any worker was; a failure names the workers that exited with an error."""
    bad = [f"w{i} (exit code {c})" for i, c in enumerate(codes) if c not in (0, INTERRUPTED_EXIT)]
    interrupted = interrupted or INTERRUPTED_EXIT in codes
    if not bad:
        return RunOutcome(interrupted=interrupted)
    return RunOutcome(interrupted, f"worker {', '.join(bad)} stopped with an error; see above")

"""What the runner's commands share: --threads, one exit path for user errors, Ctrl-C, paths."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from litenas.user_input import exit_on_user_error, positive_int
from runner.training.rundir import RunDir


def default_run_path(model: Path, data: Path) -> Path:
    """runs/<model>-<data>, the folder runner.train uses without --output."""
    return Path("runs") / f"{model.stem}-{data.stem}"


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """--threads, the same on every command that trains."""
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="CPU threads for torch (default: all cores; 1 is faster on a busy shared machine)",
    )


def run_command(threads: int | None, body: Callable[[], int], debug: bool = False) -> int:
    """A training command's body with torch's thread count set from --threads (when given) and
    bad input said in one line (exit code 2)."""
    if threads is not None:
        torch.set_num_threads(threads)
    return exit_on_user_error(body, debug)


def report_interrupt(run: RunDir) -> int:
    """After Ctrl-C: say how many epochs last.pt keeps and how to resume; the exit code 130."""
    done = run.load_state()
    epochs = done[0].epochs_done if done else 0
    print(
        f"\ninterrupted: {epochs} epoch(s) saved in {run.last}; run the same command again "
        "to resume",
        file=sys.stderr,
    )
    return 130

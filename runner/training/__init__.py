"""Training: the loop, its schedule, EMA and distillation, metrics, and the run folder it fills.

fit() (loop) serves both brief search trials and full runs; train_run() (run) is the one path a
full training takes into a resumable run folder (rundir).
"""

from runner.training.loop import FitOptions, TrainingDiverged, fit, pick_device, predict
from runner.training.metrics import competition_score, macro_f1
from runner.training.rundir import CheckpointError, RunDir, RunError, load_trained_model
from runner.training.state import EpochStats, FitResult, TrainState

__all__ = [
    "CheckpointError",
    "EpochStats",
    "FitOptions",
    "FitResult",
    "RunDir",
    "RunError",
    "TrainState",
    "TrainingDiverged",
    "competition_score",
    "fit",
    "load_trained_model",
    "macro_f1",
    "pick_device",
    "predict",
]

"""Is latency measurable here, and is MACs a good proxy for it? Both measured in one run.

1. Repeatability: one model's batch-1 latency (ONNX Runtime, one thread, the fastest of 5
   medians of 50 runs after 10 warm-up runs, space/latency.py) measured `--repeats` times in a
   row, each time exported and loaded afresh as a trial does; then its ratio to a reference model
   (shufflenet_v2_x0_5) timed run by run in turn with it. Printed: the values and the ratios,
   each with its spread (max - min) / median. Target: within 5%.
2. Proxy: architectures sampled from the architecture search space (random sampler, each at its
   sampled input size and width; or the trials of a finished study with --study-name), each with
   its MACs and its measured latency. Printed: Spearman and Kendall of MACs vs latency and of
   params vs latency over all of them, then per dominant block type (the block with most rows)
   the median microseconds per MMAC, which says for which blocks MACs under- or over-states the
   time the robot waits. Also the median time one measurement takes (export, session, runs),
   the price a trial pays for it.
3. Study time (--study-trials N): the same study (data, seed, trials, epochs) with
   --objectives f1,macs and with --objectives f1,latency, run side by side as two processes of
   one thread each so the machine's drift hits both alike. Printed: each wall time, their
   ratio (target: within 15%), and how many trials each trained, stopped early or skipped,
   which says whether a difference is the measurement or the models each objective chose.

    python bench/latency.py [--model M.yaml --img-size 64] [--repeats 10] [--samples 60]
    python bench/latency.py --study-name architecture [--storage URL]
    python bench/latency.py --samples 0 --repeats 0 --study-trials 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from search.front import kendall, spearman  # noqa: E402
from search.study import default_url, open_existing_study  # noqa: E402
from space import MODULES, build_model, count_cost  # noqa: E402
from space.latency import interleaved_ms, onnx_latency_ms  # noqa: E402
from space.onnx import onnx_graph, onnx_session  # noqa: E402
from space.search import suggest_img_size, suggest_model_config  # noqa: E402
from space.search_bounds import load_architecture_bounds  # noqa: E402

SPACE = ROOT / "configs" / "search" / "architecture.yaml"
REFERENCE = ROOT / "configs" / "model" / "shufflenet_v2_x0_5.yaml"
NUM_CLASSES = 6


def _spread(values: Sequence[float]) -> str:
    spread = (max(values) - min(values)) / statistics.median(values)
    verdict = "within" if spread <= 0.05 else "OVER"
    return f"spread (max - min) / median {100 * spread:.1f}% ({verdict} the 5% target)"


def repeatability(model_yaml: Path, img_size: int, repeats: int) -> list[str]:
    """One model measured `repeats` times as space/latency.py does (exported and loaded afresh
    each time, as a trial does): the values and their spread. Then the same model timed run by
    run in turn with a reference model (shufflenet_v2_x0_5): the ratios of their medians and
    their spread, which a machine whose speed drifts moves alike."""
    model = build_model(model_yaml, num_classes=NUM_CLASSES)
    values = [onnx_latency_ms(model, img_size) for _ in range(repeats)]
    reference = build_model(REFERENCE, num_classes=NUM_CLASSES)
    ratios = [_paired_ratio(model, reference, img_size) for _ in range(repeats)]
    return [
        f"{model_yaml.name} at {img_size} px, {repeats} measurements (ms): "
        + " ".join(f"{v:.3f}" for v in values)
        + f"; {_spread(values)}",
        f"the same / {REFERENCE.name}, their runs in turn: "
        + " ".join(f"{r:.3f}" for r in ratios)
        + f"; {_spread(ratios)}",
    ]


def _paired_ratio(
    model: torch.nn.Module, reference: torch.nn.Module, img_size: int, runs: int = 200
) -> float:
    """Median latency of `model` over that of `reference`, their runs alternating."""
    feed = {"images": np.zeros((1, 3, img_size, img_size), np.float32)}
    sessions = [onnx_session(onnx_graph(net, img_size), threads=1) for net in (model, reference)]
    ms = interleaved_ms(
        {str(i): (lambda s=s: s.run(None, feed)) for i, s in enumerate(sessions)},
        rounds=runs,
        block=1,
    )
    return ms["0"] / ms["1"]


def sampled_models(samples: int, seed: int) -> list[tuple[dict, int]]:
    """(model config, img size) of `samples` random draws from the architecture space."""
    bounds = load_architecture_bounds(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(samples):
        trial = study.ask()
        size = suggest_img_size(trial, bounds, 32)
        drawn.append((suggest_model_config(trial, bounds, NUM_CLASSES, img_size=size), size))
        study.tell(trial, 0.0)
    return drawn


def study_models(name: str, storage: str | None) -> list[tuple[dict, int]]:
    """(model config, img size) of every trial of a finished study that stored its model."""
    study = open_existing_study(name, storage or default_url(name))
    return [
        (yaml.safe_load(t.user_attrs["model_yaml"]), int(t.user_attrs["img_size"]))
        for t in study.get_trials(deepcopy=False)
        if "model_yaml" in t.user_attrs and "img_size" in t.user_attrs
    ]


def dominant_block(config: dict) -> str:
    """The block type with most rows (stem and head convs aside): what a model is made of."""
    rows = [row[1] for row in config["backbone"][1:-1] if not MODULES[row[1]].keeps_channels]
    counts = Counter(MODULES[name].short_name for name in rows)
    return counts.most_common(1)[0][0] if counts else "Conv"


def proxy(models: Sequence[tuple[dict, int]]) -> list[str]:
    """Rank correlation of MACs (and params) with measured latency, overall and per block."""
    macs, params, latency, blocks, seconds = [], [], [], [], []
    for config, size in models:
        model = build_model(config)
        cost = count_cost(model, size)
        macs.append(cost.macs)
        params.append(cost.params)
        start = time.perf_counter()
        latency.append(onnx_latency_ms(model, size))
        seconds.append(time.perf_counter() - start)
        blocks.append(dominant_block(config))
    lines = [
        f"{len(models)} models: MACs {min(macs) / 1e6:.2f}M-{max(macs) / 1e6:.2f}M, latency "
        f"{min(latency):.3f}-{max(latency):.3f} ms; one measurement (export, session, "
        f"runs) takes {statistics.median(seconds):.2f} s (median; max {max(seconds):.2f} s)",
        f"MACs vs latency:   Spearman {spearman(macs, latency):+.3f}  "
        f"Kendall {kendall(macs, latency):+.3f}",
        f"params vs latency: Spearman {spearman(params, latency):+.3f}  "
        f"Kendall {kendall(params, latency):+.3f}",
        f"{'dominant block':<15} {'models':>6} {'us per MMAC':>12} {'Spearman':>9}",
    ]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, block in enumerate(blocks):
        groups[block].append(i)
    for block, idx in sorted(groups.items()):
        per_mmac = statistics.median(1e3 * latency[i] / (macs[i] / 1e6) for i in idx)
        rho = spearman([macs[i] for i in idx], [latency[i] for i in idx]) if len(idx) > 2 else 0
        lines.append(f"{block:<15} {len(idx):>6} {per_mmac:>12.1f} {rho:>+9.3f}")
    return lines


def study_time(trials: int, seed: int) -> list[str]:
    """The default study with each second objective, side by side, one thread each: wall times,
    their ratio and what each study did with its trials."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        runs = {}
        for objective in ("macs", "latency"):
            storage = f"sqlite:///{Path(tmp) / objective}.db"
            command = [
                sys.executable,
                "-m",
                "search.architecture",
                "--study-name",
                objective,
                "--storage",
                storage,
                "--trials",
                str(trials),
                "--seed",
                str(seed),
                "--objectives",
                f"f1,{objective}",
            ]
            log = open(Path(tmp) / f"{objective}.log", "w")  # noqa: SIM115 (closed below)
            runs[objective] = (
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
                log,
                storage,
                time.perf_counter(),
            )
        lines, seconds = [], {}
        for objective, (process, log, storage, start) in runs.items():
            code = process.wait()
            seconds[objective] = time.perf_counter() - start
            log.close()
            if code != 0:
                raise SystemExit(
                    f"the {objective} study failed:\n"
                    + (Path(tmp) / f"{objective}.log").read_text()[-2000:]
                )
            states = Counter(
                _trial_outcome(t)
                for t in optuna.load_study(study_name=objective, storage=storage).trials
            )
            lines.append(
                f"--objectives f1,{objective:<8} {seconds[objective]:7.0f} s  "
                + ", ".join(f"{n} {what}" for what, n in sorted(states.items()))
            )
    ratio = seconds["latency"] / seconds["macs"]
    verdict = "within" if abs(ratio - 1) <= 0.15 else "OVER"
    lines.append(
        f"latency study / MACs study: x{ratio:.2f} ({verdict} the 15% target); "
        f"{trials} trials each, side by side, one thread each"
    )
    return lines


def _trial_outcome(trial: optuna.trial.FrozenTrial) -> str:
    if "infeasible" in trial.user_attrs:
        return "over budget"
    if trial.state == optuna.trial.TrialState.PRUNED:
        return "stopped early"
    return "trained" if trial.state == optuna.trial.TrialState.COMPLETE else trial.state.name


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model", type=Path, default=ROOT / "configs" / "model" / "mobilenet_v3_small.yaml"
    )
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--samples", type=int, default=60, help="space draws (without a study)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--study-name", help="use this study's trials instead of space draws")
    parser.add_argument("--storage", help="the study's storage URL")
    parser.add_argument(
        "--study-trials",
        type=int,
        default=0,
        help="also time a MACs and a latency study of this many trials",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.repeats:
        print("\n".join(repeatability(args.model, args.img_size, args.repeats)))
    models = (
        study_models(args.study_name, args.storage)
        if args.study_name
        else sampled_models(args.samples, args.seed)
    )
    if models:
        print("\n".join(proxy(models)))
    if args.study_trials:
        print("\n".join(study_time(args.study_trials, args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

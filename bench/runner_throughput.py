"""Training throughput of the runner against its ceiling and against the old data pipeline.

For each shipped model YAML and image size, one training epoch on the real data is timed 3 ways:
  ceiling  the same model, batch and optimiser on random tensors already in memory (target: the
           runner reaches >= 0.9 of it: the data pipeline should cost nothing beyond the model);
  runner   runner.training.loop.fit on the decode-once cache, with the data YAML's augmentation;
  old      torchvision ImageFolder + PIL transforms + DataLoader with 2 workers (the old way).
Then a whole brief trial (data preparation + a few epochs + evaluation) is timed twice: with a
cold cache, then warm. Run from the repository root:

    python bench/runner_throughput.py [--data configs/data/trashnet_brief.yaml] [--epochs 3]
        [--threads N]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from runner.data.config import DataConfig
from runner.data.sources import load_data
from runner.data.splits import Splits, load_splits
from runner.training.loop import FitOptions, fit
from runner.training.schedule import build_optimizer
from space import build_model, count_cost

MODELS = ("configs/model/mobilenet_v3_small.yaml", "configs/model/shufflenet_v2_x0_5.yaml")
SIZES = (32, 64)


class SquarePad:
    """The competition's SquarePad: pad a PIL image to a centred square with black."""

    def __call__(self, image: Image.Image) -> Image.Image:
        from torchvision.transforms import functional

        w, h = image.size
        side = max(w, h)
        left, top = (side - w) // 2, (side - h) // 2
        return functional.pad(image, [left, top, side - w - left, side - h - top], 0, "constant")


def fresh_model(path: str, num_classes: int) -> nn.Module:
    """The same initial weights for every measurement."""
    torch.manual_seed(0)
    return build_model(path, num_classes=num_classes)


def ceiling_rate(model: nn.Module, cfg: DataConfig, size: int, n_images: int, k: int) -> float:
    """Images/s of training steps on normalised random tensors already in memory."""
    steps = n_images // cfg.batch_size
    x = torch.randn(steps, cfg.batch_size, 3, size, size)
    y = torch.randint(0, k, (steps, cfg.batch_size))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    optimizer = build_optimizer(model, cfg)
    model.train()
    start = 0.0
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x[i % steps]).flatten(1), y[i % steps]).backward()
        optimizer.step()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def runner_rate(model: nn.Module, splits: Splits, cfg: DataConfig) -> float:
    """Images/s of fit()'s second epoch (the first warms up); validation cut to one batch."""
    brief = dataclasses.replace(splits, val_x=splits.val_x[:64], val_y=splits.val_y[:64])
    result = fit(model, brief, cfg, FitOptions(epochs=2, progress=False))
    images = len(splits.train_y) // cfg.batch_size * cfg.batch_size
    return images / result.history[-1].seconds


def old_way_rate(model: nn.Module, cfg: DataConfig, size: int) -> float:
    """Images/s of one epoch through ImageFolder + PIL transforms + DataLoader(2 workers)."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            SquarePad(),
            transforms.Resize((size, size)),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(0.1, 0.1, 0.1),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )
    data = datasets.ImageFolder(str(Path(cfg.data_path) / "train"), transform=transform)
    loader = torch.utils.data.DataLoader(
        data, batch_size=cfg.batch_size, shuffle=True, num_workers=2, drop_last=True
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    optimizer = build_optimizer(model, cfg)
    model.train()
    start, images = time.perf_counter(), 0
    for x, y in loader:
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x).flatten(1), y).backward()
        optimizer.step()
        images += len(y)
    return images / (time.perf_counter() - start)


def brief_trial(path: str, cfg: DataConfig, cache: Path, epochs: int) -> tuple[float, float]:
    """Seconds of a whole brief trial (load data, build, count MACs, train, evaluate), and F1."""
    start = time.perf_counter()
    splits = load_splits(cfg, cache_dir=cache, progress=False)
    model = fresh_model(path, len(splits.classes))
    count_cost(model, cfg.img_size)
    result = fit(model, splits, cfg, FitOptions(epochs=epochs, progress=False))
    return time.perf_counter() - start, result.f1


def throughput_table(cfg: DataConfig, cache: Path) -> None:
    """Print images/s and ratios for every model and size."""
    print(
        f"{'model':<22}{'px':>4}{'ceiling':>9}{'runner':>9}{'old':>9}"
        f"{'runner/ceiling':>16}{'runner/old':>12}"
    )
    for size in SIZES:
        sized = dataclasses.replace(cfg, img_size=size)
        splits = load_splits(sized, cache_dir=cache, progress=False)
        k, n = len(splits.classes), len(splits.train_y)
        for path in MODELS:
            ceiling = ceiling_rate(fresh_model(path, k), sized, size, n, k)
            ours = runner_rate(fresh_model(path, k), splits, sized)
            old = old_way_rate(fresh_model(path, k), sized, size)
            print(
                f"{Path(path).stem:<22}{size:>4}{ceiling:>9.0f}{ours:>9.0f}{old:>9.0f}"
                f"{ours / ceiling:>16.2f}{ours / old:>12.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="configs/data/trashnet_brief.yaml", type=Path)
    parser.add_argument("--epochs", default=3, type=int, help="epochs of the brief trial")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cfg = load_data(args.data)
    print(
        f"torch threads {torch.get_num_threads()}, batch {cfg.batch_size}, "
        f"augmentation {cfg.aug_train}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        for path in MODELS:
            cold = brief_trial(path, cfg, cache / Path(path).stem, args.epochs)
            warm = brief_trial(path, cfg, cache / Path(path).stem, args.epochs)
            print(
                f"brief trial {Path(path).stem} ({cfg.img_size} px, {args.epochs} epochs): "
                f"cold cache {cold[0]:.1f} s, warm cache {warm[0]:.1f} s "
                f"(warm/cold {warm[0] / cold[0]:.2f}), val macro F1 {warm[1]:.3f}"
            )
        throughput_table(cfg, cache / "throughput")


if __name__ == "__main__":
    main()

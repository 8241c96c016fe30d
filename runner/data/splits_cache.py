"""The decoded data of one worker, loaded once and shared by every trial it runs."""

from __future__ import annotations

import dataclasses
import os

from runner.data.config import DataConfig
from runner.data.splits import Splits, load_splits


@dataclasses.dataclass
class SplitsCache:
    """Splits per image size: an architecture study uses one size, a hyper study a few.

    Decoding is the slow part of a trial that has not started training yet, so each size is
    decoded once per worker (and once per machine through the runner's on-disk cache).
    """

    cfg: DataConfig
    cache_dir: str | os.PathLike[str] | None = None
    splits: dict[int, Splits] = dataclasses.field(default_factory=dict)

    def get(self, img_size: int) -> Splits:
        """The splits at `img_size`, decoding them on first use."""
        if img_size not in self.splits:
            self.splits[img_size] = load_splits(
                self.cfg, img_size=img_size, cache_dir=self.cache_dir
            )
        return self.splits[img_size]

"""A trial's model as YAML text, each row annotated as YOLOv5 does (# 3: 24ch /8)."""

from __future__ import annotations

import torch

from space import SpaceModel, dump_model_config


@torch.no_grad()
def row_comments(model: SpaceModel, img_size: int) -> list[str]:
    """'index: channels /downsampling' per backbone row, from one plain forward pass.

    A plain pass, not model.summary(): the per-row MAC counts there cost a second per trial.
    """
    was_training = model.training
    model.eval()
    x = torch.zeros(1, model.input_channel, img_size, img_size)
    comments = []
    for index, row in enumerate(model.rows):
        x = row(x)
        side = f" /{img_size // x.shape[-1]}" if x.ndim == 4 else ""
        comments.append(f"{index}: {x.shape[1]}ch{side}")
    model.train(was_training)
    return comments


def model_yaml_text(model: SpaceModel, img_size: int) -> str:
    """The model's config as YAML that rebuilds it exactly, with per-row shape comments."""
    return dump_model_config(model.to_config(), row_comments(model, img_size))

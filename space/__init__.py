"""Model space: blocks, the YAML model builder, cost counting and search spaces."""

from space.builder import build_model, decode, instantiate
from space.config_io import dump_model_config, load_model_config
from space.cost import Cost, count_cost, flop_counter_macs, thop_conv_linear_macs
from space.errors import HeadRoundingWarning, ModelConfigError, UserError
from space.layers import make_divisible
from space.model import RowSummary, SpaceModel
from space.registry import MODULES, ModuleSpec
from space.spec import BlockSpec

__all__ = [
    "MODULES",
    "BlockSpec",
    "Cost",
    "HeadRoundingWarning",
    "ModelConfigError",
    "ModuleSpec",
    "RowSummary",
    "SpaceModel",
    "UserError",
    "build_model",
    "count_cost",
    "decode",
    "dump_model_config",
    "flop_counter_macs",
    "instantiate",
    "load_model_config",
    "make_divisible",
    "thop_conv_linear_macs",
]

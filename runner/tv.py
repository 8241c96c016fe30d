"""Import torchvision where its compiled extension cannot load (CPU-only torch).

The registry's torchvision wheel is built against CUDA; on a CPU build of torch its C++ extension
fails to load and its Python meta registrations then refer to ``torchvision::nms``, which was
never defined, so ``import torchvision`` raises. Defining the two missing operator schemas first
makes the pure-Python parts (models, transforms.v2) importable. Where the extension loads (a CUDA
machine with a matching torch) this module does nothing but import torchvision.
"""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import torch

_MISSING_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARIES: list[torch.library.Library] = []  # kept alive: dropping a Library unregisters it


def _extension_loads() -> bool:
    """Try to load torchvision's compiled ops (``_C``) the way torchvision itself does."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("torchvision is not installed: pip install torchvision")
    for folder in spec.submodule_search_locations:
        for lib in Path(folder).glob("_C*.so"):
            try:
                torch.ops.load_library(str(lib))
            except OSError:
                return False
            return True
    return False


def import_torchvision() -> types.ModuleType:
    """Return the torchvision module, defining missing operator schemas when needed."""
    import sys

    if "torchvision" in sys.modules:
        return sys.modules["torchvision"]
    if not _extension_loads():
        lib = torch.library.Library("torchvision", "FRAGMENT")
        for schema in _MISSING_SCHEMAS.values():
            try:
                lib.define(schema)
            except RuntimeError:  # already defined by a partially loaded extension
                pass
        _LIBRARIES.append(lib)
    import torchvision

    return torchvision

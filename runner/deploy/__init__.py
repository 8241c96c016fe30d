"""Deploy: a trained run as ONNX (float and int8) and compressed to a MACs target.

The ONNX and compression libraries come with the `deploy` extra and are imported where they are
used, so this facade imports without them; compression lives in runner.deploy.compression.
"""

from runner.deploy.onnx_model import export_onnx, onnx_logits, quantize_int8

__all__ = ["export_onnx", "onnx_logits", "quantize_int8"]

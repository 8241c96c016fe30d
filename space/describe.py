"""``python -m space.describe model.yaml --img-size 64``: a per-row table of shapes, params, MACs.

Shows where a model spends its MACs before any training, so a user can see what to shrink.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from litenas.resources import config_file
from litenas.user_input import add_debug_option, exit_on_user_error, positive_int
from space.builder import build_model
from space.cost import count_cost
from space.errors import format_value
from space.latency import DEFAULT_BLOCKS, onnx_latency_ms
from space.model import RowSummary

HEADERS = ("row", "repeat", "module", "args", "output", "params", "MACs")
RIGHT = {"row", "repeat", "params", "MACs"}
LATENCY_REPEATS = 200


def _cells(record: RowSummary) -> tuple[str, ...]:
    """One table line's cells: shapes without the batch axis, counts with thousands separators."""
    output = "x".join(str(d) for d in record.out_shape[1:])
    return (
        str(record.index),
        str(record.repeat),
        record.module,
        format_value(record.args),
        output,
        f"{record.params:,}",
        f"{record.macs:,}",
    )


def format_table(records: Sequence[RowSummary], total_params: int, total_macs: int) -> str:
    """Align the per-row cells under ``HEADERS`` and add a totals line."""
    rows = [HEADERS, *(_cells(r) for r in records)]
    total = ("", "", "total", "", "", f"{total_params:,}", f"{total_macs:,}")
    widths = [max(len(row[i]) for row in [*rows, total]) for i in range(len(HEADERS))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if h in RIGHT else c.ljust(w)
            for c, w, h in zip(cells, widths, HEADERS, strict=True)
        ).rstrip()

    rule = "-" * len(line(rows[0]))
    return "\n".join([line(rows[0]), rule, *map(line, rows[1:]), rule, line(total)])


def describe(
    path: str, img_size: int, num_classes: int | None = None, *, latency: bool = False
) -> str:
    """The full report for one model YAML: title, table and totals (and measured latency)."""
    model = build_model(path, num_classes=num_classes)
    records = model.summary(img_size)
    cost = count_cost(model, img_size)
    title = f"{path} at {img_size}x{img_size}, {model.specs[-1].out_chs} outputs"
    report = f"{title}\n{format_table(records, cost.params, cost.macs)}"
    if latency:
        ms = onnx_latency_ms(model, img_size, repeats=LATENCY_REPEATS)
        report += (
            f"\nlatency {ms:.3f} ms: ONNX Runtime on this CPU, batch 1, one thread, the "
            f"fastest of {DEFAULT_BLOCKS} medians of {LATENCY_REPEATS} runs"
        )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; a bad config prints its error (file, row, fix) and exits with status 2."""
    parser = argparse.ArgumentParser(prog="python -m space.describe", description=__doc__)
    parser.add_argument(
        "config", type=config_file, help="model YAML ([repeat, Module, [args]] rows)"
    )
    parser.add_argument(
        "--img-size", type=positive_int, default=64, help="square input size (default 64)"
    )
    parser.add_argument(
        "--num-classes",
        type=positive_int,
        default=None,
        help="class count for the final FixedConv/Linear row",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="also measure batch-1 latency on this CPU (ONNX Runtime, one thread)",
    )
    add_debug_option(parser)
    args = parser.parse_args(argv)

    def run() -> int:
        print(describe(args.config, args.img_size, args.num_classes, latency=args.latency))
        return 0

    return exit_on_user_error(run, args.debug)


if __name__ == "__main__":
    sys.exit(main())

"""The `litenas` command: one sub-command per job, each the same as its `python -m` module.

`litenas search --trials 50` runs `search.architecture`'s main with `--trials 50`, so flags,
output and exit codes are those of the module; the module is imported only when its
sub-command runs, which keeps `litenas --help` fast and this package below the others.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# sub-command -> (module whose main() it runs, what it does)
COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("search.architecture", "search architectures for macro F1 against MACs"),
    "hyper": ("search.hyper", "search the training recipe of a fixed model"),
    "export": ("search.export", "write a study's front as model/data YAMLs, a CSV and plots"),
    "finalize": ("search.finalize", "train the front fully, score it on held-out images"),
    "replay": ("search.replay", "retrain one trial and check it gives the same F1"),
    "train": ("runner.train", "train a model YAML on a data YAML (rerun to resume)"),
    "evaluate": ("runner.evaluate", "score a run on labelled images"),
    "predict": ("runner.predict", "label a folder of images into a CSV"),
    "onnx": ("runner.export", "export a run to ONNX (and int8), checked on real images"),
    "compress": ("runner.compress", "prune or Tucker-factor a run to a MACs target"),
    "describe": ("space.describe", "a model YAML's rows with shapes, params and MACs"),
}


def usage() -> str:
    """The command list `litenas`, `litenas -h` and an unknown sub-command print."""
    width = max(map(len, COMMANDS))
    lines = [
        f"  {name:<{width}}  {what} (python -m {module})"
        for name, (module, what) in COMMANDS.items()
    ]
    return "\n".join(
        [
            "usage: litenas COMMAND [options]  (litenas COMMAND --help lists its options)",
            "",
            "commands:",
            *lines,
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sub-command's module main() with the remaining arguments; its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        from litenas.user_input import did_you_mean

        hint = did_you_mean(name, COMMANDS, template=" (did you mean {!r}?)")
        print(f"litenas: unknown command {name!r}{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)

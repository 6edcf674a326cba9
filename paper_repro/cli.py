"""``ratebound repro``: reproduce the papers' experiments and write their tables.

``ratebound repro [dinl|expert-bank|aggregation|all] [--quick] [--out DIR] [--seeds N]
[--bank-dataset auto|digits|fashion-mnist] [--data-path DIR]``
writes ``DIR/<paper>/table.md``, ``table.json`` and figures for each target.
Heavy imports (torch, the trainer) happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

# target -> (module, output folder)
TARGETS = {
    "dinl": ("paper_repro.dinl", "dinl"),
    "expert-bank": ("paper_repro.expert_bank", "expert_bank"),
    "aggregation": ("paper_repro.aggregation", "aggregation"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``repro`` options: ``target``, ``--quick``, ``--out``, ``--seeds``, the bank's images, ``--no-progress``."""
    parser.add_argument("target", nargs="?", default="all", choices=[*TARGETS, "all"],
                        help="which paper to reproduce (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="small settings: fewer seeds, epochs and training sets (about 3 minutes for all)")
    parser.add_argument("--out", default="repro_out", metavar="DIR",
                        help="output directory (default: repro_out)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="masks per supersample of the D-INL experiment (default: 40, or 12 with --quick)")
    parser.add_argument("--bank-dataset", default="auto", choices=["auto", "digits", "fashion-mnist"],
                        help="images of the expert-bank and D-INL experiments (default auto: Fashion-MNIST where "
                             "Debian's dataset-fashion-mnist is installed, else scikit-learn's digits)")
    parser.add_argument("--data-path", default=None, metavar="DIR",
                        help="folder of the Fashion-MNIST idx files (default: the Debian package's)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    # A smaller configuration for the test suite; it runs the same code as --quick.
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)


def settings_for(module, args: argparse.Namespace):
    """The module's settings for the command's flags (``--tiny`` implies ``--quick``)."""
    if getattr(args, "tiny", False) and hasattr(module.Settings, "tiny"):
        settings = module.Settings.tiny()
    elif args.quick or getattr(args, "tiny", False):
        settings = module.Settings.quick()
    else:
        settings = module.Settings.full()
    if args.seeds is not None and hasattr(settings, "with_seeds"):
        settings = settings.with_seeds(args.seeds)
    if hasattr(settings, "with_dataset"):
        settings = settings.with_dataset(getattr(args, "bank_dataset", "auto"), getattr(args, "data_path", None))
    return settings


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse, before any work, a ``--data-path`` that is no folder and an ``--out`` that is a file.

    An explicit ``--data-path`` must exist (else ``auto`` would quietly fall back
    to the digits); ``--out`` is created as needed.
    """
    data_path = getattr(args, "data_path", None)
    if data_path is not None and not Path(data_path).is_dir():
        raise ValueError(f"--data-path {data_path}: no such directory (the folder of the Fashion-MNIST idx files)")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out}: exists and is not a directory")


def run(args: argparse.Namespace) -> int:
    """Reproduce each requested paper into ``args.out/<paper>/``; print where each table went.

    Raises ``ValueError`` for an invalid ``--seeds``, a ``--data-path`` that is
    no directory or an ``--out`` that is a file (the command turns it into one
    line on stderr and exit status 2).
    """
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    _check_paths(args)
    out = Path(args.out)
    targets = list(TARGETS) if args.target == "all" else [args.target]
    for target in targets:
        module_name, folder = TARGETS[target]
        module = importlib.import_module(module_name)
        start = time.perf_counter()
        module.reproduce(out / folder, settings_for(module, args), progress=not args.no_progress)
        print(f"{target}: {out / folder / 'table.md'} ({time.perf_counter() - start:.1f} s)")
    return 0

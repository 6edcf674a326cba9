"""The ``ratebound`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (torch, the trainer) happen inside ``run``
so that ``ratebound --help`` is instant. Any :class:`ValueError` or
:class:`OSError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
_SUBCOMMANDS = {
    "repro": ("paper_repro.cli", "reproduce the D-INL, expert-bank and aggregation papers"),
    "bound": ("ratebound._cli_bound", "every bound the logged runs allow"),
    "curve": ("ratebound._cli_curve", "rate-distortion, IB or capacity curves from .npy/.csv"),
    "mi": ("ratebound._cli_mi", "estimate mutual information between two sample files"),
    "train": ("inl.cli", "train one INL configuration and append it to a run log"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ratebound", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, help_text) in _SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)  # one distribution: every module is installed
        mod.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (ValueError, OSError) as exc:
        print(f"ratebound {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ratebound {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

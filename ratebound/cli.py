"""The ``ratebound`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (torch, the trainer) happen inside ``run``
so that ``ratebound --help`` is instant. Any :class:`ValueError` or
:class:`OSError` becomes one line on stderr and exit status 2; a warning becomes
one line ``ratebound CMD: warning: ...`` on stderr (each distinct one once); a
closed stdout (``ratebound ... | head``) ends the command quietly with status
141, as a process killed by SIGPIPE. ``python -m ratebound`` is the same command.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings
from importlib import metadata

#: Exit status of a command whose reader closed stdout (128 + SIGPIPE), as for ``yes | head``.
BROKEN_PIPE_STATUS = 141

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


def _version() -> str:
    """The installed distribution's version (from its metadata)."""
    try:
        return metadata.version("ratebound")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ratebound", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, help_text) in _SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)  # one distribution: every module is installed
        mod.add_arguments(sub_parser)
        sub_parser.set_defaults(_run=mod.run)
    return parser


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Show each distinct warning once, as one line naming the command (not file, line and source)."""
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).split())
        if issubclass(category, RuntimeWarning) and " encountered in " in text:  # numpy's floating-point state
            text = f"floating-point trouble inside the computation ({text}); check the result"
        if (category, text) not in seen:
            seen.add((category, text))
            print(f"ratebound {command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():  # the filters stay as they are (-W, PYTHONWARNINGS, a test's "error")
        warnings.showwarning = show
        yield


def _quiet_broken_pipe() -> int:
    """The reader closed stdout: send what is left to devnull so that exit does not complain."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):  # stdout may be no real file (a test's buffer)
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_STATUS


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _one_line_warnings(args.command):
            status = int(args._run(args) or 0)
            sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (ValueError, OSError) as exc:
        print(f"ratebound {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ratebound {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

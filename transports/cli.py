"""The ``esmtp`` command line (also ``python -m transports``): ``esmtp serve`` and ``esmtp send``.

The contract (options, defaults, exit codes) is in the project's DESIGN.md. ``serve`` lives in
:mod:`transports._serve_cli`; ``send`` in :mod:`transports._send_cli`, imported only when the
``send`` command runs. Each module offers ``main(argv: list[str]) -> int`` that parses the
arguments after the command name (and handles ``--help``) and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

_COMMANDS = {
    "serve": ("transports._serve_cli", "run an SMTP/LMTP server that stores what it receives"),
    "send": ("transports._send_cli", "send a message to an SMTP/LMTP server"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="esmtp",
        description="ESMTP server and client built on esmtp-core.",
        epilog="Run 'esmtp COMMAND --help' for the options of a command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, summary) in _COMMANDS.items():
        # Each command parses its own options (its module may be absent, see main()).
        command = commands.add_parser(name, help=summary, add_help=False)
        command.add_argument("arguments", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``esmtp`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _COMMANDS:
        _parser().parse_args(args)  # prints usage or help, and exits
        return 2  # pragma: no cover - parse_args exits for anything not a command
    module_name = _COMMANDS[args[0]][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(
            f"esmtp {args[0]}: this command is not available in this installation "
            f"({module_name} is missing)",
            file=sys.stderr,
        )
        return 2
    status: int = module.main(args[1:])
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

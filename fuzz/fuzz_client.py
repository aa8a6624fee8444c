"""atheris fuzzer for :class:`esmtp_core.ClientConnection`.

Run from the repository root (see ``fuzz/README.md``)::

    python -m fuzz.fuzz_client fuzz/corpus/client -max_total_time=600

Each input is a fuzz case (``fuzz/harness.py``): configuration flags, the seed of a scripted
application choosing commands after every event, a split mode and the server's byte stream.
Only :class:`~esmtp_core.RemoteProtocolError` (a hostile server) and
:class:`~esmtp_core.LocalProtocolError` (the core refusing a command the script tried) may leave
the client core; anything else, a bare CR or LF on the wire or unbounded buffering is a crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["esmtp_core"]):
    import esmtp_core  # noqa: F401  (instrumented before the harness imports it)

from fuzz.harness import Case, run_client_case


def test_one_input(data: bytes) -> None:
    """libFuzzer entry point: one client session."""
    run_client_case(Case.decode(data))


def main() -> None:
    """Hand control to libFuzzer with the command-line arguments."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

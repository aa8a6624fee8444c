"""atheris fuzzer for :class:`esmtp_core.ServerConnection`.

Run from the repository root (see ``fuzz/README.md``)::

    python -m fuzz.fuzz_server fuzz/corpus/server -max_total_time=600

Each input is a fuzz case (``fuzz/harness.py``): configuration flags, a mask of accept/reject
answers, a split mode and the client's byte stream. Only
:class:`~esmtp_core.RemoteProtocolError` may leave the server core; anything else, a hang
(``PAUSED`` with nothing pending), a malformed reply line or an unbounded buffer is a crash.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["esmtp_core"]):
    import esmtp_core  # noqa: F401  (instrumented before the harness imports it)

from fuzz.harness import Case, run_server_case


def test_one_input(data: bytes) -> None:
    """libFuzzer entry point: one server session."""
    run_server_case(Case.decode(data))


def main() -> None:
    """Hand control to libFuzzer with the command-line arguments."""
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

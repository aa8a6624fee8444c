"""Profile one benchmark workload with cProfile (to find out *why* a ratio is what it is).

::

    python -m benchmarks.profile data   --size 1048576 [--body realistic|dots] [--chunk 65536]
                                        [--mode DATA|BDAT|encode]
    python -m benchmarks.profile server asyncio [--size 1024] [--messages 2000] [--sessions 20]
    python -m benchmarks.profile client esmtp-sync [--size 1024] [--messages 2000]

``data`` runs our core in memory; ``server`` starts ``python -m benchmarks.serve KIND --profile``
(the main thread only: use a single-threaded server, not ``threads``) and drives it with
``smtp-source``; ``client`` sends into a fresh ``smtp-sink`` in this process. Prints the top
functions by own time (``--sort cumulative`` for inclusive time) and the plain-run rate.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import io
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from .bodies import chunks, dot_heavy_body, realistic_body, stuff
from .core_drivers import client_in_body, encode_into, feed_server, server_in_data_state
from .core_drivers import server_in_transaction as server_ready
from .peers import PythonServer, SmtpSink, run_smtp_source
from .send import _PRELOAD, KINDS, make_message

__all__ = ["main"]


def _print(profiler: cProfile.Profile, sort: str, top: int) -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(sort).print_stats(top)
    print(out.getvalue())


def profile_data(args: argparse.Namespace) -> None:
    body = (dot_heavy_body if args.body == "dots" else realistic_body)(args.size)
    if args.mode == "encode":
        pieces = chunks(body, args.chunk)

        def prepare() -> Any:
            return client_in_body()

        def run(state: Any) -> None:
            encode_into(state, pieces)
    else:
        wire = stuff(body) if args.mode == "DATA" else b"BDAT %d LAST\r\n" % len(body) + body
        pieces = chunks(wire, args.chunk)

        def prepare() -> Any:
            return server_in_data_state() if args.mode == "DATA" else server_ready()

        def run(state: Any) -> None:
            feed_server(state, pieces)

    passes = max(1, (32 << 20) // max(args.size, 1))
    states = [prepare() for _ in range(passes)]
    start = time.process_time()
    for state in states:
        run(state)
    spent = time.process_time() - start
    print(f"{args.mode} {args.body} {args.size} octets in {args.chunk}-octet chunks: "
          f"{args.size * passes / spent / 1e9:.3f} GB/s of CPU without the profiler")
    states = [prepare() for _ in range(passes)]
    profiler = cProfile.Profile()
    profiler.enable()
    for state in states:
        run(state)
    profiler.disable()
    _print(profiler, args.sort, args.top)


def profile_server(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "server.prof"
        server = PythonServer(args.kind, "--profile", str(stats_file))
        try:
            before = server.cpu()
            times = run_smtp_source(server.port, messages=args.messages, size=args.size,
                                    sessions=args.sessions)
            cpu = server.cpu() - before
        finally:
            server.close()
        print(f"{args.kind}: {args.messages / times.wall:,.0f} msg/s, "
              f"{cpu / args.messages * 1e6:,.0f} server CPU µs/msg (under the profiler)")
        out = io.StringIO()
        pstats.Stats(str(stats_file), stream=out).strip_dirs().sort_stats(args.sort).print_stats(
            args.top)
        print(out.getvalue())


def profile_client(args: argparse.Namespace) -> None:
    for module in _PRELOAD[args.kind]:
        importlib.import_module(module)
    message = make_message(args.size)
    send = KINDS[args.kind]
    with SmtpSink() as sink:
        start, cpu = time.perf_counter(), time.process_time()
        send(sink.port, message, args.messages)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"{args.kind}: {args.messages / wall:,.0f} msg/s, "
              f"{cpu / args.messages * 1e6:,.0f} client CPU µs/msg without the profiler")
        profiler = cProfile.Profile()
        profiler.enable()
        send(sink.port, message, args.messages)
        profiler.disable()
    _print(profiler, args.sort, args.top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    sub = parser.add_subparsers(dest="what", required=True)
    data = sub.add_parser("data", help="the core's DATA/BDAT decoder or the DATA encoder")
    data.add_argument("--size", type=int, default=1 << 20)
    data.add_argument("--body", choices=["realistic", "dots"], default="realistic")
    data.add_argument("--chunk", type=int, default=65536)
    data.add_argument("--mode", choices=["DATA", "BDAT", "encode"], default="DATA")
    server = sub.add_parser("server", help="a benchmark server under smtp-source")
    server.add_argument("kind")
    server.add_argument("--size", type=int, default=1024)
    server.add_argument("--messages", type=int, default=2000)
    server.add_argument("--sessions", type=int, default=20)
    client = sub.add_parser("client", help="a client into smtp-sink, in this process")
    client.add_argument("kind", choices=sorted(KINDS))
    client.add_argument("--size", type=int, default=1024)
    client.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    {"data": profile_data, "server": profile_server, "client": profile_client}[args.what](args)


if __name__ == "__main__":
    main()

"""The ``tether`` command line: ``demo``, ``get``, ``probe``, ``bench``.

Colour and live progress on a terminal, plain text when piped, one JSON document with
``--json`` (``tether --json get URL``; ``probe`` and ``bench`` take ``--json`` after the
command too; ``get``'s own ``--json DATA`` is a JSON request body, as in curl).
"""

from __future__ import annotations

import argparse
import sys

from .output import Output
from .tlsargs import add_tls_arguments

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from . import bench, get, probe

    parser = argparse.ArgumentParser(prog="tether", description="tether HTTP client tools")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo", help="show connection reuse, idle close and the keep-alive race on a local server"
    )
    get_parser = commands.add_parser("get", help="send requests over one session (curl-like)")
    get.add_arguments(get_parser)
    add_tls_arguments(get_parser)
    probe_parser = commands.add_parser(
        "probe", help="measure a server's keep-alive behaviour and recommend client settings"
    )
    probe.add_arguments(probe_parser)
    add_tls_arguments(probe_parser)
    bench_parser = commands.add_parser("bench", help="a bounded load run over one session")
    bench.add_arguments(bench_parser)
    add_tls_arguments(bench_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tether`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    json_mode = bool(args.json or getattr(args, "report_json", False))
    json_mode |= bool(getattr(args, "json_out", False))
    out = Output(json_mode=json_mode)
    try:
        if args.command == "demo":
            from .demo import run_demo

            return run_demo()
        if args.command == "get":
            from .get import run_get

            return run_get(args, out)
        if args.command == "probe":
            from .probe import run_probe

            return run_probe(args, out)
        if args.command == "bench":
            from .bench import run_bench

            return run_bench(args, out)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

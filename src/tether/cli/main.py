"""The ``tether`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tether`` command."""
    parser = argparse.ArgumentParser(prog="tether", description="tether HTTP client tools")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo", help="show connection reuse, idle close and the keep-alive race on a local server"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo()
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())

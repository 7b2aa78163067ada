"""``--insecure`` and ``--cacert``, shared by the commands that make requests."""

from __future__ import annotations

import argparse

from ..io.tls import VerifyTypes

__all__ = ["add_tls_arguments", "verify_from"]


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the TLS verification options to ``parser``."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-k", "--insecure", action="store_true", help="do not verify the server's certificate"
    )
    group.add_argument("--cacert", metavar="FILE", help="verify against the CAs in FILE (PEM)")


def verify_from(args: argparse.Namespace) -> VerifyTypes:
    """What to pass as ``verify=``."""
    if args.insecure:
        return False
    return str(args.cacert) if args.cacert else True

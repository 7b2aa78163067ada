"""HTTP/2 connection coalescing (RFC 9113 §9.1.1): may a request for one host name ride a
connection made to another?

Only when the connection is HTTP/2 over *verified* TLS, its certificate covers the new name
(RFC 6125 matching: a wildcard stands for exactly one left-most label), and the new name
resolves to the address the connection is connected to. A 421 (Misdirected Request) from the
server undoes it: the name gets its own connection from then on. Pure functions: the body
resolves names and reads certificates, this module decides.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

__all__ = ["cert_names", "covers", "may_coalesce"]


def cert_names(peercert: dict[str, Any] | None) -> tuple[str, ...]:
    """The DNS names and IP addresses a verified peer certificate is valid for (lowercase).

    ``peercert`` is ``SSLSocket.getpeercert()``: empty when the certificate was not verified,
    and then nothing may be coalesced.
    """
    if not peercert:
        return ()
    names = []
    for kind, value in peercert.get("subjectAltName", ()):
        if kind in ("DNS", "IP Address"):
            names.append(str(value).lower().rstrip("."))
    return tuple(names)


def covers(names: Iterable[str], host: str) -> bool:
    """Does a certificate valid for ``names`` cover ``host``?"""
    host = host.lower().rstrip(".").strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    for name in names:
        if literal is not None:
            try:
                if ipaddress.ip_address(name) == literal:
                    return True
            except ValueError:
                continue
        elif name == host:
            return True
        elif name.startswith("*.") and "." in host:
            # A wildcard covers exactly one label, never a bare suffix or an IP.
            label, _, rest = host.partition(".")
            if label and rest == name[2:] and "." in rest:
                return True
    return False


def may_coalesce(
    host: str, resolved: Iterable[str], names: Iterable[str], connected_to: str
) -> bool:
    """May a request for ``host`` (which resolves to ``resolved``) use a connection whose
    verified certificate is valid for ``names`` and which is connected to ``connected_to``?"""
    return connected_to in set(resolved) and covers(names, host)

"""The redirect decisions on their own (pure functions): method table, origins, Locations."""

from __future__ import annotations

import pytest

from tether import URL, InvalidRedirect, Origin
from tether.client.redirects import keeps_credentials, redirect_method, resolve_location


@pytest.mark.parametrize(
    ("method", "status", "expected"),
    [
        ("POST", 301, "GET"),
        ("POST", 302, "GET"),
        ("PUT", 302, "PUT"),  # the Fetch standard; requests would send GET
        ("GET", 301, "GET"),
        ("PUT", 303, "GET"),
        ("DELETE", 303, "GET"),
        ("HEAD", 303, "HEAD"),
        ("POST", 307, "POST"),
        ("PATCH", 308, "PATCH"),
    ],
)
def test_redirect_method(method: str, status: int, expected: str) -> None:
    assert redirect_method(method, status) == expected


@pytest.mark.parametrize(
    ("old", "new", "keeps"),
    [
        (("https", "a.example", 443), ("https", "a.example", 443), True),
        (("http", "a.example", 80), ("https", "a.example", 443), True),  # upgrade
        (("https", "a.example", 443), ("http", "a.example", 443), False),  # downgrade, same port
        (("https", "a.example", 443), ("http", "a.example", 80), False),
        (("http", "a.example", 8080), ("https", "a.example", 443), False),
        (("http", "a.example", 80), ("http", "a.example", 8080), False),
        (("http", "a.example", 80), ("http", "b.example", 80), False),
        (("http", "a.example", 80), ("http", "sub.a.example", 80), False),
    ],
)
def test_keeps_credentials(
    old: tuple[str, str, int], new: tuple[str, str, int], keeps: bool
) -> None:
    assert keeps_credentials(Origin(*old), Origin(*new)) is keeps


BASE = URL("https://a.example/dir/page?x=1")


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/root", "https://a.example/root"),
        ("sibling", "https://a.example/dir/sibling"),
        ("?y=2", "https://a.example/dir/page?y=2"),
        ("//b.example/p", "https://b.example/p"),
        ("http://c.example:8080/", "http://c.example:8080/"),
        ("/with space", "https://a.example/with%20space"),
        ("/caf\u00c3\u00a9", "https://a.example/caf%C3%A9"),  # raw UTF-8 read as latin-1
        ("HTTPS://D.example/", "https://d.example/"),
    ],
)
def test_resolve_location(location: str, expected: str) -> None:
    assert str(resolve_location(BASE, location)) == expected


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "ftp://a.example/", "javascript:alert(1)", "data:,x", ""]
)
def test_locations_refused(location: str) -> None:
    with pytest.raises(InvalidRedirect):
        resolve_location(BASE, location)

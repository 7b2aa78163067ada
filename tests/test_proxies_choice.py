"""Which proxy a request takes, and the proxy as a value: pure code, no sockets.

``proxy_for`` (settings, the environment, NO_PROXY), ``Proxy.parse`` (schemes, credentials
with reserved characters, what is never shown), the pool key, and the sans-I/O handshakes
fed the bytes a proxy would send.
"""

from __future__ import annotations

import pytest

import tether
from tether import Proxy, proxy_for
from tether.client.proxies import ProxyChooser, bypasses
from tether.models import URL, Origin
from tether.protocol.proxy import ConnectHandshake, handshake_for

SQUID = "http://proxy.example:3128"


def test_proxy_keyword_covers_every_scheme() -> None:
    for url in ("http://a.example/", "https://a.example/"):
        assert proxy_for(url, {"all": SQUID}) == Proxy.parse(SQUID)


def test_most_specific_key_wins() -> None:
    proxies = {
        "all": "http://all:1",
        "https": "http://https:1",
        "https://special.example": "http://special:1",
        "all://other.example": "http://other:1",
    }
    assert proxy_for("https://special.example/", proxies).host == "special"  # type: ignore[union-attr]
    assert proxy_for("https://a.example/", proxies).host == "https"  # type: ignore[union-attr]
    assert proxy_for("http://a.example/", proxies).host == "all"  # type: ignore[union-attr]
    assert proxy_for("http://other.example/", proxies).host == "other"  # type: ignore[union-attr]


def test_none_or_empty_means_direct() -> None:
    assert proxy_for("https://a.example/", {"all": SQUID, "https": None}) is None
    assert proxy_for("http://a.example/", {"all": SQUID, "http": ""}) is None


def test_environment_only_with_trust_env() -> None:
    env = {"HTTPS_PROXY": SQUID}
    assert proxy_for("https://a.example/", None, False, env) is None
    assert proxy_for("https://a.example/", None, True, env) == Proxy.parse(SQUID)
    assert proxy_for("http://a.example/", None, True, env) is None  # no http_proxy set


def test_environment_lower_case_first_and_all_proxy() -> None:
    env = {"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:1", "ALL_PROXY": SQUID}
    assert proxy_for("http://a.example/", None, True, env).host == "lower"  # type: ignore[union-attr]
    assert proxy_for("https://a.example/", None, True, env) == Proxy.parse(SQUID)


def test_explicit_settings_win_over_the_environment() -> None:
    env = {"https_proxy": "http://env:1"}
    chosen = proxy_for("https://a.example/", {"https": SQUID}, True, env)
    assert chosen == Proxy.parse(SQUID)


def test_cgi_ignores_upper_case_http_proxy() -> None:
    # httpoxy: a CGI request's "Proxy:" header arrives as HTTP_PROXY.
    env = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert proxy_for("http://a.example/", None, True, env) is None


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypass"),
    [
        ("*", "https://anything.example/", True),
        ("example.com", "https://example.com/", True),
        ("example.com", "https://api.example.com/", True),
        ("example.com", "https://badexample.com/", False),
        (".example.com", "https://example.com/", True),
        (".example.com", "https://a.b.example.com/", True),
        ("*.example.com", "https://a.example.com/", True),
        ("EXAMPLE.com", "https://Example.COM/", True),
        ("example.com:8443", "https://example.com:8443/", True),
        ("example.com:8443", "https://example.com/", False),
        ("10.0.0.0/8", "http://10.1.2.3/", True),
        ("10.0.0.0/8", "http://11.1.2.3/", False),
        ("192.168.1.5", "http://192.168.1.5:8080/", True),
        ("192.168.1.5:80", "http://192.168.1.5:8080/", False),
        ("::1", "http://[::1]:8080/", True),
        ("[::1]", "http://[::1]/", True),
        ("[::1]:8080", "http://[::1]:8080/", True),
        ("[::1]:8080", "http://[::1]:9090/", False),
        ("fd00::/8", "http://[fd12::1]/", True),
        ("fd00::/8", "http://[fe80::1]/", False),
        ("10.0.0.0/8", "http://ten.example/", False),  # a range never matches a name
        ("localhost, 127.0.0.1 ,", "http://127.0.0.1/", True),  # spaces, empty entries
        ("a.example b.example", "http://b.example/", True),  # space-separated
        ("", "http://a.example/", False),
        (",,", "http://a.example/", False),
    ],
)
def test_no_proxy(no_proxy: str, url: str, bypass: bool) -> None:
    assert bypasses(URL(url), no_proxy) is bypass
    env = {"all_proxy": SQUID, "no_proxy": no_proxy}
    assert (proxy_for(url, None, True, env) is None) is bypass


def test_no_proxy_in_explicit_settings() -> None:
    proxies = {"all": SQUID, "no_proxy": "internal.example"}
    assert proxy_for("https://internal.example/", proxies) is None
    assert proxy_for("https://public.example/", proxies) == Proxy.parse(SQUID)


def test_chooser_request_override_per_key() -> None:
    chooser = ProxyChooser(proxy=SQUID)
    url = URL("https://a.example/")
    assert chooser.choose(url) == Proxy.parse(SQUID)
    assert chooser.choose(url, {"https": None}) is None  # this request goes direct
    assert chooser.choose(url, {"https": "socks5h://s:1080"}).scheme == "socks5h"  # type: ignore[union-attr]
    assert ProxyChooser().choose(url) is None


def test_percent_encoded_credentials_decoded_and_never_shown() -> None:
    proxy = Proxy.parse("http://al%40ice:p%3A%2F%40%25ss@proxy.example:3128")
    assert (proxy.username, proxy.password) == ("al@ice", "p:/@%ss")
    shown = [str(proxy), repr(proxy), proxy.url]
    for secret in ("p:/@%ss", "p%3A", "al@ice", "al%40ice"):
        assert all(secret not in text for text in shown)
    assert proxy.authorization() == b"Proxy-Authorization: Basic YWxAaWNlOnA6L0Alc3M=\r\n"


def test_proxy_defaults_and_forms() -> None:
    assert Proxy.parse("proxy.example").url == "http://proxy.example:8080"  # no scheme: http
    assert Proxy.parse("socks5h://s.example").port == 1080
    assert Proxy.parse("http://[::1]:3128").url == "http://[::1]:3128"
    assert Proxy.parse("HTTP://Proxy.Example:1").url == "http://proxy.example:1"


def test_pool_key_tells_credentials_apart() -> None:
    a, b = Proxy.parse("http://a:1@p:1"), Proxy.parse("http://a:2@p:1")
    assert a != b and len({a, b, Proxy.parse("http://a:1@p:1")}) == 2
    assert repr(a) == repr(b)  # apart in the key, alike on screen


@pytest.mark.parametrize("url", ["ftp://p:21", "ftps://p:990", "socks6://p:1", "http://:1"])
def test_unsupported_proxy_urls(url: str) -> None:
    with pytest.raises(tether.InvalidProxyURL):
        Proxy.parse(url.replace("://", "://user:hunter2@"))
    try:
        Proxy.parse(url.replace("://", "://user:hunter2@"))
    except tether.InvalidProxyURL as exc:
        assert "hunter2" not in str(exc)


def test_route_of_each_proxy() -> None:
    http = Proxy.parse("http://p:3128")
    assert not http.tunnels(Origin.of("http", "a.example"))  # forwarded
    assert http.tunnels(Origin.of("https", "a.example"))  # CONNECT
    assert Proxy.parse("socks5://s:1").tunnels(Origin.of("http", "a.example"))
    tls = Proxy.parse("https://user:pw@p")  # TLS to the proxy, HTTP inside: the same routes
    assert tls.tls and tls.port == 443 and tls.url == "https://p:443"
    assert not tls.tunnels(Origin.of("http", "a.example"))
    assert tls.tunnels(Origin.of("https", "a.example"))
    assert tls.authorization() == Proxy.parse("http://user:pw@p").authorization()


# -- the handshakes, fed what a proxy sends ---------------------------------------------------


def _connect(proxy: str = SQUID) -> ConnectHandshake:
    return ConnectHandshake(Proxy.parse(proxy), Origin.of("https", "origin.example"))


def test_connect_request_bytes() -> None:
    hs = _connect("http://u:p@proxy.example:3128")
    assert hs.to_send() == (
        b"CONNECT origin.example:443 HTTP/1.1\r\nHost: origin.example:443\r\n"
        b"Proxy-Authorization: Basic dTpw\r\n\r\n"
    )
    assert hs.to_send() == b""


def test_connect_reply_consumes_only_its_head() -> None:
    hs = _connect()
    hs.to_send()
    reply = b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n"
    tls = b"\x16\x03\x03 first TLS record"
    assert hs.feed(reply[:10]) == 10 and not hs.done  # partial: all taken, more needed
    assert hs.feed(reply[10:] + tls) == len(reply) - 10  # the TLS bytes stay in the socket
    assert hs.done and hs.status == 200


@pytest.mark.parametrize(
    ("reply", "status", "text"),
    [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 407, "407"),
        (b"HTTP/1.0 403 Forbidden\r\n\r\n", 403, "403 Forbidden"),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad", 502, "502"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", None, "not an HTTP reply"),
    ],
)
def test_connect_refusals(reply: bytes, status: int | None, text: str) -> None:
    hs = _connect()
    with pytest.raises(tether.ProxyError, match=text) as caught:
        hs.feed(reply)
    assert caught.value.status == status
    assert caught.value.proxy == "http://proxy.example:3128"


def test_connect_reply_too_long() -> None:
    hs = _connect()
    with pytest.raises(tether.ProxyError, match="longer than"):
        for _ in range(100):
            hs.feed(b"X-Filler: " + b"x" * 1000 + b"\r\n")


def test_socks5_handshake_with_credentials() -> None:
    proxy = Proxy.parse("socks5h://al%40ice:pw@s:1080")
    hs = handshake_for(proxy, Origin.of("https", "origin.example"), "origin.example")
    assert hs.to_send() == b"\x05\x02\x02\x00"  # offers username/password, then none
    assert hs.feed(b"\x05\x02") == 2  # the proxy picks username/password
    assert hs.to_send() == b"\x01\x06al@ice\x02pw"
    assert hs.feed(b"\x01\x00") == 2
    sent = hs.to_send()
    assert sent == b"\x05\x01\x00\x03\x0eorigin.example\x01\xbb"  # the name: remote DNS
    reply = b"\x05\x00\x00\x01\x7f\x00\x00\x01\x04\x38"
    assert hs.feed(reply[:3]) == 3 and not hs.done
    assert hs.feed(reply[3:] + b"\x16\x03") == len(reply) - 3 and hs.done


def test_socks5_refusals() -> None:
    origin = Origin.of("https", "origin.example")
    hs = handshake_for(Proxy.parse("socks5://s:1"), origin, "10.0.0.1")
    hs.to_send()
    with pytest.raises(tether.ProxyError, match="requires a username and password"):
        hs.feed(b"\x05\xff")
    hs = handshake_for(Proxy.parse("socks5://s:1"), origin, "10.0.0.1")
    hs.to_send()
    hs.feed(b"\x05\x00")
    assert hs.to_send() == b"\x05\x01\x00\x01\x0a\x00\x00\x01\x01\xbb"  # the resolved IP
    with pytest.raises(tether.ProxyError, match="connection_refused") as caught:
        hs.feed(b"\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00")
    assert caught.value.status == 5
    hs = handshake_for(Proxy.parse("socks5://u:bad@s:1"), origin, "10.0.0.1")
    hs.to_send()
    hs.feed(b"\x05\x02")
    with pytest.raises(tether.ProxyError, match="refused the username and password"):
        hs.feed(b"\x01\x01")


def test_socks4a_and_socks4() -> None:
    origin = Origin.of("http", "origin.example")
    hs = handshake_for(Proxy.parse("socks4a://s:1"), origin, "origin.example")
    assert hs.to_send().endswith(b"origin.example\x00")
    assert hs.feed(b"\x00\x5a\x00\x00\x00\x00\x00\x00") == 8 and hs.done
    with pytest.raises(tether.InvalidProxyURL, match="IPv4"):
        handshake_for(Proxy.parse("socks4://s:1"), origin, "::1")
    hs = handshake_for(Proxy.parse("socks4://s:1"), origin, "10.0.0.1")
    hs.to_send()
    with pytest.raises(tether.ProxyError):
        hs.feed(b"\x00\x5b\x00\x00\x00\x00\x00\x00")


def test_session_shows_its_proxies_without_credentials() -> None:
    with tether.Session(proxy="http://u:hunter2@p.example:1", proxies={"https": None}) as s:
        shown = repr(s.proxies)
        assert s.proxies["all"] == Proxy.parse("http://u:hunter2@p.example:1")
        assert s.proxies["https"] is None
    assert "hunter2" not in shown and "p.example" in shown

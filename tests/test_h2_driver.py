"""The threaded HTTP/2 driver's own promises, beyond what the real-server tests show."""

from __future__ import annotations

import pytest

import tether
from tether.testing import TestServer


def test_prior_knowledge_to_an_http11_server_says_so(test_server: TestServer) -> None:
    with (
        tether.Session(http2="prior-knowledge") as s,
        pytest.raises(tether.RemoteProtocolError, match="does not speak HTTP/2") as caught,
    ):
        s.get(test_server.url + "/")
    assert not caught.value.may_have_reached_server  # only the preface was sent
    test_server.errors.clear()  # it saw a request that was not HTTP/1.1: its 400 is expected


def test_http2_true_on_plain_http_stays_http11(test_server: TestServer) -> None:
    # ALPN exists only with TLS: without prior knowledge, http:// is HTTP/1.1.
    with tether.Session(http2=True) as s:
        r = s.get(test_server.url + "/")
        assert r.http_version == "HTTP/1.1" and r.connection_info.protocol == "http/1.1"

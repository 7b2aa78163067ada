"""Network errors are OSErrors too (as requests' are), and tether never swallows its own."""

from __future__ import annotations

import socket

import pytest
from aio_helpers import run

import tether
from tether.testing import TestServer


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    "kind",
    [
        tether.RequestError,
        tether.TransportError,
        tether.TimeoutException,
        tether.ConnectTimeout,
        tether.ReadTimeout,
        tether.NetworkError,
        tether.ConnectError,
        tether.TLSError,
        tether.ReadError,
        tether.WriteError,
        tether.RemoteProtocolError,
        tether.StreamReset,
    ],
)
def test_every_request_error_is_an_oserror_and_a_tether_error(kind: type[Exception]) -> None:
    assert issubclass(kind, OSError) and issubclass(kind, tether.TetherError)


def test_refused_connection_is_caught_by_except_oserror() -> None:
    port = _closed_port()
    with tether.Session() as s:
        try:
            s.get(f"http://127.0.0.1:{port}/")
        except OSError as exc:  # what requests users wrote around requests.get
            caught = exc
    assert isinstance(caught, tether.ConnectError)
    assert str(port) in str(caught)
    assert caught.origin is not None and caught.origin.port == port


def test_async_refused_connection_is_caught_by_except_oserror() -> None:
    port = _closed_port()

    async def main() -> BaseException:
        async with tether.AsyncSession() as s:
            try:
                await s.get(f"http://127.0.0.1:{port}/")
            except OSError as exc:
                return exc
        raise AssertionError("no error")

    assert isinstance(run(main()), tether.ConnectError)


def test_read_timeout_is_an_oserror_with_its_own_type(test_server: TestServer) -> None:
    with tether.Session() as s, pytest.raises(OSError) as info:
        s.get(f"{test_server.url}/slow/2", timeout=0.2)
    assert isinstance(info.value, tether.ReadTimeout)
    assert info.value.may_have_reached_server


def test_http2_prior_knowledge_to_http1_server_keeps_its_protocol_error(
    test_server: TestServer,
) -> None:
    # The set-up code catches socket OSErrors to wrap them as ConnectError: the protocol error
    # it raises itself (an OSError now) must come out as it is, not re-wrapped.
    with tether.Session(http2="prior-knowledge") as s, pytest.raises(OSError) as info:
        s.get(f"{test_server.url}/")
    assert type(info.value) is tether.RemoteProtocolError, repr(info.value)
    assert "HTTP/1.x" in str(info.value)


def test_a_callers_oserror_from_a_body_is_not_a_tether_error(test_server: TestServer) -> None:
    def body():  # type: ignore[no-untyped-def]
        yield b"first"
        raise PermissionError(13, "the caller's own failure")

    with tether.Session() as s:
        with pytest.raises(PermissionError, match="the caller's own failure") as info:
            s.post(f"{test_server.url}/echo", data=body())
        assert not isinstance(info.value, tether.TetherError)
        test_server.errors.clear()  # the server saw a body cut short
        assert s.get(f"{test_server.url}/echo").status == 200


def test_invalid_input_is_a_valueerror_not_an_oserror() -> None:
    with tether.Session() as s, pytest.raises(ValueError) as info:
        s.get("http://127.0.0.1:1/\r\nX: y")
    assert isinstance(info.value, tether.InvalidRequest)
    assert not isinstance(info.value, OSError)


def test_the_module_docstring_maps_every_error_to_requests_and_httpx() -> None:
    doc = tether.exceptions.__doc__ or ""
    for name in tether.exceptions.__all__:
        assert name in doc, name
    for theirs in ("ConnectionError", "SSLError", "ChunkedEncodingError", "HTTPError"):
        assert theirs in doc

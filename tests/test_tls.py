"""TLS: verification, pool separation by TLS settings, user contexts, client certificates.

Certificates come from the session's trustme CA (the ``ca`` fixture); ``nginx_tls`` serves a
certificate for localhost and 127.0.0.1 signed by it.
"""

from __future__ import annotations

import gc
import select
import shutil
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from helpers import fd_count
from servers.nginx import SMALL_BODY, Nginx

import tether
from tether.testing import TestServer

CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def accepts_since(server: Nginx, before: int) -> int:
    """TCP connections nginx accepted since ``before``, minus the one ``stats()`` opens."""
    return server.stats().accepts - before - 1


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The CA as a fresh file (a new path: a TLS context never built before)."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def client_cert(ca: trustme.CA, tmp_path: Path) -> tuple[str, str]:
    """(cert path, key path) of a client certificate for client@example."""
    cert = ca.issue_cert("client@example")
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(cert_path), str(key_path)


def mtls_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server context that requires a client certificate signed by ``ca``."""
    ctx = server_context(ca, "localhost", "127.0.0.1")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def mtls_server(ca: trustme.CA) -> Iterator[TestServer]:
    """An https TestServer (TLS 1.2: the client certificate is checked inside the handshake)
    that requires a client certificate signed by ``ca``."""
    ctx = mtls_context(ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with TestServer(ssl_context=ctx) as server:
        yield server
    server.errors.clear()  # a refused handshake may be recorded: that is the test's point


# -- verified https against nginx ---------------------------------------------------------------


def test_verified_https_and_reuse(nginx_tls: Nginx) -> None:
    before = nginx_tls.stats().accepts
    with tether.Session(verify=str(nginx_tls.ca_file)) as s:
        r1 = s.get(nginx_tls.url + "/")
        r2 = s.get(nginx_tls.url + "/")
        assert (r1.status, r1.content) == (200, SMALL_BODY)
        info = r1.connection_info
        assert info.tls_version is not None and info.tls_version.startswith("TLSv1")
        assert info.alpn_protocol == "http/1.1"
        assert info.tls_cipher
        assert info.tls_time > 0
        assert r2.content == SMALL_BODY
        assert r2.connection_info.reused
        assert r2.connection_info.connection_id == info.connection_id
        assert r2.connection_info.tls_time == 0.0  # a reused connection paid no handshake
        stats = s.stats()
        assert (stats.connections_opened, stats.reuses) == (1, 1)
    assert accepts_since(nginx_tls, before) == 1


def test_verify_accepts_a_pathlib_path(nginx_tls: Nginx) -> None:
    assert isinstance(nginx_tls.ca_file, Path)
    with tether.Session(verify=nginx_tls.ca_file) as s:  # type: ignore[arg-type]
        assert s.get(nginx_tls.url + "/").status == 200


def test_only_http11_is_offered_to_an_h2_server(nginx_h2: Nginx) -> None:
    with tether.Session(verify=str(nginx_h2.ca_file)) as s:
        r = s.get(nginx_h2.url + "/")
        assert r.content == SMALL_BODY
        assert r.connection_info.alpn_protocol == "http/1.1"
        assert r.http_version == "HTTP/1.1"
        assert s.get(nginx_h2.url + "/").connection_info.reused


def test_one_shot_https_get_leaves_no_fd(nginx_tls: Nginx) -> None:
    fds_before = fd_count()
    r = tether.get(nginx_tls.url + "/", verify=str(nginx_tls.ca_file))
    assert (r.status, r.content) == (200, SMALL_BODY)
    assert fd_count() == fds_before


# -- verification failures, verify=False and pool separation ------------------------------------


def test_default_verification_rejects_unknown_ca(nginx_tls: Nginx) -> None:
    with tether.Session() as s:
        with pytest.raises(tether.TLSError) as excinfo:
            s.get(nginx_tls.url + "/")
        err = excinfo.value
        assert isinstance(err, tether.ConnectError)
        assert nginx_tls.url in str(err)
        assert "CERTIFICATE_VERIFY_FAILED" in str(err)
        assert err.may_have_reached_server is False
        assert s.stats().connections_opened == 0 and s.stats().open == 0

        r = s.get(nginx_tls.url + "/", verify=False)
        assert (r.status, r.content) == (200, SMALL_BODY)
        assert r.connection_info.tls_version is not None


def test_tls_error_carries_request_and_origin(nginx_tls: Nginx) -> None:
    # Every RequestError carries its request, even one raised while dialing.
    with tether.Session() as s, pytest.raises(tether.TLSError) as excinfo:
        s.get(nginx_tls.url + "/")
    err = excinfo.value
    assert err.request is not None and err.request.method == "GET"
    assert err.origin is not None and err.origin.port == nginx_tls.port


def test_unverified_connection_never_serves_a_verified_request(nginx_tls: Nginx) -> None:
    before = nginx_tls.stats().accepts
    ca_path = str(nginx_tls.ca_file)
    with tether.Session() as s:
        unverified = s.get(nginx_tls.url + "/", verify=False)
        verified = s.get(nginx_tls.url + "/", verify=ca_path)
        assert unverified.status == verified.status == 200
        assert not verified.connection_info.reused
        assert verified.connection_info.connection_id != unverified.connection_info.connection_id
        assert len(s.pool_manager.pools()) == 2
        # Each setting keeps reusing its own connection.
        again_unverified = s.get(nginx_tls.url + "/", verify=False)
        again_verified = s.get(nginx_tls.url + "/", verify=ca_path)
        assert again_unverified.connection_info.connection_id == (
            unverified.connection_info.connection_id
        )
        assert again_verified.connection_info.connection_id == (
            verified.connection_info.connection_id
        )
        assert s.stats().connections_opened == 2
    assert accepts_since(nginx_tls, before) == 2


def test_hostname_mismatch_is_a_tls_error(ca: trustme.CA, ca_file: str) -> None:
    # nginx's certificate names 127.0.0.1 too, so use a server whose cert names localhost only.
    with TestServer(ssl_context=server_context(ca, "localhost")) as server:
        with tether.Session(verify=ca_file) as s:
            with pytest.raises(tether.TLSError, match=r"127\.0\.0\.1") as excinfo:
                s.get(f"https://127.0.0.1:{server.port}/")
            assert "mismatch" in str(excinfo.value)
            # Same CA, same server, the name on the certificate: accepted.
            r = s.get(f"https://localhost:{server.port}/")
            assert r.status == 200 and r.json()["path"] == "/"
        server.errors.clear()  # the refused handshake, seen from the server


# -- a user's SSLContext --------------------------------------------------------------------------


def context_state(ctx: ssl.SSLContext) -> tuple[object, ...]:
    return (
        ctx.check_hostname,
        ctx.verify_mode,
        ctx.verify_flags,
        ctx.options,
        ctx.minimum_version,
        ctx.maximum_version,
        ctx.protocol,
        ctx.post_handshake_auth,
        ctx.cert_store_stats(),
        len(ctx.get_ca_certs()),
    )


def test_ssl_context_is_used_and_not_modified(nginx_tls: Nginx) -> None:
    ctx = ssl.create_default_context(cafile=str(nginx_tls.ca_file))
    state = context_state(ctx)
    with tether.Session() as s:
        r1 = s.get(nginx_tls.url + "/", verify=ctx)
        r2 = s.get(nginx_tls.url + "/", verify=ctx)
        assert r1.content == r2.content == SMALL_BODY
        assert r2.connection_info.reused  # the same context: the same pool
    assert context_state(ctx) == state
    # No getter for ALPN: but had tether called set_alpn_protocols on it, nginx would have
    # selected http/1.1. It did not offer ALPN: the context was used as given.
    assert r1.connection_info.alpn_protocol is None

    with_alpn = ssl.create_default_context(cafile=str(nginx_tls.ca_file))
    with_alpn.set_alpn_protocols(["http/1.1"])
    with tether.Session(verify=with_alpn) as s:
        assert s.get(nginx_tls.url + "/").connection_info.alpn_protocol == "http/1.1"


def test_ssl_context_settings_are_honoured(ca: trustme.CA) -> None:
    with TestServer(ssl_context=server_context(ca, "localhost", "127.0.0.1")) as server:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        with tether.Session(verify=ctx) as s:
            assert s.get(server.url + "/").connection_info.tls_version == "TLSv1.3"
        capped = ssl.create_default_context()
        ca.configure_trust(capped)
        capped.maximum_version = ssl.TLSVersion.TLSv1_2
        with tether.Session(verify=capped) as s:
            assert s.get(server.url + "/").connection_info.tls_version == "TLSv1.2"
        assert capped.maximum_version == ssl.TLSVersion.TLSv1_2
        assert server.errors == []


def test_tls13_connection_is_reused(ca: trustme.CA, ca_file: str) -> None:
    # TLS 1.3 session tickets make an idle socket readable; that must not look like a close.
    with TestServer(ssl_context=server_context(ca, "localhost", "127.0.0.1")) as server:
        with tether.Session(verify=ca_file) as s:
            responses = [s.get(server.url + "/") for _ in range(5)]
            assert responses[0].connection_info.tls_version == "TLSv1.3"
            assert [r.connection_info.request_number for r in responses] == [1, 2, 3, 4, 5]
            stats = s.stats()
            assert (stats.connections_opened, stats.closes) == (1, {})
        assert server.connections_accepted == 1
        assert [r.json()["request_index"] for r in responses] == [1, 2, 3, 4, 5]
        assert server.errors == []


# -- client certificates ------------------------------------------------------------------------


def test_client_certificate_required(
    mtls_server: TestServer, ca_file: str, client_cert: tuple[str, str], tmp_path: Path
) -> None:
    with tether.Session(verify=ca_file) as s:
        with pytest.raises(tether.TransportError) as excinfo:
            s.get(mtls_server.url + "/")
        assert isinstance(excinfo.value, tether.TLSError)
        message = str(excinfo.value)
        assert "handshake" in message and mtls_server.url in message
        assert s.stats().open == 0

        r = s.get(mtls_server.url + "/", cert=client_cert)
        assert r.status == 200 and r.json()["path"] == "/"
        again = s.get(mtls_server.url + "/", cert=client_cert)
        assert again.connection_info.reused
        assert again.connection_info.tls_version == "TLSv1.2"

    # One PEM file holding both the certificate and the key.
    combined = tmp_path / "client-combined.pem"
    combined.write_bytes(Path(client_cert[0]).read_bytes() + Path(client_cert[1]).read_bytes())
    with tether.Session(verify=ca_file, cert=str(combined)) as s:
        assert s.get(mtls_server.url + "/").status == 200


class HandshakeThenWait(ssl.SSLContext):
    """A client context whose handshake returns only once the server has reacted to it.

    In TLS 1.3 the client's handshake ends before the server checks the client certificate;
    the server's refusal (alert, then reset) comes right after. A client thread that is
    descheduled for a moment sees it before tether's first use of the socket.
    """

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        select.select([sock], [], [], 2.0)  # the server's alert arrived
        time.sleep(0.05)  # and its reset
        return sock


def test_client_certificate_refused_after_tls13_handshake(ca: trustme.CA, ca_file: str) -> None:
    ctx = HandshakeThenWait(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca_file)
    with TestServer(ssl_context=mtls_context(ca)) as server, tether.Session(verify=ctx) as s:
        error: BaseException | None = None
        try:
            s.get(server.url + "/")
        except Exception as exc:
            error = exc
        kind, message = type(error), str(error)
        server.errors.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        del error  # the traceback held tether's frames, and with them the socket
        gc.collect()
    leaked = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert issubclass(kind, tether.TransportError), f"{kind.__name__}: {message}"
    assert server.url in message
    assert leaked == []


# -- the environment's CA variables: only OpenSSL's, only with trust_env --------------------------


def test_ca_environment_variables_are_ignored(
    nginx_tls: Nginx,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    client_cert: tuple[str, str],
) -> None:
    bogus = str(tmp_path / "no-such-ca.pem")
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, bogus)
    ca_copy = str(tmp_path / "copy.pem")  # a path never used before: its context is built now
    shutil.copy(str(nginx_tls.ca_file), ca_copy)
    with tether.Session(verify=ca_copy) as s:
        assert s.get(nginx_tls.url + "/").status == 200

    # Pointing the variables at the right CA must not make the default (certifi) trust it:
    # requests' and curl's variables never, OpenSSL's (SSL_CERT_*) not with trust_env=False.
    for name in CA_ENV_VARS:
        monkeypatch.setenv(name, str(nginx_tls.ca_file))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    # cert= makes the TLS settings new, so the default context is built with the variables set
    # (nginx does not ask for the client certificate).
    with tether.Session(cert=client_cert, trust_env=False) as s, pytest.raises(tether.TLSError):
        s.get(nginx_tls.url + "/")
    monkeypatch.delenv("SSL_CERT_FILE")
    monkeypatch.delenv("SSL_CERT_DIR")
    with tether.Session(cert=client_cert) as s, pytest.raises(tether.TLSError):
        s.get(nginx_tls.url + "/")


def test_trust_env_reads_ssl_cert_file(
    nginx_tls: Nginx, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # OpenSSL's variable, as httpx reads it: verify=True then means this bundle.
    ca_copy = str(tmp_path / "env-ca.pem")
    shutil.copy(str(nginx_tls.ca_file), ca_copy)
    monkeypatch.setenv("SSL_CERT_FILE", ca_copy)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with tether.Session() as s:
        assert s.get(nginx_tls.url + "/").status == 200

"""Authentication as flows: what to send, and what to send again after a 401.

An `Auth` is httpx's idea: ``auth_flow(request)`` is a generator that yields requests to send
and is sent each response; the session drives it (the same generator for ``Session`` and
``AsyncSession``). Basic adds a header; Digest answers the server's challenge; `TokenAuth`
fetches a token again when a 401 says the cached one has expired. requests' style, a callable
that takes and returns the request, is accepted too.

Credentials never appear in a ``repr``: a session's auth may end up in logs.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from base64 import b64encode
from collections.abc import Callable, Generator

from ..models import Origin, Request
from ..response import Response

__all__ = ["Auth", "AuthTypes", "BasicAuth", "DigestAuth", "FunctionAuth", "TokenAuth", "auth_of"]

AuthFlow = Generator[Request, Response, None]


class Auth:
    """Base class: override ``auth_flow`` (a generator: ``response = yield request``).

    The flow may yield again after a response (a 401, say) to send another request; the
    session sends it (with the cookies that response set) and passes the answer back. The
    last response the flow received is the one the caller gets. A request yielded again must
    have a body that can be sent twice (bytes); a one-shot body raises BodyNotReplayable.
    """

    def auth_flow(self, request: Request) -> AuthFlow:
        """Yield the requests to send for ``request``; the default sends it unchanged."""
        yield request


def with_header(request: Request, name: str, value: str) -> Request:
    """A copy of ``request`` with header ``name`` set (the original is left alone)."""
    return Request(
        request.method,
        request.url,
        headers=request.wire_headers().merged({name: value}),
        body=request.body,
    )


def basic_value(username: str, password: str) -> str:
    """The Authorization value of Basic credentials (UTF-8, RFC 7617)."""
    return "Basic " + b64encode(f"{username}:{password}".encode()).decode("ascii")


class BasicAuth(Auth):
    """HTTP Basic authentication; ``auth=(user, password)`` means this."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._value = basic_value(username, password)

    def auth_flow(self, request: Request) -> AuthFlow:
        yield with_header(request, "Authorization", self._value)

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class FunctionAuth(Auth):
    """requests' custom auth: ``func(request)`` returns the request to send (or None: the
    request it changed in place)."""

    def __init__(self, func: Callable[[Request], Request | None]) -> None:
        self.func = func

    def auth_flow(self, request: Request) -> AuthFlow:
        changed = self.func(request)
        yield request if changed is None else changed

    def __repr__(self) -> str:
        return f"FunctionAuth({getattr(self.func, '__qualname__', type(self.func).__name__)})"


class TokenAuth(Auth):
    """A bearer token from ``fetch()``, fetched once, and again when a 401 says it expired.

    ``fetch`` is called with no arguments and returns the token (it is called in the calling
    thread or event loop: keep it quick, or cache in it). After a 401 to a request that
    carried the current token, one fresh token is fetched (one fetch for every thread that
    saw the 401 at once) and the request is sent once more.
    """

    def __init__(self, fetch: Callable[[], str], *, scheme: str = "Bearer") -> None:
        self.fetch = fetch
        self.scheme = scheme
        self._token: str | None = None
        self._lock = threading.Lock()

    def _current(self, stale: str | None = None) -> str:
        with self._lock:
            if self._token is None or self._token == stale:
                self._token = self.fetch()
            return self._token

    def auth_flow(self, request: Request) -> AuthFlow:
        token = self._current()
        response = yield with_header(request, "Authorization", f"{self.scheme} {token}")
        if response.status == 401:
            fresh = self._current(stale=token)
            yield with_header(request, "Authorization", f"{self.scheme} {fresh}")

    def __repr__(self) -> str:
        return f"TokenAuth(scheme={self.scheme!r}, token=***)"


_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
    "SHA-512": lambda b: hashlib.sha512(b).hexdigest(),
    "SHA-512-256": lambda b: hashlib.new("sha512_256", b).hexdigest(),
}
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class DigestAuth(Auth):
    """HTTP Digest authentication (RFC 7616: MD5, SHA-256, their -sess forms, qop=auth).

    The first request goes without credentials; the 401's challenge is answered and the
    request sent again. Later requests answer the last challenge at once (counting nonces),
    until the server says the nonce is stale.
    """

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password = password
        self._lock = threading.Lock()
        # The last challenge of each origin, and how many times its nonce was used: a
        # challenge is only ever answered to the origin that sent it.
        self._challenges: dict[Origin, tuple[dict[str, str], int]] = {}

    def auth_flow(self, request: Request) -> AuthFlow:
        origin = request.url.origin
        if origin in self._challenges:
            request = with_header(request, "Authorization", self._answer(request))
        response = yield request
        if response.status != 401:
            return
        challenge = parse_digest_challenge(response.headers.get_list("www-authenticate"))
        if challenge is None:
            return  # not a Digest challenge: the caller sees the 401
        with self._lock:
            self._challenges[origin] = (challenge, 0)
        yield with_header(request, "Authorization", self._answer(request))

    def _answer(self, request: Request) -> str:
        with self._lock:
            challenge, count = self._challenges[request.url.origin]
            count += 1
            self._challenges[request.url.origin] = (challenge, count)
        return digest_response(
            challenge, self.username, self._password, request.method, request.url.target, count
        )

    def __repr__(self) -> str:
        return f"DigestAuth(username={self.username!r}, password=***)"


def parse_digest_challenge(values: list[str]) -> dict[str, str] | None:
    """The parameters of the first usable Digest challenge among WWW-Authenticate values."""
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            continue
        params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM.finditer(rest)}
        algorithm = params.get("algorithm", "MD5").upper().removesuffix("-SESS")
        if "nonce" in params and "realm" in params and algorithm in _HASHES:
            return params
    return None


def digest_response(
    challenge: dict[str, str], username: str, password: str, method: str, uri: str, count: int
) -> str:
    """The Authorization value answering ``challenge`` (RFC 7616 §3.4)."""
    algorithm = challenge.get("algorithm", "MD5")
    hash_ = _HASHES[algorithm.upper().removesuffix("-SESS")]
    realm, nonce = challenge["realm"], challenge["nonce"]
    cnonce = hashlib.sha256(os.urandom(16) + str(time.time()).encode()).hexdigest()[:16]
    ha1 = hash_(f"{username}:{realm}:{password}".encode())
    if algorithm.upper().endswith("-SESS"):
        ha1 = hash_(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = hash_(f"{method}:{uri}".encode())
    qops = [q.strip() for q in challenge.get("qop", "").split(",")]
    nc = f"{count:08x}"
    fields = {"username": username, "realm": realm, "nonce": nonce, "uri": uri}
    if "auth" in qops:
        fields["response"] = hash_(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode())
    else:  # RFC 2069 compatibility: no qop
        fields["response"] = hash_(f"{ha1}:{nonce}:{ha2}".encode())
    if "opaque" in challenge:
        fields["opaque"] = challenge["opaque"]
    quoted = ", ".join(f'{k}="{_escape(v)}"' for k, v in fields.items())
    extra = f", algorithm={algorithm}"
    if "auth" in qops:
        extra += f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    return f"Digest {quoted}{extra}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


AuthTypes = tuple[str, str] | Auth | Callable[[Request], Request | None] | None


def auth_of(value: AuthTypes) -> Auth | None:
    """What a user passes as ``auth=``: (user, password), an Auth, a callable, or None."""
    if value is None or isinstance(value, Auth):
        return value
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or not all(isinstance(v, (str, bytes)) for v in value):
            raise TypeError("auth=(username, password): a pair of str")
        user, password = (v.decode() if isinstance(v, bytes) else v for v in value)
        return BasicAuth(user, password)
    if callable(value):
        return FunctionAuth(value)
    raise TypeError(
        f"auth= takes (username, password), a tether.Auth or a callable, not {type(value).__name__}"
    )

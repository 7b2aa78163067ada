"""Run one test against both sessions: ``Session`` and ``AsyncSession`` behind the same calls.

``make_session(kind, **kwargs)`` gives a ``tether.Session``, or for ``"async"`` a facade whose
methods run the AsyncSession's coroutines to the end on a loop of its own (created and closed
with the facade), so a behaviour test is written once and proves both bodies.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trustme

import tether
from tether.testing import Exchange, TestServer

KINDS = ["sync", "async"]


class AsyncFacade:
    """An AsyncSession driven from synchronous test code (one private event loop)."""

    def __init__(self, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self.session: tether.AsyncSession = self._run(self._make(kwargs))
        except BaseException:
            self._loop.close()
            raise

    async def _make(self, kwargs: dict[str, Any]) -> tether.AsyncSession:
        return tether.AsyncSession(**kwargs)

    def _run(self, coro: Any) -> Any:
        return self._loop.run_until_complete(coro)

    def request(self, method: str, url: str, **kwargs: Any) -> tether.Response:
        return self._run(self.session.request(method, url, **kwargs))  # type: ignore[no-any-return]

    def get(self, url: str, **kwargs: Any) -> tether.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> tether.Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> tether.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> tether.Response:
        return self.request("PUT", url, **kwargs)

    def stats(self) -> tether.PoolStats:
        return self.session.stats()

    def __getattr__(self, name: str) -> Any:
        if name == "session":
            raise AttributeError(name)  # construction failed
        return getattr(self.session, name)  # cookies, headers, auth...

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name == "session":
            object.__setattr__(self, name, value)
        else:
            setattr(self.session, name, value)  # s.timeout = ..., s.auth = ...

    def close(self) -> None:
        self._run(self.session.aclose())
        self._loop.close()

    def __enter__(self) -> AsyncFacade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_session(kind: str, **kwargs: Any) -> Any:
    """A Session (``"sync"``) or an AsyncFacade (``"async"``); trust_env off unless given."""
    kwargs.setdefault("trust_env", False)
    return tether.Session(**kwargs) if kind == "sync" else AsyncFacade(**kwargs)


def redirect(
    server: TestServer,
    path: str,
    location: str,
    status: int = 302,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    """Route ``path`` on ``server`` to answer ``status`` with ``Location: location``."""

    def handler(ex: Exchange) -> None:
        ex.respond(status, [("Location", location), *(extra or [])], b"moved")

    server.route(path, handler)


def last_header(server: TestServer, name: str) -> str | None:
    """Header ``name`` of the last request ``server`` received."""
    return server.exchanges[-1].header(name)


@contextmanager
def tls_server(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[TestServer, str]]:
    """A TestServer speaking TLS for 127.0.0.1 and localhost, and the CA file to verify it."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TestServer(ssl_context=ctx) as server:
        yield server, str(ca_file)

"""httpx: Client (HTTP/1.1), Client and AsyncClient with http2=True, httpx.get()."""

from __future__ import annotations

import httpx

from .drivers import AsyncClient, Ctx, SyncClient
from .util import info


def _info() -> dict[str, str]:
    return info("httpx", "httpcore", "h11", "h2")


def _verify(ctx: Ctx, alpn: list[str] | None = None) -> object:
    return ctx.ssl_context(alpn) if ctx.tls else True


def _limits(ctx: Ctx) -> httpx.Limits:
    return httpx.Limits(max_connections=ctx.concurrency, max_keepalive_connections=ctx.concurrency)


def client(ctx: Ctx) -> SyncClient:
    c = httpx.Client(verify=_verify(ctx), limits=_limits(ctx))  # type: ignore[arg-type]
    url = ctx.url
    cget = c.get

    def get() -> tuple[int, bytes]:
        r = cget(url)
        return r.status_code, r.content

    return SyncClient(get=get, close=c.close, info=_info())


def client_h2(ctx: Ctx) -> SyncClient:
    c = httpx.Client(http2=True, verify=_verify(ctx), limits=_limits(ctx))  # type: ignore[arg-type]
    url = ctx.url
    cget = c.get
    seen: set[str] = set()
    add = seen.add

    def get() -> tuple[int, bytes]:
        r = cget(url)
        add(r.http_version)
        return r.status_code, r.content

    return SyncClient(
        get=get,
        close=c.close,
        info=_info(),
        describe=lambda: {"http_versions": ",".join(sorted(seen))},
    )


async def async_client_h2(ctx: Ctx) -> AsyncClient:
    c = httpx.AsyncClient(http2=True, verify=_verify(ctx), limits=_limits(ctx))  # type: ignore[arg-type]
    url = ctx.url
    cget = c.get
    seen: set[str] = set()
    add = seen.add

    async def get() -> tuple[int, bytes]:
        r = await cget(url)
        add(r.http_version)
        return r.status_code, r.content

    return AsyncClient(
        get=get,
        close=c.aclose,
        info=_info(),
        describe=lambda: {"http_versions": ",".join(sorted(seen))},
    )


def oneshot(ctx: Ctx) -> SyncClient:
    url = ctx.url
    verify = _verify(ctx)
    hget = httpx.get

    def get() -> tuple[int, bytes]:
        r = hget(url, verify=verify)  # type: ignore[arg-type]
        return r.status_code, r.content

    return SyncClient(get=get, info=_info())

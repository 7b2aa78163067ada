"""aiohttp: one ClientSession (sequential = one task; conc16 = 16 tasks); cold uses
a connector with force_close=True (a new connection per request)."""

from __future__ import annotations

import aiohttp

from .drivers import AsyncClient, Ctx
from .util import info


async def _make(ctx: Ctx, force_close: bool) -> AsyncClient:
    ssl_arg: object = ctx.ssl_context() if ctx.tls else False
    kw: dict[str, object] = {"force_close": True} if force_close else {"keepalive_timeout": 300}
    connector = aiohttp.TCPConnector(
        limit=ctx.concurrency,
        limit_per_host=ctx.concurrency,
        ssl=ssl_arg,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )
    s = aiohttp.ClientSession(connector=connector)
    url = ctx.url
    sget = s.get

    async def get() -> tuple[int, bytes]:
        async with sget(url) as r:
            return r.status, await r.read()

    return AsyncClient(get=get, close=s.close, info=info("aiohttp", "multidict", "yarl"))


async def session(ctx: Ctx) -> AsyncClient:
    return await _make(ctx, force_close=False)


async def force_close(ctx: Ctx) -> AsyncClient:
    return await _make(ctx, force_close=True)

"""tether: Session, ConnectionPool and the one-shot tether.get().

If tether cannot be imported yet, the runner reports the row as
"tether not importable: ..." instead of a number.

``session_h2`` is tether over HTTP/2 (``Session(http2=True)``).  Until tether has
it, the row fails with the TypeError (or whatever tether raises); it never falls
back to HTTP/1.1 silently: the first response must say ``HTTP/2``.

``async_session`` and ``async_session_h2`` are AsyncSession (rows "tether-async" and
"tether-async-h2"): sequential = one task, conc16 and h2_16 = 16 tasks.
"""

from __future__ import annotations

import tether

from .drivers import AsyncClient, BadResponse, Ctx, SyncClient
from .util import info


def _info() -> dict[str, str]:
    out = info("tether", "httptools", "h2")
    out["tether loaded"] = str(getattr(tether, "__file__", "?"))
    return out


def session(ctx: Ctx) -> SyncClient:
    kw: dict[str, object] = {"pool_maxsize": ctx.concurrency}
    if ctx.tls:
        kw["verify"] = ctx.cafile
    s = tether.Session(**kw)
    url = ctx.url
    sget = s.get

    def get() -> tuple[int, bytes]:
        r = sget(url)
        return r.status, r.content

    return SyncClient(
        get=get, close=s.close, connections=lambda: s.stats().connections_opened, info=_info()
    )


def session_h2(ctx: Ctx) -> SyncClient:
    """One HTTP/2 Session: sequential in h2_seq, shared by 16 threads in h2_16."""
    s = tether.Session(http2=True, verify=ctx.cafile)
    url = ctx.url
    sget = s.get
    try:
        first = sget(url)  # one probe request: HTTP/2 or the row fails
        if first.http_version != "HTTP/2":
            raise BadResponse(f"tether negotiated {first.http_version!r}, not HTTP/2")
    except BaseException:
        s.close()
        raise

    def get() -> tuple[int, bytes]:
        r = sget(url)
        return r.status, r.content

    return SyncClient(
        get=get,
        close=s.close,
        connections=lambda: s.stats().connections_opened,
        info=_info(),
        describe=lambda: {"http_versions": str(first.http_version)},
    )


def pool(ctx: Ctx) -> SyncClient:
    kw: dict[str, object] = {"scheme": ctx.scheme, "maxsize": ctx.concurrency}
    if ctx.tls:
        kw["verify"] = ctx.cafile
    p = tether.ConnectionPool(ctx.host, ctx.port, **kw)
    path = ctx.path
    request = p.request

    def get() -> tuple[int, bytes]:
        r = request("GET", path)
        return r.status, r.data

    return SyncClient(get=get, close=p.close, connections=lambda: p.num_connections, info=_info())


def oneshot(ctx: Ctx) -> SyncClient:
    url = ctx.url
    tget = tether.get
    kw: dict[str, object] = {"verify": ctx.cafile} if ctx.tls else {}

    def get() -> tuple[int, bytes]:
        r = tget(url, **kw)
        return r.status, r.content

    return SyncClient(get=get, info=_info())


async def async_session(ctx: Ctx) -> AsyncClient:
    """One AsyncSession: one task sequentially, or 16 tasks sharing it (pool_maxsize=16)."""
    kw: dict[str, object] = {"pool_maxsize": ctx.concurrency}
    if ctx.tls:
        kw["verify"] = ctx.cafile
    s = tether.AsyncSession(**kw)  # type: ignore[arg-type]
    url = ctx.url
    sget = s.get

    async def get() -> tuple[int, bytes]:
        r = await sget(url)
        return r.status, r.content

    return AsyncClient(
        get=get, close=s.aclose, connections=lambda: s.stats().connections_opened, info=_info()
    )


async def async_session_h2(ctx: Ctx) -> AsyncClient:
    """One AsyncSession(http2=True): its tasks share one HTTP/2 connection."""
    s = tether.AsyncSession(http2=True, verify=ctx.cafile or True)
    url = ctx.url
    sget = s.get
    try:
        first = await sget(url)  # one probe request: HTTP/2 or the row fails
        if first.http_version != "HTTP/2":
            raise BadResponse(f"tether negotiated {first.http_version!r}, not HTTP/2")
    except BaseException:
        await s.aclose()
        raise

    async def get() -> tuple[int, bytes]:
        r = await sget(url)
        return r.status, r.content

    return AsyncClient(
        get=get,
        close=s.aclose,
        connections=lambda: s.stats().connections_opened,
        info=_info(),
        describe=lambda: {"http_versions": str(first.http_version)},
    )

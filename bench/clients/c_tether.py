"""tether: Session, ConnectionPool and the one-shot tether.get().

If tether cannot be imported yet, the runner reports the row as
"tether not importable: ..." instead of a number.

Adding AsyncSession or HTTP/2 later: write ``async_session`` (an async factory
returning ``AsyncClient``) or ``session_h2`` here and un-comment its Row in
``clients/registry.py``.
"""

from __future__ import annotations

import tether

from .drivers import Ctx, SyncClient
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

"""urllib3: an HTTP(S)ConnectionPool used directly (preloaded bodies)."""

from __future__ import annotations

import urllib3

from .drivers import Ctx, SyncClient
from .util import info


def pool(ctx: Ctx) -> SyncClient:
    p: urllib3.HTTPConnectionPool
    if ctx.tls:
        p = urllib3.HTTPSConnectionPool(
            ctx.host,
            ctx.port,
            maxsize=ctx.concurrency,
            block=True,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ctx.cafile,
        )
    else:
        p = urllib3.HTTPConnectionPool(ctx.host, ctx.port, maxsize=ctx.concurrency, block=True)
    path = ctx.path
    request = p.request

    def get() -> tuple[int, bytes]:
        r = request("GET", path)
        return r.status, r.data

    return SyncClient(
        get=get,
        close=p.close,
        connections=lambda: p.num_connections,
        info=info("urllib3", modules=("urllib3",)),
    )

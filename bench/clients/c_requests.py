"""requests: a Session (pooled keep-alive), and requests.get() without a Session."""

from __future__ import annotations

import requests
import requests.adapters

from .drivers import Ctx, SyncClient
from .util import info


def _info() -> dict[str, str]:
    return info("requests", "urllib3", modules=("urllib3",))


def session(ctx: Ctx) -> SyncClient:
    s = requests.Session()
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=1, pool_maxsize=ctx.concurrency, pool_block=True
    )
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    if ctx.tls:
        s.verify = ctx.cafile
    url = ctx.url
    sget = s.get

    def get() -> tuple[int, bytes]:
        r = sget(url)
        return r.status_code, r.content

    return SyncClient(get=get, close=s.close, info=_info())


def oneshot(ctx: Ctx) -> SyncClient:
    url = ctx.url
    verify: str | bool = ctx.cafile if ctx.tls and ctx.cafile else True
    rget = requests.get

    def get() -> tuple[int, bytes]:
        r = rget(url, verify=verify)
        return r.status_code, r.content

    return SyncClient(get=get, info=_info())

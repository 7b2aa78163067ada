"""http.client from the standard library: one reused HTTP(S)Connection."""

from __future__ import annotations

import http.client

from .drivers import Ctx, SyncClient
from .util import info


def _new(ctx: Ctx) -> http.client.HTTPConnection:
    if ctx.tls:
        return http.client.HTTPSConnection(ctx.host, ctx.port, context=ctx.ssl_context())
    return http.client.HTTPConnection(ctx.host, ctx.port)


def reused(ctx: Ctx) -> SyncClient:
    conn = _new(ctx)
    path = ctx.path
    opened = [0]

    def get() -> tuple[int, bytes]:
        if conn.sock is None:
            opened[0] += 1
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()

    return SyncClient(get=get, close=conn.close, connections=lambda: opened[0], info=info())


def new_conn(ctx: Ctx) -> SyncClient:
    path = ctx.path
    opened = [0]

    def get() -> tuple[int, bytes]:
        conn = _new(ctx)
        opened[0] += 1
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    return SyncClient(get=get, connections=lambda: opened[0], info=info())

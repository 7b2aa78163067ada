"""pycurl (libcurl): one reused Curl handle, or a new handle per request (cold)."""

from __future__ import annotations

from io import BytesIO

import pycurl

from .drivers import Ctx, SyncClient
from .util import info


def _setup(c: pycurl.Curl, ctx: Ctx) -> None:
    c.setopt(pycurl.URL, ctx.url)
    c.setopt(pycurl.PROXY, "")
    c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
    c.setopt(pycurl.NOSIGNAL, 1)
    c.setopt(pycurl.TCP_NODELAY, 1)
    if ctx.tls:
        c.setopt(pycurl.CAINFO, ctx.cafile)
        c.setopt(pycurl.SSL_VERIFYPEER, 1)
        c.setopt(pycurl.SSL_VERIFYHOST, 2)


def _info() -> dict[str, str]:
    return info("pycurl") | {"libcurl": pycurl.version}


def reused(ctx: Ctx) -> SyncClient:
    c = pycurl.Curl()
    _setup(c, ctx)
    opened = [0]
    perform = c.perform
    setopt = c.setopt
    getinfo = c.getinfo
    WRITEDATA = pycurl.WRITEDATA
    RESPONSE_CODE = pycurl.RESPONSE_CODE
    NUM_CONNECTS = pycurl.NUM_CONNECTS

    def get() -> tuple[int, bytes]:
        buf = BytesIO()
        setopt(WRITEDATA, buf)
        perform()
        opened[0] += getinfo(NUM_CONNECTS)
        return getinfo(RESPONSE_CODE), buf.getvalue()

    return SyncClient(get=get, close=c.close, connections=lambda: opened[0], info=_info())


def new_handle(ctx: Ctx) -> SyncClient:
    opened = [0]

    def get() -> tuple[int, bytes]:
        c = pycurl.Curl()
        try:
            _setup(c, ctx)
            buf = BytesIO()
            c.setopt(pycurl.WRITEDATA, buf)
            c.perform()
            opened[0] += c.getinfo(pycurl.NUM_CONNECTS)
            return c.getinfo(pycurl.RESPONSE_CODE), buf.getvalue()
        finally:
            c.close()

    return SyncClient(get=get, connections=lambda: opened[0], info=_info())

"""pycurl (libcurl): one reused Curl handle, or a new handle per request (cold);
over HTTP/2, a reused handle (sequential) or a CurlMulti that multiplexes 16
handles on one connection (PIPEWAIT)."""

from __future__ import annotations

import time
from io import BytesIO
from typing import Any

import pycurl

from .drivers import BadResponse, Ctx, Params, SyncClient, check_full
from .util import info


def _setup(c: pycurl.Curl, ctx: Ctx, version: int = pycurl.CURL_HTTP_VERSION_1_1) -> None:
    c.setopt(pycurl.URL, ctx.url)
    c.setopt(pycurl.PROXY, "")
    c.setopt(pycurl.HTTP_VERSION, version)
    c.setopt(pycurl.NOSIGNAL, 1)
    c.setopt(pycurl.TCP_NODELAY, 1)
    if ctx.tls:
        c.setopt(pycurl.CAINFO, ctx.cafile)
        c.setopt(pycurl.SSL_VERIFYPEER, 1)
        c.setopt(pycurl.SSL_VERIFYHOST, 2)


def _info() -> dict[str, str]:
    return info("pycurl") | {"libcurl": pycurl.version}


def reused(ctx: Ctx, version: int = pycurl.CURL_HTTP_VERSION_1_1) -> SyncClient:
    c = pycurl.Curl()
    _setup(c, ctx, version)
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

    return SyncClient(
        get=get,
        close=c.close,
        connections=lambda: opened[0],
        info=_info(),
        describe=lambda: {"http_versions": _version_name(getinfo(pycurl.INFO_HTTP_VERSION))},
    )


def _version_name(v: int) -> str:
    names = {
        pycurl.CURL_HTTP_VERSION_1_0: "HTTP/1.0",
        pycurl.CURL_HTTP_VERSION_1_1: "HTTP/1.1",
        pycurl.CURL_HTTP_VERSION_2_0: "HTTP/2",
    }
    return names.get(v, f"curl version {v}")


def reused_h2(ctx: Ctx) -> SyncClient:
    """One reused handle asking for HTTP/2 (ALPN); sequential."""
    return reused(ctx, pycurl.CURL_HTTP_VERSION_2_0)


def multi_h2(ctx: Ctx, p: Params) -> dict[str, Any]:
    """``ctx.concurrency`` easy handles in one CurlMulti with PIPE_MULTIPLEX; PIPEWAIT
    makes each new transfer wait for the connection and share it as a stream.  Each
    finished handle is re-added at once, so the streams in flight are refilled."""
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    handles = []
    bufs: dict[pycurl.Curl, BytesIO] = {}
    for _ in range(ctx.concurrency):
        c = pycurl.Curl()
        _setup(c, ctx, pycurl.CURL_HTTP_VERSION_2_0)
        c.setopt(pycurl.PIPEWAIT, 1)
        handles.append(c)
    opened = [0]
    versions: set[str] = set()
    expected = p.expected

    def start(c: pycurl.Curl) -> None:
        bufs[c] = BytesIO()
        c.setopt(pycurl.WRITEDATA, bufs[c])
        multi.add_handle(c)

    def pump(total: int, seconds: float, full_every: int) -> int:
        deadline = time.perf_counter() + seconds
        started = done = 0
        idle = list(handles)
        while True:
            while idle and started < total and time.perf_counter() < deadline:
                start(idle.pop())
                started += 1
            if done == started:
                return done
            if time.perf_counter() > deadline + 30:
                raise TimeoutError(f"{started - done} transfers still running 30 s after the bound")
            while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                pass
            _queued, ok, failed = multi.info_read()
            if failed:
                raise BadResponse(f"curl transfer failed: {failed[0][1]} {failed[0][2]}")
            for c in ok:
                multi.remove_handle(c)
                status, body = c.getinfo(pycurl.RESPONSE_CODE), bufs.pop(c).getvalue()
                if status != 200 or len(body) != len(expected) or not done % full_every:
                    check_full(status, body, expected)
                opened[0] += c.getinfo(pycurl.NUM_CONNECTS)
                versions.add(_version_name(c.getinfo(pycurl.INFO_HTTP_VERSION)))
                done += 1
                idle.append(c)
            if not ok and multi.select(1.0) == -1:
                multi.select(0.01)  # no file descriptor yet: libcurl asks to wait a little

    try:
        pump(p.warmup, 30.0, 1)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        done = pump(p.n, p.t, 64)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        for c in handles:
            if c in bufs:
                multi.remove_handle(c)
            c.close()
        multi.close()
    return {
        "ok": True,
        "requests": done,
        "wall_s": wall,
        "cpu_s": cpu,
        "warmup": p.warmup,
        "client_connections": opened[0],
        "info": _info() | {"http_versions": ",".join(sorted(versions))},
    }


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
